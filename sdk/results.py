"""What the SDK returns: per-window results, screening, zero-shot scores and embeddings of a recording.
Every result has ``to_dict()`` (JSON-ready: no NaN or infinity)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from acula.sdk.quality import QualityFlags
from acula.sdk.screening import Event

__all__ = ["EmbedResult", "ScoreResult", "ScreenResult", "WindowResult", "result_problems"]


def _as_dict(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, dict):
        return {k: _as_dict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_as_dict(v) for v in x]
    return x


@dataclass
class WindowResult:
    index: int
    start_s: float
    end_s: float
    embedding: np.ndarray
    cough_probability: float | None  # None: gated out by signal quality
    label_logits: dict[str, np.ndarray]
    problems: tuple[str, ...] = ()  # quality problems that gate the window out (silent, clipped, low_level)
    padded: bool = False  # the recording is shorter than one window: this one is a tiled copy of it

    def to_dict(self, with_embedding: bool = False) -> dict[str, Any]:
        d = {"index": self.index, "start_s": self.start_s, "end_s": self.end_s,
             "cough_probability": self.cough_probability, "problems": list(self.problems), "padded": self.padded}
        if with_embedding:
            d["embedding"] = self.embedding.tolist()
        return d


@dataclass
class ScreenResult:
    duration_s: float
    events: list[Event]
    windows: list[WindowResult]
    quality: QualityFlags | None
    coughs_per_hour: float

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this is less than a full reading: the recording's quality flags, ``too_short`` (shorter than one
        window: scored on a tiled copy, or not at all when empty) and ``not_scored`` (the quality gate left no
        window scored)."""
        return result_problems(self.quality, self.windows)

    @property
    def ok(self) -> bool:
        return not self.problems

    def peak_window(self) -> WindowResult | None:
        """The window with the highest cough probability; None when the quality gate left none scored."""
        scored = [w for w in self.windows if w.cough_probability is not None]
        return max(scored, key=lambda w: float(w.cough_probability or 0.0), default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: no NaN or infinity anywhere (a level of digital zero is None, with ``silent`` set)."""
        return {"duration_s": self.duration_s, "n_events": len(self.events), "coughs_per_hour": self.coughs_per_hour,
                "events": _as_dict(self.events), "ok": self.ok, "problems": list(self.problems),
                "quality": None if self.quality is None else self.quality.to_dict(),
                "poor_signal": self.quality is not None and not self.quality.ok,
                "n_windows": len(self.windows), "n_scored_windows": sum(not w.problems for w in self.windows),
                "windows": [w.to_dict() for w in self.windows]}


def result_problems(quality: QualityFlags | None, windows: list[WindowResult]) -> tuple[str, ...]:
    problems = list(quality.problems) if quality is not None else []
    if not windows or any(w.padded for w in windows):
        problems.append("too_short")
    if windows and all(w.problems for w in windows):
        problems.append("not_scored")
    return tuple(problems)


@dataclass
class ScoreResult:
    label_set: str
    labels: list[str]
    probabilities: dict[str, float] | None  # None when no window passed the quality gate
    window_probabilities: np.ndarray  # (n_usable_windows, n_labels)
    n_windows: int
    problems: tuple[str, ...] = field(default_factory=tuple)  # as ScreenResult.problems
    quality: QualityFlags | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label_set": self.label_set, "labels": self.labels, "probabilities": self.probabilities,
                "n_windows": self.n_windows, "n_usable_windows": int(self.window_probabilities.shape[0]),
                "ok": not self.problems, "problems": list(self.problems),
                "quality": None if self.quality is None else self.quality.to_dict()}


@dataclass
class EmbedResult:
    times_s: np.ndarray  # (n_windows, 2) start and end
    embeddings: np.ndarray  # (n_windows, embed_dim)

    def to_dict(self) -> dict[str, Any]:
        return {"times_s": self.times_s.tolist(), "embeddings": self.embeddings.tolist()}
