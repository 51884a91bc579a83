"""Cough events from per-window probabilities: smoothing, hysteresis, minimum
duration and a refractory period, as an incremental state machine so a stream
and a whole recording give the same events."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ScreeningConfig:
    on: float = 0.5
    off: float = 0.35
    min_duration_s: float = 0.25
    refractory_s: float = 1.0
    smoothing_windows: int = 1

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> ScreeningConfig:
        return cls(on=data["cough_on"], off=data["cough_off"], min_duration_s=data["min_duration_s"],
                   refractory_s=data["refractory_s"], smoothing_windows=data.get("smoothing_windows", 1))


@dataclass(frozen=True)
class Event:
    kind: str
    start_s: float
    end_s: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventDetector:
    def __init__(self, cfg: ScreeningConfig, kind: str = "cough") -> None:
        self.cfg, self.kind = cfg, kind
        self.reset()

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=max(1, self.cfg.smoothing_windows))
        self._open: tuple[float, float, float] | None = None  # start, end, peak
        self._last_end = -1e9

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        start, end, peak = self._open
        self._open = None
        if end - start < self.cfg.min_duration_s:
            return []
        self._last_end = end
        return [Event(self.kind, round(start, 3), round(end, 3), round(peak, 4))]

    def update(self, start_s: float, end_s: float, probability: float | None) -> list[Event]:
        """Feed one window (probability None = gated out by signal quality); return closed events."""
        if probability is None:
            return self._close()
        self._recent.append(probability)
        p = sum(self._recent) / len(self._recent)
        if self._open is not None:
            if p >= self.cfg.off:
                s, _, peak = self._open
                self._open = (s, end_s, max(peak, p))
                return []
            return self._close()
        if p >= self.cfg.on and start_s >= self._last_end + self.cfg.refractory_s:
            self._open = (start_s, end_s, p)
        return []

    def flush(self) -> list[Event]:
        return self._close()
