"""Cough events from per-window probabilities and the sample-level energy envelope.

Two stages, both incremental so a stream and a whole recording give the same events:

1. window level: smoothing, hysteresis (open at ``on``, close below ``off``), minimum duration and a
   refractory period on the cough probability of each 1.98 s window;
2. cough level: when a window-level event closes, its span is split into single coughs on the 10 ms energy
   envelope of the samples already seen (:func:`split_bursts`), so a burst of three coughs in two seconds is
   three events, each with its own onset and offset.  Without samples (feature mode) or without a burst that
   stands out of the span's floor, the window-level event is kept whole.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from acula.sdk.quality import row_dots


@dataclass(frozen=True)
class ScreeningConfig:
    on: float = 0.5
    off: float = 0.35
    min_duration_s: float = 0.25
    refractory_s: float = 1.0
    smoothing_windows: int = 1
    #: split window-level events into single coughs on the energy envelope (False: one event per span)
    split_coughs: bool = True
    #: envelope frame; a cough is a run of frames above the span's floor (its ``floor_percentile``) by
    #: ``edge_db`` (and within ``range_db`` of the span's loudest frame) whose peak rises ``rise_db`` above the
    #: floor and reaches within ``peak_below_loudest_db`` of the loudest frame; runs closer than ``min_gap_s``
    #: are one cough, runs shorter than ``min_burst_s`` none
    frame_s: float = 0.01
    floor_percentile: float = 10.0
    edge_db: float = 8.0
    range_db: float = 30.0
    rise_db: float = 15.0
    peak_below_loudest_db: float = 20.0
    min_gap_s: float = 0.15
    min_burst_s: float = 0.05
    #: coughs in a bout follow without a gap: inside a run, a rise of ``onset_db`` within ``onset_s`` (the
    #: explosive phase) at least ``min_cough_s`` after the current cough's onset starts the next cough
    onset_db: float = 22.0
    onset_s: float = 0.05
    min_cough_s: float = 0.2

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> ScreeningConfig:
        split = {k: data[k] for k in ("split_coughs", "frame_s", "floor_percentile", "edge_db", "range_db", "rise_db",
                                      "peak_below_loudest_db", "min_gap_s", "min_burst_s", "onset_db", "onset_s",
                                      "min_cough_s") if k in data}
        return cls(on=data["cough_on"], off=data["cough_off"], min_duration_s=data["min_duration_s"],
                   refractory_s=data["refractory_s"], smoothing_windows=data.get("smoothing_windows", 1), **split)

    def with_on(self, on: float) -> ScreeningConfig:
        """The same settings at another 'on' threshold, 'off' scaled with it (this config's off / on ratio, 4
        decimals): how an app moves the operating point and how the validation grid replays others."""
        return replace(self, on=float(on), off=round(float(on) * self.off / self.on, 4))


@dataclass(frozen=True)
class Event:
    kind: str
    start_s: float
    end_s: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def envelope_db(power: np.ndarray) -> np.ndarray:
    """Mean-square power per frame -> level in dB (digital zero floors at -120 dB)."""
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def split_bursts(level_db: np.ndarray, cfg: ScreeningConfig) -> list[tuple[int, int]]:
    """Single coughs in one event's envelope.  ``level_db``: shape (n_frames,), dB per ``cfg.frame_s`` frame.
    Returns [(first, end)) frame ranges, in order; [] when no burst stands out of the floor."""
    if level_db.size < 3:
        return []
    floor = float(np.percentile(level_db, cfg.floor_percentile))
    loudest = float(level_db.max())
    active = level_db >= max(floor + cfg.edge_db, loudest - cfg.range_db)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]
    min_gap = round(cfg.min_gap_s / cfg.frame_s)
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    min_len = round(cfg.min_burst_s / cfg.frame_s)
    need = max(floor + cfg.rise_db, loudest - cfg.peak_below_loudest_db)
    out: list[tuple[int, int]] = []
    for a, b in merged:
        if b - a >= min_len and float(level_db[a:b].max()) >= need:
            out += _split_bout(level_db, a, b, need, cfg)
    return out


def _split_bout(level_db: np.ndarray, a: int, b: int, need: float, cfg: ScreeningConfig) -> list[tuple[int, int]]:
    """Split the run [a, b) at sharp onsets (a valley followed by a rise of ``onset_db`` within ``onset_s``);
    a piece whose peak does not reach ``need`` stays with the cough before it."""
    k = max(1, round(cfg.onset_s / cfg.frame_s))
    min_cough = round(cfg.min_cough_s / cfg.frame_s)
    starts = [a]
    i = a + 1
    while i < b:
        lo = max(a, i - k) + int(np.argmin(level_db[max(a, i - k) : i]))
        if level_db[i] - level_db[lo] >= cfg.onset_db and lo - starts[-1] >= min_cough:
            starts.append(lo)
        i += 1
    pieces = [[s, e] for s, e in zip(starts, starts[1:] + [b], strict=True)]
    kept: list[list[int]] = []
    for piece in pieces:
        if kept and float(level_db[piece[0] : piece[1]].max()) < need:
            kept[-1][1] = piece[1]
        else:
            kept.append(piece)
    return [(s, e) for s, e in kept]


def frame_power(frames: np.ndarray, frame_samples: int) -> np.ndarray:
    """Mean-square power of float64 envelope frames, shape (..., frame_samples) -> (...)."""
    return row_dots(frames) / frame_samples


class EventDetector:
    """Window probabilities (``update``) and, optionally, the 16 kHz samples (``accept_samples``, fed before the
    windows they complete) -> closed cough events, one per cough when samples are given."""

    def __init__(self, cfg: ScreeningConfig, kind: str = "cough", sample_rate_hz: int = 16000) -> None:
        self.cfg, self.kind, self.sample_rate_hz = cfg, kind, sample_rate_hz
        self.frame_samples = max(1, round(cfg.frame_s * sample_rate_hz))
        self.reset()

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=max(1, self.cfg.smoothing_windows))
        self._open: tuple[float, float, float] | None = None  # start, end, peak
        self._windows: list[tuple[float, float, float]] = []  # (start_s, end_s, probability) of the open event
        self._last_end = -1e9
        self._tail = np.zeros(0, dtype=np.float64)  # samples after the last whole envelope frame
        self._power: list[float] = []  # mean-square power per frame, from frame _power_base on
        self._power_base = 0

    def accept_samples(self, x: np.ndarray) -> None:
        """Samples at ``sample_rate_hz``, any chunk length: extends the energy envelope on a fixed frame grid."""
        if not self.cfg.split_coughs or not len(x):
            return
        x = np.asarray(x)
        # a hop of whole frames leaves no tail: the samples are read as given, float32 or float64
        buf = np.concatenate([self._tail, x.astype(np.float64)]) if self._tail.size else x
        n = buf.size // self.frame_samples * self.frame_samples
        if n:
            # mean square per frame, accumulated in float64: numpy >= 2's vecdot on float64 samples (a copy only of
            # float32 ones; 3.5 us a hop here, einsum casting float32 on the fly took 7), else einsum; frames of a
            # few hundred samples are far below the length at which OpenBLAS would start threads
            frames = buf[:n].reshape(-1, self.frame_samples).astype(np.float64, copy=False)
            self._power.extend(frame_power(frames, self.frame_samples).tolist())
        self._tail = buf[n:].astype(np.float64)  # a copy: never a view of the caller's array

    def on_frame_grid(self, n_samples: int) -> bool:
        """Whether ``n_samples`` more samples, fed now, are whole envelope frames starting on the frame grid
        (always so when events are not split)."""
        return not self.cfg.split_coughs or (not self._tail.size and n_samples % self.frame_samples == 0)

    def accept_power(self, power: np.ndarray) -> None:
        """:meth:`accept_samples` for samples whose :func:`frame_power` has been computed already (for many
        streams at once, :class:`sdk.pool.StreamPool`): whole envelope frames, fed where a frame starts."""
        if not self.cfg.split_coughs:
            return
        if self._tail.size:
            raise ValueError("accept_power takes whole frames fed on the frame grid")
        self._power.extend(power.tolist())

    def _frame(self, t_s: float) -> int:
        return round(t_s * self.sample_rate_hz) // self.frame_samples

    def _trim(self, before_s: float) -> None:
        drop = min(self._frame(before_s) - self._power_base, len(self._power))
        if drop > 0:
            del self._power[:drop]
            self._power_base += drop

    def _split(self, start: float, end: float, peak: float) -> list[Event]:
        """Single coughs inside [start, end]: only whole frames inside the span, all seen before it closed, so
        the result does not depend on how the samples were chunked."""
        whole = [Event(self.kind, round(start, 3), round(end, 3), round(peak, 4))]
        if not self.cfg.split_coughs:
            return whole
        a = -(-round(start * self.sample_rate_hz) // self.frame_samples) - self._power_base
        b = round(end * self.sample_rate_hz) // self.frame_samples - self._power_base
        if a < 0 or b > len(self._power):  # no samples for this span (feature mode)
            return whole
        bursts = split_bursts(envelope_db(np.asarray(self._power[a:b])), self.cfg)
        if not bursts:
            return whole
        out = []
        frame_s = self.frame_samples / self.sample_rate_hz
        for first, last in bursts:
            s, e = (a + self._power_base + first) * frame_s, (a + self._power_base + last) * frame_s
            conf = max((p for ws, we, p in self._windows if ws < e and we > s), default=peak)
            out.append(Event(self.kind, round(s, 3), round(e, 3), round(conf, 4)))
        return out

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        start, end, peak = self._open
        self._open = None
        events = [] if end - start < self.cfg.min_duration_s else self._split(start, end, peak)
        if events:
            self._last_end = end
        self._windows = []
        return events

    def update(self, start_s: float, end_s: float, probability: float | None) -> list[Event]:
        """Feed one window (probability None = gated out by signal quality); return closed events."""
        events = self._update(start_s, end_s, probability)
        if self._open is None:  # the next event starts at a later window: older envelope frames are not needed
            self._trim(start_s)
        return events

    def _update(self, start_s: float, end_s: float, probability: float | None) -> list[Event]:
        if probability is None:
            return self._close()
        self._recent.append(probability)
        p = sum(self._recent) / len(self._recent)
        if self._open is not None:
            if p >= self.cfg.off:
                s, _, peak = self._open
                self._open = (s, end_s, max(peak, p))
                self._windows.append((start_s, end_s, p))
                return []
            return self._close()
        if p >= self.cfg.on and start_s >= self._last_end + self.cfg.refractory_s:
            self._open = (start_s, end_s, p)
            self._windows = [(start_s, end_s, p)]
        return []

    def flush(self) -> list[Event]:
        return self._close()
