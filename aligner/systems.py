"""The systems the primary evaluation scores, behind one contract.

A system maps a recording's samples (16 kHz mono float32) to a ``SystemOutput``: one feature vector for the
linear probe, its own scores for the questions it can answer without a probe (``native``: zero-shot cosine of
an aligned encoder, the supervised control's heads, YAMNet's classes, the SDK's calibrated probabilities) and
whether its quality gate let the recording be scored at all.  The evaluation never looks inside a system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from acula.sdk.scoring import clip_embedding

#: the questions a system may answer natively; each task of the primary table names one
NATIVE_KEYS = ("cough", "heart_abnormal", "crackles", "wheezes", "copd")


@dataclass
class SystemOutput:
    features: np.ndarray  # (d,) float32
    native: dict[str, float] = field(default_factory=dict)  # question -> score (higher = more positive)
    probability: dict[str, float] = field(default_factory=dict)  # question -> probability a user would see
    scored: bool = True  # False: the system's quality gate left no window of the recording scored


class System(Protocol):
    name: str
    #: "frozen": never saw a label of these data sets (nested CV over every patient applies)
    kind: str

    def __call__(self, samples: np.ndarray) -> SystemOutput: ...


def _spread(n: int, most: int = 24) -> np.ndarray:
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(int)


class MFCCSystem:
    kind = "frozen"

    def __init__(self, name: str = "MFCC stats") -> None:
        from acula.aligner.peers import MFCCStats

        self.name, self.mfcc = name, MFCCStats()

    def __call__(self, samples: np.ndarray) -> SystemOutput:
        return SystemOutput(self.mfcc(samples))


class YAMNetSystem:
    kind = "frozen"
    #: question -> YAMNet classes whose (max over patches) score answers it
    CLASSES = {"cough": ["cough"], "heart_abnormal": ["heart_murmur"], "wheezes": ["wheeze"]}

    def __init__(self, path: str, name: str = "YAMNet") -> None:
        from acula.aligner.peers import YAMNet

        self.name, self.yam = name, YAMNet(path)

    def __call__(self, samples: np.ndarray) -> SystemOutput:
        from acula.aligner.peers import YAMNET_CLASSES

        emb, scores = self.yam.run(samples)
        native = {q: float(max(scores[YAMNET_CLASSES[c]] for c in cs)) for q, cs in self.CLASSES.items()}
        return SystemOutput(emb.astype(np.float32), native, dict(native))


class EncoderSystem:
    """mn04 (unaligned, from AudioSet), an aligned run, or the supervised control, on log-mel windows of the
    SDK front end.  Aligned runs answer natively by zero-shot (task prompts through the text teacher and the
    run's text projection); the supervised control by its heads (sigmoid)."""

    def __init__(self, name: str, run: str | None, weights_dir: str | None = None,
                 prompts: Callable[[Any], dict[str, dict[str, np.ndarray]]] | None = None) -> None:
        import torch
        from acula.aligner.evaluate import AlignedEncoder
        from acula.sdk.frontend import LogMelFrontend

        self.name, self.torch = name, torch
        self.enc = AlignedEncoder(run, weights_dir)
        self.kind = "frozen" if run is None else "trained"
        self.frontend = LogMelFrontend()
        self.heads: list[str] = []
        if self.enc.model.sup_head is not None:
            from acula.aligner.supervised import SUPERVISED_HEADS

            self.heads = [{"heart_abnormal": "heart_abnormal"}.get(h, h) for h in SUPERVISED_HEADS]
        self.prompts = prompts(self.enc) if (prompts is not None and run is not None and not self.heads) else {}

    def __call__(self, samples: np.ndarray) -> SystemOutput:
        from acula.aligner.data import windows

        torch = self.torch
        x = np.pad(samples, (0, max(0, self.frontend.config.n_fft - samples.size)))
        feats = self.frontend(x)
        cfg = self.enc.cfg
        w = windows(feats, cfg.crop_frames, cfg.crop_frames // 2)
        w = w[_spread(w.shape[0])]
        with torch.no_grad():
            pooled = self.enc.model.pooled(torch.from_numpy(np.ascontiguousarray(w)))
            joint = torch.nn.functional.normalize(self.enc.model.audio_proj(pooled), dim=-1).mean(0).numpy()
            head = (None if not self.heads else
                    self.enc.model.sup_head(pooled).mean(0).numpy())  # type: ignore[misc]
        native: dict[str, float] = {}
        prob: dict[str, float] = {}
        if head is not None:
            for k, q in enumerate(self.heads):
                native[q] = float(head[k])
                prob[q] = float(1 / (1 + np.exp(-head[k])))
        j = joint / np.linalg.norm(joint)
        for q, bank in self.prompts.items():
            native[q] = float((j @ bank["positive"].T).mean() - (j @ bank["negative"].T).mean())
        return SystemOutput(pooled.mean(0).numpy().astype(np.float32), native, prob)


class BundleSystem:
    """A bundle through the SDK only (the shipped student on one backend and precision): features are the
    clip's mean unit embedding over its windows, native scores the SDK's calibrated label-set probabilities
    (over the windows the quality gate passed) and the cough head's peak window probability."""

    kind = "trained"
    #: question -> (label set, label)
    LABELS = {"cough": ("sound", "cough"), "heart_abnormal": ("heart", "abnormal"),
              "crackles": ("lung", "crackles"), "wheezes": ("lung", "wheezes")}

    def __init__(self, name: str, bundle: str = "default", backend: str = "onnxruntime",
                 precision: str = "int8") -> None:
        from acula.sdk.model import load

        self.name = name
        self.model = load(bundle, backend, precision)

    def __call__(self, samples: np.ndarray) -> SystemOutput:
        stream = self.model.stream()
        wins = stream.accept(samples, 16000) + stream.flush()
        sel = [wins[k] for k in _spread(len(wins))]
        emb = np.stack([w.embedding for w in sel])
        feats = clip_embedding(emb).astype(np.float32)
        usable = [w for w in wins if not w.problems]
        if not usable:
            return SystemOutput(feats, {}, {}, scored=False)
        native: dict[str, float] = {}
        for q, (label_set, label) in self.LABELS.items():
            logits = np.mean([w.label_logits[label_set] for w in usable], 0)
            p = np.exp(logits - logits.max())
            native[q] = float(p[self.model.label_sets[label_set].index(label)] / p.sum())
        peaks = [w.cough_probability for w in usable if w.cough_probability is not None]
        prob = dict(native)
        if peaks:
            prob["cough_detector"] = native["cough_detector"] = float(max(peaks))
        return SystemOutput(feats, native, prob)
