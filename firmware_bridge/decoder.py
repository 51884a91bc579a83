"""Incremental frame decoder: bytes in arbitrary pieces in, ordered audio out, every loss counted.

* Resynchronises on the magic after corruption (skips one byte and searches again).
* Checks each frame's CRC; unknown versions and codecs are reported, never guessed.
* Reorders frames within ``reorder_window`` sequence numbers; a frame that never
  arrives is concealed with silence of the previous frame's length, flagged lost,
  so nothing is stitched across a gap.  Duplicates and late frames are counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.codecs import decode
from firmware_bridge.protocol import (
    CRC,
    FEATURE_SCALE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    Codec,
    Flags,
    Frame,
    ProtocolError,
    unpack,
)


@dataclass
class Counters:
    frames_ok: int = 0
    crc_failures: int = 0
    resyncs: int = 0
    bytes_skipped: int = 0
    unknown_version: int = 0
    unknown_codec: int = 0
    duplicates: int = 0
    late: int = 0
    frames_lost: int = 0
    samples_concealed: int = 0
    control_frames: int = 0
    feature_frames: int = 0


@dataclass
class Chunk:
    """Decoded audio in sequence order; ``lost`` chunks are concealment silence."""

    seq: int
    samples: np.ndarray  # int16; empty for feature frames
    sample_rate_hz: int
    lost: bool = False
    timestamp_us: int = 0
    features: np.ndarray | None = None  # (n_frames, n_mels) float32 normalised log-mel, feature mode only


@dataclass
class FrameDecoder:
    reorder_window: int = 4
    n_mels: int = 64
    on_control: Callable[[Frame], None] | None = None
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._expected: int | None = None
        self._pending: dict[int, Chunk] = {}
        self._last_len = 0
        self._last_feature_frames = 0
        self._in_sync = True
        self._delivered: deque[int] = deque(maxlen=256)  # recent sequence numbers, to tell duplicates from late

    def feed(self, data: bytes) -> list[Chunk]:
        """Accept any number of bytes; return the chunks now ready, in order."""
        self._buf += data
        out: list[Chunk] = []
        while True:
            start = self._buf.find(MAGIC)
            if start < 0:
                keep = 1 if self._buf.endswith(MAGIC[:1]) else 0
                self._skip(len(self._buf) - keep)
                break
            if start:
                self._skip(start)
            if len(self._buf) < HEADER_SIZE:
                break
            length = HEADER.unpack_from(self._buf)[-1]
            if length > MAX_PAYLOAD:
                self.counters.crc_failures += 1
                self._skip(1)
                continue
            total = HEADER_SIZE + length + CRC.size
            if len(self._buf) < total:
                break
            try:
                frame = unpack(bytes(self._buf[:total]))
            except ProtocolError as exc:
                msg = str(exc)
                if "version" in msg:
                    self.counters.unknown_version += 1
                    del self._buf[:total]
                elif "codec" in msg or "rate code" in msg:
                    self.counters.unknown_codec += 1
                    del self._buf[:total]
                else:
                    self.counters.crc_failures += 1
                    self._skip(1)
                continue
            del self._buf[:total]
            self._in_sync = True
            out += self._accept(frame)
        return out

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._in_sync:
            self.counters.resyncs += 1
            self._in_sync = False
        self.counters.bytes_skipped += n
        del self._buf[:n]

    def _accept(self, frame: Frame) -> list[Chunk]:
        if frame.flags & Flags.CONTROL:
            self.counters.control_frames += 1
            if self.on_control:
                self.on_control(frame)
            return []
        if frame.codec == Codec.FEATURES_Q8:
            if len(frame.payload) % self.n_mels:
                self.counters.unknown_codec += 1  # a feature frame that does not fit the front end's shape
                return []
            self.counters.feature_frames += 1
            q = np.frombuffer(frame.payload, dtype=np.int8).reshape(-1, self.n_mels)
            chunk = Chunk(frame.seq, np.zeros(0, dtype=np.int16), frame.sample_rate_hz,
                          timestamp_us=frame.timestamp_us, features=q.astype(np.float32) * FEATURE_SCALE)
        else:
            chunk = Chunk(frame.seq, decode(frame.codec, frame.payload), frame.sample_rate_hz,
                          timestamp_us=frame.timestamp_us)
        offset = 0 if self._expected is None else (frame.seq - self._expected) & 0xFFFF
        if offset >= 0x8000:  # behind the expected frame: a duplicate, or too late (already concealed)
            if frame.seq in self._delivered:
                self.counters.duplicates += 1
            else:
                self.counters.late += 1
            return []
        if frame.seq in self._pending:
            self.counters.duplicates += 1
            return []
        self._pending[frame.seq] = chunk
        self.counters.frames_ok += 1
        return self._drain(force=frame.flags & Flags.END != 0)

    def _drain(self, force: bool = False) -> list[Chunk]:
        out: list[Chunk] = []
        if self._expected is None:  # stream start: the first frames may arrive out of order too
            if len(self._pending) < self.reorder_window and not force:
                return out
            self._expected = min(self._pending, key=lambda s: max((t - s) & 0xFFFF for t in self._pending))
        while self._pending:
            if self._expected in self._pending:
                chunk = self._pending.pop(self._expected)
                self._last_len = chunk.samples.size
                self._last_feature_frames = 0 if chunk.features is None else chunk.features.shape[0]
                self._delivered.append(chunk.seq)
                out.append(chunk)
                self._expected = (self._expected + 1) & 0xFFFF
                continue
            ahead = max((s - self._expected) & 0xFFFF for s in self._pending)
            if ahead < self.reorder_window and not force:
                break
            rate = next(iter(self._pending.values())).sample_rate_hz
            features = None
            if self._last_feature_frames:  # conceal a lost feature frame with the silence floor, flagged lost
                features = np.full((self._last_feature_frames, self.n_mels), -127 * FEATURE_SCALE, np.float32)
            out.append(Chunk(self._expected, np.zeros(self._last_len, dtype=np.int16), rate, lost=True,
                             features=features))
            self.counters.frames_lost += 1
            self.counters.samples_concealed += self._last_len
            self._expected = (self._expected + 1) & 0xFFFF
        return out

    def flush(self) -> list[Chunk]:
        """End of stream: release every pending frame, concealing the gaps between them."""
        return self._drain(force=True) if self._pending else []
