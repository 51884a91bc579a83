"""What the SDK returns: per-window results, screening, zero-shot scores and embeddings of a recording.
Every result has ``to_dict()`` (JSON-ready: no NaN or infinity)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
from acula.sdk.quality import QualityFlags
from acula.sdk.screening import Event

__all__ = ["EmbedResult", "ScoreLog", "ScoreResult", "ScreenResult", "WindowLog", "WindowResult", "result_problems"]


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


#: The problems a window can carry, in the order :class:`sdk.quality.WindowGate` reports them.
WINDOW_PROBLEMS = ("silent", "clipped", "low_level", "too_short")
#: bit set -> problems tuple, in WINDOW_PROBLEMS order
_PROBLEMS = [tuple(name for k, name in enumerate(WINDOW_PROBLEMS) if bits >> k & 1)
             for bits in range(1 << len(WINDOW_PROBLEMS))]
_NO_EMBEDDING = np.zeros(0, np.float32)
_NO_EMBEDDING.flags.writeable = False


class WindowLog(Sequence[WindowResult]):
    """What screening keeps of each window, for a recording of any length: index, span, cough probability,
    problems and ``padded`` in columns of 26 bytes a window (a :class:`WindowResult` holds its embedding and
    label logits too, about 2.5 KB).  Items are WindowResults without those: ``embedding`` of shape (0,),
    ``label_logits`` empty; every field :meth:`WindowResult.to_dict` writes is kept exactly."""

    def __init__(self, windows: Iterable[WindowResult] = ()) -> None:
        self._n = 0
        self._index = np.zeros(256, np.int64)
        self._span_s = np.zeros((256, 2), np.float64)
        self._p = np.zeros(256, np.float64)  # NaN: gated out (cough_probability None)
        self._problems = np.zeros(256, np.uint8)  # bit i: WINDOW_PROBLEMS[i]
        self._padded = np.zeros(256, np.bool_)
        self.extend(windows)

    def append(self, w: WindowResult) -> None:
        bits = sum(1 << WINDOW_PROBLEMS.index(p) for p in w.problems if p in WINDOW_PROBLEMS)
        if _PROBLEMS[bits] != tuple(w.problems):
            raise ValueError(f"window problems {w.problems} are not a subset of {WINDOW_PROBLEMS} in that order")
        if self._n == self._index.shape[0]:  # grow by doubling: amortised O(1), no per-window objects
            for name in ("_index", "_span_s", "_p", "_problems", "_padded"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        i = self._n
        self._index[i], self._span_s[i] = w.index, (w.start_s, w.end_s)
        self._p[i] = np.nan if w.cough_probability is None else w.cough_probability
        self._problems[i], self._padded[i] = bits, w.padded
        self._n += 1

    def extend(self, windows: Iterable[WindowResult]) -> None:
        for w in windows:
            self.append(w)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> WindowResult: ...

    @overload
    def __getitem__(self, i: slice) -> list[WindowResult]: ...

    def __getitem__(self, i: int | slice) -> WindowResult | list[WindowResult]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(f"window {i} of {self._n}")
        i %= self._n
        return self._item(i, int(self._index[i]), float(self._span_s[i, 0]), float(self._span_s[i, 1]),
                          float(self._p[i]), int(self._problems[i]), bool(self._padded[i]))

    def __iter__(self) -> Iterator[WindowResult]:
        # columns to Python scalars a slice at a time: fast, and never a list per window of the whole recording
        for a in range(0, self._n, 1024):
            b = min(self._n, a + 1024)
            for k, args in enumerate(zip(self._index[a:b].tolist(), self._span_s[a:b, 0].tolist(),
                                         self._span_s[a:b, 1].tolist(), self._p[a:b].tolist(),
                                         self._problems[a:b].tolist(), self._padded[a:b].tolist(), strict=True), a):
                yield self._item(k, *args)

    def _item(self, row: int, index: int, start_s: float, end_s: float, p: float, bits: int, padded: bool
              ) -> WindowResult:
        """Row ``row`` as a WindowResult (a subclass adds what it keeps beside the columns)."""
        return WindowResult(index, start_s, end_s, _NO_EMBEDDING, None if math.isnan(p) else p, {},
                            _PROBLEMS[bits], padded)


class ScoreLog(WindowLog):
    """What scoring keeps of each window: the screening columns of :class:`WindowLog` plus one row of label
    logits (``n_labels`` float32s; a :class:`WindowResult` holds the 512-d embedding too).  ``logits_of``
    gives a window's row: its label set's logits, or custom labels' logits computed from its embedding as the
    window arrives.  Items carry that row as ``label_logits[key]``, so :meth:`sdk.Model.score` pools a
    recording of any length from rows it kept, never from its embeddings."""

    def __init__(self, key: str, logits_of: Callable[[WindowResult], np.ndarray], n_labels: int) -> None:
        self.key, self._logits_of = key, logits_of
        self._logits = np.zeros((256, n_labels), np.float32)
        super().__init__()

    def append(self, w: WindowResult) -> None:
        if self._n == self._logits.shape[0]:
            self._logits = np.concatenate([self._logits, np.zeros_like(self._logits)])
        self._logits[self._n] = self._logits_of(w)
        super().append(w)

    def usable_logits(self) -> np.ndarray:
        """The rows of the windows the quality gate let through (no problems), shape (n_usable, n_labels)."""
        return self._logits[: self._n][self._problems[: self._n] == 0]

    def _item(self, row: int, index: int, start_s: float, end_s: float, p: float, bits: int, padded: bool
              ) -> WindowResult:
        item = super()._item(row, index, start_s, end_s, p, bits, padded)
        item.label_logits[self.key] = self._logits[row].copy()
        return item


@dataclass
class ScreenResult:
    duration_s: float
    events: list[Event]
    windows: Sequence[WindowResult]  # a list, or a WindowLog where only the screening fields are kept
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

    def to_dict(self, with_windows: bool = True) -> dict[str, Any]:
        """JSON-ready: no NaN or infinity anywhere (a level of digital zero is None, with ``silent`` set).
        ``windows``, the per-window records, is the last key; ``with_windows=False`` leaves it out (a long
        recording's writer streams them one at a time)."""
        d = {"duration_s": self.duration_s, "n_events": len(self.events), "coughs_per_hour": self.coughs_per_hour,
                "events": _as_dict(self.events), "ok": self.ok, "problems": list(self.problems),
                "quality": None if self.quality is None else self.quality.to_dict(),
                "poor_signal": self.quality is not None and not self.quality.ok,
                "n_windows": len(self.windows), "n_scored_windows": sum(not w.problems for w in self.windows)}
        if with_windows:
            d["windows"] = [w.to_dict() for w in self.windows]
        return d


def result_problems(quality: QualityFlags | None, windows: Sequence[WindowResult]) -> tuple[str, ...]:
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
