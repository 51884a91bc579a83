"""Validation recordings screened by a bundle through the channels a phone app meets, for the cough operating point.

The export's rule (``export.calibration.choose_operating_point``) reads each validation recording's window cough
probabilities.  ``clean`` reads them as recorded; ``pooled`` (``benchmarks/results/selection_rule_operating_point.md``)
also reads the phone recordings (coughs, breathing, speech) as a phone call delivers them: resampled to 8 kHz, and 8-bit
mu-law at 8 kHz (``aligner.invariance.phone_call_8k``), handed to the SDK at 8000 Hz.  Every channel goes through the
SDK itself (``Model.screen``), so the point holds for what ships.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CHANNELS", "RULES", "channel_sequences", "pooled_point", "rule_sequences", "screened",
           "window_probabilities"]

#: as recorded, at 8 kHz, 8-bit mu-law at 8 kHz
CHANNELS = ("clean", "8k", "mulaw8k")
RULES = ("clean", "pooled")
#: the operating point's groups heard through the phone channels under ``pooled``
PHONE_GROUPS = ("cough", "phone non-cough")


def screened(model: Any, rows: Sequence[dict[str, Any]], root: Path, phone: str | None = None
             ) -> Iterator[tuple[dict[str, Any], Any, np.ndarray, int]]:
    """``(row, ScreenResult, samples, rate)`` for each of ``rows``, screened by ``model`` as recorded or, with
    ``phone`` ("8k" or "mulaw8k"), as a phone call delivers it (the samples and rate are what the SDK was given;
    recordings at 8 kHz or below keep their rate)."""
    from acula import sdk

    for r in rows:
        if phone:
            from acula.aligner.invariance import phone_call_8k

            source = sdk.load_audio(root / r["path"], None, r.get("start_s"), r.get("end_s"))
            samples = phone_call_8k(source.samples, source.sample_rate_hz, phone == "mulaw8k").astype(np.float32)
            rate = min(source.sample_rate_hz, 8000)
        else:
            clip = sdk.load_audio(root / r["path"], model.sample_rate_hz, r.get("start_s"), r.get("end_s"))
            samples, rate = clip.samples, clip.sample_rate_hz
        yield r, model.screen(samples, rate), samples, rate


def window_probabilities(result: Any) -> np.ndarray:
    """A screening's window cough probabilities, NaN where the quality gate held a window back."""
    return np.array([np.nan if w.cough_probability is None else w.cough_probability for w in result.windows])


def channel_sequences(model: Any, rows: Sequence[dict[str, Any]], root: Path, channel: str
                      ) -> dict[str, list[np.ndarray]]:
    """Per operating-point group (``export.calibration.screening_group``), each recording's window cough
    probabilities on one channel of ``CHANNELS``."""
    from acula.export.calibration import screening_group

    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    out: dict[str, list[np.ndarray]] = {}
    for row, result, _, _ in screened(model, rows, root, None if channel == "clean" else channel):
        out.setdefault(screening_group(row), []).append(window_probabilities(result))
    return out


def rule_sequences(rule: str, by_channel: dict[str, dict[str, list[np.ndarray]]]) -> dict[str, list[np.ndarray]]:
    """The recordings a rule chooses on: ``clean`` as recorded; ``pooled`` adds the phone recordings heard through
    the 8 kHz and mu-law channels (``by_channel``: :func:`channel_sequences` per channel)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    clean = by_channel["clean"]
    if rule == "clean":
        return clean
    return {g: (sum((by_channel[c].get(g, []) for c in CHANNELS), []) if g in PHONE_GROUPS else seqs)
            for g, seqs in clean.items()}


def pooled_point(bundle: Path, corpus_dir: Path) -> dict[str, Any]:
    """The ``pooled`` rule's operating point for a written bundle: its int8 ONNX graph screens the corpus's val
    recordings through the SDK, as recorded and, for phone recordings, at 8 kHz and mu-law; the manifest's
    ``screening`` block (``export.calibration.choose_operating_point``'s, false alarms per hour over the window
    spans screened)."""
    from acula.aligner.corpus import load_corpus
    from acula.export.calibration import FRAME_S, choose_operating_point

    from acula import sdk

    model = sdk.load(bundle, "onnxruntime", "int8")
    corpus = load_corpus(corpus_dir)
    rows = [corpus.rows[i] for i in corpus.indices("val")]
    seqs = rule_sequences("pooled", {c: channel_sequences(model, rows, corpus.data_root, c) for c in CHANNELS})
    hop_s = model.hop_frames * FRAME_S
    hours = sum(len(q) for g, v in seqs.items() if g != "cough" for q in v) * hop_s / 3600
    point = choose_operating_point(seqs, hours, model.window_frames * FRAME_S, hop_s)
    return {**point, "calibrated_on": "val split; phone recordings as recorded, at 8 kHz and 8-bit mu-law at 8 kHz"}
