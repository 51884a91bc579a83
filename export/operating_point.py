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

__all__ = ["CHANNELS", "POOLED_CALIBRATED_ON", "RULES", "channel_sequences", "pooled_point", "rule_sequences",
           "screened", "window_probabilities"]

#: as recorded, at 8 kHz, 8-bit mu-law at 8 kHz
CHANNELS = ("clean", "8k", "mulaw8k")
RULES = ("clean", "pooled")
#: the manifest's ``screening.calibrated_on`` of a point the ``pooled`` rule chose (how a bundle's rule is read back)
POOLED_CALIBRATED_ON = "val split; phone recordings as recorded, at 8 kHz and 8-bit mu-law at 8 kHz"
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


def channel_sequences(model: Any, rows: Sequence[dict[str, Any]], root: Path, channel: str,
                      groups: Sequence[str] | None = None) -> dict[str, list[np.ndarray]]:
    """Per operating-point group (``export.calibration.screening_group``; ``groups``: only these), each recording's
    window cough probabilities on one channel of ``CHANNELS``."""
    from acula.export.calibration import screening_group

    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if groups is not None:
        rows = [r for r in rows if screening_group(r) in groups]
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
    ``screening`` block (``export.calibration.choose_operating_point``'s, false alarms per hour over all the
    non-cough audio screened, the phone recordings' three times)."""
    from acula.aligner.corpus import load_corpus
    from acula.export.calibration import FRAME_S, choose_operating_point, screening_group

    from acula import sdk

    model = sdk.load(bundle, "onnxruntime", "int8")
    corpus = load_corpus(corpus_dir)
    rows = [corpus.rows[i] for i in corpus.indices("val")]
    # the phone channels only for the phone recordings: the rule reads nothing else through them
    seqs = rule_sequences("pooled", {c: channel_sequences(model, rows, corpus.data_root, c,
                                                          None if c == "clean" else PHONE_GROUPS) for c in CHANNELS})
    # non-cough audio screened: every non-cough recording once, the phone ones twice more (8 kHz, mu-law)
    seconds = {g: 0.0 for g in ("phone non-cough", "stethoscope", "other")}
    for r in rows:
        group = screening_group(r)
        if group in seconds:
            seconds[group] += float(r["audio"]["duration_s"])
    hours = (sum(seconds.values()) + 2 * seconds["phone non-cough"]) / 3600
    point = choose_operating_point(seqs, hours, model.window_frames * FRAME_S, model.hop_frames * FRAME_S)
    return {**point, "calibrated_on": POOLED_CALIBRATED_ON}


def repoint(src: Path, corpus_dir: Path, out: Path) -> dict[str, Any]:
    """An exported bundle with its cough operating point chosen again by the ``pooled`` rule: the same files, the
    manifest's ``screening`` block replaced (its other keys kept).  Refuses a signed bundle (the signature would no
    longer verify) and one whose operating point was not chosen on its int8 ONNX graph."""
    from acula.export.bundle import bundle_parts, write_bundle
    from acula.sdk.bundle import SIGNATURE, manifest_digest, read_bundle

    if (Path(src) / SIGNATURE).exists():
        raise ValueError(f"{src} is signed; re-export it with --operating-point pooled --sign-key instead")
    bundle = read_bundle(src)
    m = bundle.manifest
    if m.get("screening", {}).get("probabilities_from") != "student_int8.onnx":
        raise ValueError(f"{src}: its operating point was not chosen on student_int8.onnx; re-export it")
    point = pooled_point(Path(src), corpus_dir)
    files, manifest = bundle_parts(bundle)
    manifest["screening"] = {**m["screening"], **point}
    write_bundle(out, files, manifest)
    return {"bundle": str(out), "digest": manifest_digest(read_bundle(out).manifest),
            "cough_on_before": m["screening"]["cough_on"], "cough_on": point["cough_on"],
            "targets_met": point["targets_met"]}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json
    import sys

    from acula.export.bundle import rewrite_staged

    parser = argparse.ArgumentParser(prog="python -m acula.export.operating_point",
                                     description="Choose a bundle's cough operating point again by the pooled rule "
                                                 "(phone recordings also at 8 kHz and mu-law); the files unchanged.")
    parser.add_argument("bundle", type=Path, help="bundle directory to read")
    parser.add_argument("--corpus", type=Path, required=True, help="corpus whose val recordings choose the point")
    parser.add_argument("--out", type=Path, help="where to write (default: over the bundle)")
    args = parser.parse_args(argv)
    try:  # staged first: a failure leaves the bundle alone
        result = rewrite_staged(args.bundle, args.out or args.bundle,
                                lambda staged: repoint(args.bundle, args.corpus, staged))
    except (ValueError, OSError) as exc:
        print(f"python -m acula.export.operating_point: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
