"""Live capture: a sounddevice InputStream feeding a Stream through a bounded queue.

The audio callback only copies 16-bit blocks (what microphones and stethoscope
links deliver) into the queue.  When the consumer falls
behind and the queue is full, the block is counted as dropped and replaced by
silence of the same length when the consumer catches up, so time stays aligned
and the windows it touches are flagged (silent), never silently lost.

A file can stand in for the microphone (``replay=``): a thread plays it into the
same queue at ``speed`` times real time (dropping blocks as a device would when
the consumer falls behind), or as fast as the consumer takes it (``speed=None``,
nothing dropped), so the live pipeline runs and is tested without a sound card.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from acula.sdk.model import Model, WindowResult
from acula.sdk.screening import Event
from acula.sdk.store import EventStore
from acula.sdk.stream import HeldBlocks


@dataclass
class CaptureStats:
    blocks_received: int = 0
    blocks_dropped: int = 0
    samples_dropped: int = 0
    input_overflows: int = 0
    windows: int = 0
    events: list[Event] = field(default_factory=list)


_END = None  # what a replay puts in the queue after its last block


class LiveCapture:
    def __init__(self, model: Model, sample_rate_hz: int = 16000, block_s: float = 0.1, queue_blocks: int = 50,
                 device: Any = None, store: EventStore | None = None, replay: str | None = None,
                 speed: float | None = 1.0, coalesce: bool = True) -> None:
        """Capture from ``device`` (sounddevice input) at ``sample_rate_hz``, or play the file ``replay`` at its
        own rate and ``speed`` times real time (None: as fast as the consumer takes it).  ``coalesce``: the
        consumer buffers blocks until the next window can complete (:meth:`sdk.stream.Stream.samples_until_window`)
        and feeds them in one ``accept``: the same windows at the same samples, a window's work in one call rather
        than one per block.  False feeds every block as it comes (as before 2026-12-06; ``benchmarks.capture_cpu``
        times both)."""
        self._sd: Any = None
        self.replay, self.speed, self.coalesce = replay, speed, coalesce
        if replay is None:
            try:
                import sounddevice
            except (ImportError, OSError) as exc:
                raise ImportError("live capture needs: pip install 'acula-edge[audio]' and the system library "
                                  "libportaudio2 (apt install libportaudio2)") from exc
            self._sd = sounddevice
            self._blocks: Any = None
        else:
            if speed is not None and not speed > 0:
                raise ValueError(f"replay speed must be positive, got {speed}")
            from acula.sdk.audio import iter_audio_blocks

            self._blocks = iter_audio_blocks(replay, block_s)  # the header is checked here, before any session
            sample_rate_hz = self._blocks.sample_rate_hz
        self.model, self.rate, self.device, self.store = model, sample_rate_hz, device, store
        self.block = max(1, int(block_s * sample_rate_hz))
        self.queue: queue.Queue[np.ndarray | int | None] = queue.Queue(maxsize=queue_blocks)
        self.stats = CaptureStats()
        self._pending_gap = 0
        self._replay_error: BaseException | None = None
        self._stop = threading.Event()

    @property
    def source(self) -> str:
        return f"replay:{self.replay}" if self.replay is not None else f"sounddevice:{self.device or 'default'}"

    def _play(self) -> None:
        """The replay thread: the file's blocks into the queue, paced like a device unless speed is None."""
        t0, sent = time.monotonic(), 0
        try:
            for block in self._blocks:
                if self._stop.is_set():
                    return
                if self.speed is None:
                    self._put_waiting(block)
                    self.stats.blocks_received += 1
                else:
                    delay = t0 + sent / self.rate / self.speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self._deliver(block)
                sent += block.size
        except Exception as exc:  # handed to the consumer, which raises it
            self._replay_error = exc
        finally:
            if self._pending_gap:  # blocks dropped at the very end are still owed as silence
                self._put_waiting(self._pending_gap)
                self._pending_gap = 0
            self._put_waiting(_END)

    def _put_waiting(self, item: np.ndarray | int | None) -> None:
        """Put into the queue, waiting while it is full, unless the capture is stopping."""
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _deliver(self, block: np.ndarray) -> None:
        """Queue a float32 block, or count it dropped (and owed as silence) when the queue is full."""
        try:
            if self._pending_gap:
                self.queue.put_nowait(self._pending_gap)
                self._pending_gap = 0
            self.queue.put_nowait(block)
            self.stats.blocks_received += 1
        except queue.Full:
            self.stats.blocks_dropped += 1
            self.stats.samples_dropped += block.shape[0]
            self._pending_gap += block.shape[0]

    @contextlib.contextmanager
    def _input(self) -> Iterator[None]:
        if self.replay is None:
            with self._sd.InputStream(samplerate=self.rate, channels=1, dtype="int16", blocksize=self.block,
                                      device=self.device, callback=self._callback):
                yield
            return
        player = threading.Thread(target=self._play, name="acula-replay", daemon=True)
        player.start()
        try:
            yield
        finally:
            self._stop.set()
            player.join()

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.stats.input_overflows += 1
        self._deliver(indata[:, 0].astype(np.float32) / 32768.0)

    def run(self, duration_s: float | None = None, on_window: Any = None) -> CaptureStats:
        """Capture ``duration_s`` seconds of audio (None: a replayed file to its end); returns the counts and the
        events."""
        if duration_s is None and self.replay is None:
            raise ValueError("live capture needs a duration")
        stream = self.model.stream()
        session = self.store.start_session(self.source, self.model.bundle.source, self.rate) if self.store else None
        needed = int(duration_s * self.rate) if duration_s is not None else math.inf
        consumed = beat = 0
        held = HeldBlocks()  # blocks taken from the queue, not yet fed (coalesce)
        with self._input():
            if self.replay is None or self.speed is not None:
                audio_s = duration_s if duration_s is not None else self._blocks.duration_s
                deadline = time.monotonic() + audio_s / (self.speed or 1.0) * 4 + 5.0
            else:
                deadline = math.inf  # as fast as the model goes: the replay ends the loop
            while consumed < needed and time.monotonic() < deadline:
                try:
                    item = self.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is _END:
                    if self._replay_error is not None:
                        raise self._replay_error
                    break
                chunk = np.zeros(item, dtype=np.float32) if isinstance(item, int) else item
                chunk = chunk[: max(0, int(min(chunk.size, needed - consumed)))]
                consumed += chunk.size
                ready = held.add(chunk, stream) if self.coalesce else chunk
                if ready is not None:
                    self._handle(stream.accept(ready, self.rate), stream, session, on_window)
                if self.store and session is not None and consumed - beat >= self.rate:  # once a second of audio
                    self.store.heartbeat(session, consumed / self.rate)  # the session's end if it never closes
                    beat = consumed
        rest = held.take()
        if rest is not None:
            self._handle(stream.accept(rest, self.rate), stream, session, on_window)
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
