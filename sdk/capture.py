"""Live capture: a sounddevice InputStream feeding a Stream through a bounded queue.

The audio callback only copies 16-bit blocks (what microphones and stethoscope
links deliver) into the queue.  When the consumer falls
behind and the queue is full, the block is counted as dropped and replaced by
silence of the same length when the consumer catches up, so time stays aligned
and the windows it touches are flagged (silent), never silently lost.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdk.model import Model, WindowResult
from sdk.screening import Event
from sdk.store import EventStore


@dataclass
class CaptureStats:
    blocks_received: int = 0
    blocks_dropped: int = 0
    samples_dropped: int = 0
    input_overflows: int = 0
    windows: int = 0
    events: list[Event] = field(default_factory=list)


class LiveCapture:
    def __init__(self, model: Model, sample_rate_hz: int = 16000, block_s: float = 0.1, queue_blocks: int = 50,
                 device: Any = None, store: EventStore | None = None) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise ImportError("live capture needs: pip install 'acula-edge[audio]' and the system library "
                              "libportaudio2 (apt install libportaudio2)") from exc
        self._sd = sounddevice
        self.model, self.rate, self.device, self.store = model, sample_rate_hz, device, store
        self.block = max(1, int(block_s * sample_rate_hz))
        self.queue: queue.Queue[np.ndarray | int] = queue.Queue(maxsize=queue_blocks)
        self.stats = CaptureStats()
        self._pending_gap = 0

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.stats.input_overflows += 1
        try:
            if self._pending_gap:
                self.queue.put_nowait(self._pending_gap)
                self._pending_gap = 0
            self.queue.put_nowait(indata[:, 0].astype(np.float32) / 32768.0)
            self.stats.blocks_received += 1
        except queue.Full:
            self.stats.blocks_dropped += 1
            self.stats.samples_dropped += frames
            self._pending_gap += frames

    def run(self, duration_s: float, on_window: Any = None) -> CaptureStats:
        """Capture for ``duration_s`` seconds of audio; returns the counts and the events."""
        stream = self.model.stream()
        session = self.store.start_session(f"sounddevice:{self.device or 'default'}", self.model.bundle.source,
                                           self.rate) if self.store else None
        needed = int(duration_s * self.rate)
        consumed = beat = 0
        with self._sd.InputStream(samplerate=self.rate, channels=1, dtype="int16", blocksize=self.block,
                                  device=self.device, callback=self._callback):
            deadline = time.monotonic() + duration_s * 4 + 5.0
            while consumed < needed and time.monotonic() < deadline:
                try:
                    item = self.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                chunk = np.zeros(item, dtype=np.float32) if isinstance(item, int) else item
                chunk = chunk[: needed - consumed]
                consumed += chunk.size
                self._handle(stream.accept(chunk, self.rate), stream, session, on_window)
                if self.store and session is not None and consumed - beat >= self.rate:  # once a second of audio
                    self.store.heartbeat(session, consumed / self.rate)  # the session's end if it never closes
                    beat = consumed
        self._handle(stream.flush(), stream, session, on_window)
        if self.store and session is not None:
            self.store.end_session(session, consumed / self.rate, self.stats.samples_dropped,
                                   f"overflows={self.stats.input_overflows}")
        return self.stats

    def _handle(self, windows: list[WindowResult], stream: Any, session: int | None, on_window: Any) -> None:
        self.stats.windows += len(windows)
        new = stream.events[len(self.stats.events):]
        self.stats.events.extend(new)
        if self.store and session is not None:
            self.store.add_events(session, new)
        if on_window is not None:
            for w in windows:
                on_window(w)
