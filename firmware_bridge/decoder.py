"""Incremental frame decoder: bytes in arbitrary pieces in, ordered audio out, every loss counted.

``FrameDecoder.feed`` never raises on bytes from the wire; whatever it cannot use it counts
in ``counters`` and, where it would break the timeline, conceals.

* Framing.  A header is *plausible* when its version, codec and rate code are known and its
  length fits; out of sync, a C-speed regex finds plausible headers only, and only
  they are CRC-checked, from a credit of ``_CRC_CREDIT_PER_BYTE`` CRC bytes per byte
  scanned (beyond it, a candidate is checked only when another plausible header
  follows it, within a bounded debt).  At the exact position where the next frame is due (just after a good frame,
  or at stream start) any header is checked, so a CRC-valid frame of an unknown
  version, codec or rate is counted by name.  Decoding time stays linear in the
  bytes received however many fake headers the garbage holds.  ``flush`` rescans
  what is left, so intact frames behind a bogus header that promised more bytes than the
  stream holds are still delivered.
* Payloads.  A CRC-valid frame whose payload cannot be decoded (odd PCM16, an ADPCM block
  shorter than its header or with a step index above 88, a feature block that is not a
  whole number of mel frames) is counted in ``bad_payload`` and treated as lost.
* Order.  Frames are reordered within ``reorder_window`` frames.  A gap of at most
  ``max_gap_frames`` frames and ``max_gap_s`` seconds is concealed with silence of the
  previous frame's length, flagged ``lost``; a longer forward jump is a discontinuity:
  nothing is synthesised, the skipped sequence numbers are counted in ``frames_skipped``
  and the next chunk opens a new ``segment``.
* Restarts.  A frame behind the stream is a duplicate when the same frame (sequence number,
  timestamp and CRC) was delivered, late when its slot was concealed or skipped.  A frame
  behind the stream that differs from the frame delivered in its slot, one more than
  ``LATE_HORIZON`` frames behind, or ``reorder_window`` (at least 2) consecutive late frames mean the
  device restarted its sequence: the old epoch is flushed and a new one starts (``resets``).  A
  restart that lands a little ahead of the stream (a gap) is told by the device clock going back.
* A change of sample rate or between audio and feature frames opens a new ``segment``
  (``rate_changes`` counts rate changes), so a consumer can start a new stream there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from acula.firmware_bridge.codecs import decode
from acula.firmware_bridge.protocol import (
    CRC,
    FEATURE_SCALE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    SAMPLE_RATES_HZ,
    VERSION,
    Codec,
    Flags,
    Frame,
    ProtocolError,
    crc16,
)
from acula.sdk.frontend_config import FrontendConfig

MAX_GAP_FRAMES = 64  # longest gap concealed with silence, in frames ...
MAX_GAP_S = 1.0  # ... and in seconds of audio; a longer gap is a discontinuity, never synthesised
LATE_HORIZON = 256  # frames remembered behind the stream; a frame further behind means a restart
# Out of sync, CRC checks are paid from a credit earned by bytes scanned, so garbage full of plausible fake
# headers costs at most this many CRC bytes per stream byte (plus 2 * _MAX_CRC_CREDIT); when the credit runs
# out, a candidate is only checked if a plausible header follows it, until a debt of _MAX_CRC_CREDIT.
_CRC_CREDIT_PER_BYTE = 4
_MAX_CRC_CREDIT = 8 * (HEADER_SIZE + MAX_PAYLOAD + CRC.size)


def _below(n: int) -> bytes:
    """A regex class of one byte in 0..n-1."""
    return b"[\\x00-" + f"\\x{n - 1:02x}".encode() + b"]"


_PLAUSIBLE_HEADER = re.compile(  # magic, version, flags, seq, timestamp, a known codec and rate, ..., length <= 4096
    re.escape(MAGIC) + re.escape(bytes([VERSION])) + rb"[\x00-\xff]{7}" + _below(len(Codec))
    + _below(len(SAMPLE_RATES_HZ)) + rb"[\x00-\xff]{2}(?:[\x00-\xff][\x00-\x0f]|\x00\x10)")


@dataclass
class Counters:
    frames_ok: int = 0  # frames accepted (each is delivered exactly once)
    crc_failures: int = 0
    resyncs: int = 0  # times the byte stream lost frame alignment
    bytes_skipped: int = 0  # bytes outside any good frame
    truncated: int = 0  # plausible headers whose frame the stream ended before
    unknown_version: int = 0
    unknown_codec: int = 0
    unknown_rate: int = 0
    bad_payload: int = 0  # CRC-valid frames whose payload cannot be decoded (treated as lost)
    bad_control: int = 0  # control frames the ``on_control`` handler refused with a ProtocolError
    duplicates: int = 0
    late: int = 0
    frames_lost: int = 0  # sequence numbers concealed with silence
    samples_concealed: int = 0
    discontinuities: int = 0  # forward jumps longer than the maximum gap
    frames_skipped: int = 0  # sequence numbers jumped over by those discontinuities, not concealed
    resets: int = 0  # device sequence restarts (new epochs)
    rate_changes: int = 0
    control_frames: int = 0
    feature_frames: int = 0


@dataclass
class Chunk:
    """Decoded audio in sequence order; ``lost`` chunks are concealment silence.

    ``segment`` increases where the timeline breaks (restart, discontinuity, rate or mode
    change): samples of one segment are contiguous, different segments must not be stitched."""

    seq: int
    samples: np.ndarray  # int16; empty for feature frames
    sample_rate_hz: int
    lost: bool = False
    timestamp_us: int = 0
    features: np.ndarray | None = None  # (n_frames, n_mels) float32 normalised log-mel, feature mode only
    segment: int = 0
    end: bool = False  # the device marked this frame as the last of its stream


@dataclass
class _Slot:
    chunk: Chunk
    key: tuple[int, int]  # (timestamp, crc): tells a duplicate from a different frame in the same slot


@dataclass
class FrameDecoder:
    reorder_window: int = 4
    n_mels: int = 64
    on_control: Callable[[Frame], None] | None = None
    max_gap_frames: int = MAX_GAP_FRAMES
    max_gap_s: float = MAX_GAP_S
    counters: Counters = field(default_factory=Counters)
    #: seconds one log-mel frame of a feature-mode frame covers (the front end's hop), for the ``max_gap_s`` cap
    feature_hop_s: float = FrontendConfig().hop_length / FrontendConfig().sample_rate_hz

    def __post_init__(self) -> None:
        if self.reorder_window < 1:
            raise ValueError(f"reorder_window must be at least 1, got {self.reorder_window}")
        if self.max_gap_frames < 0 or self.max_gap_s < 0:
            raise ValueError("max_gap_frames and max_gap_s must not be negative")
        self._buf = bytearray()
        self._pos = 0  # first unconsumed byte of _buf
        self._sync = 0  # where the next frame is due (just after the last good one); -1 when out of sync
        self._crc_credit = _MAX_CRC_CREDIT  # bytes of CRC left for candidates out of sync (see _scan)
        self._segment = 0
        self._new_segment = False
        self._last: Chunk | None = None  # last delivered chunk, real or concealed
        self._start_epoch()

    def _start_epoch(self) -> None:
        self._expected: int | None = None
        self._pending: dict[int, _Slot] = {}
        self._delivered: dict[int, tuple[int, int]] = {}  # seq -> key of the last LATE_HORIZON frames delivered
        self._late: list[_Slot] = []  # a run of consecutive late frames: a restart if it grows to reorder_window

    @property
    def n_segments(self) -> int:
        """Segments delivered so far (0 before the first chunk)."""
        return 0 if self._last is None else self._segment + 1

    # ---- framing -------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Chunk]:
        """Accept any number of bytes; return the chunks now ready, in order.  Never raises on wire bytes."""
        self._buf += data
        return self._scan(final=False)

    def flush(self) -> list[Chunk]:
        """End of stream: rescan what is left of the buffer, then release every pending frame,
        concealing the gaps between them."""
        out = self._scan(final=True)
        out += self._drain(force=True)
        self._end_late_run()
        return out

    def _scan(self, final: bool) -> list[Chunk]:
        out: list[Chunk] = []
        buf = self._buf
        while True:
            start = self._next_candidate(final)
            if start < 0:
                break
            _, version, flags, seq, ts, codec, rate_code, channel, _, length = HEADER.unpack_from(buf, start)
            plausible = version == VERSION and codec < len(Codec) and rate_code < len(SAMPLE_RATES_HZ)
            if length > MAX_PAYLOAD or not (plausible or start == self._sync):
                self._skip(1)  # not a frame start (only the due position may hold an unknown field)
                continue
            end = start + HEADER_SIZE + length
            checked = start == self._sync or self._crc_credit >= length
            if len(buf) < end + CRC.size + (0 if checked or final else HEADER_SIZE):
                if not final:
                    break  # wait for the rest of the frame
                if plausible:
                    self.counters.truncated += 1
                self._skip(1)  # the stream ended inside this frame, or its length is bogus: rescan after it
                continue
            if not checked and (self._crc_credit < -_MAX_CRC_CREDIT or not (
                    len(buf) == end + CRC.size or _PLAUSIBLE_HEADER.match(buf, end + CRC.size))):
                self._skip(1)  # out of CRC credit: only a candidate that another header follows is checked
                continue
            if start != self._sync:
                self._crc_credit -= length
            crc = crc16(bytes(buf[start + 2 : end]))
            if CRC.unpack_from(buf, end)[0] != crc:
                self.counters.crc_failures += 1
                self._skip(1)
                continue
            payload = bytes(buf[start + HEADER_SIZE : end])
            self._advance(end + CRC.size - self._pos)
            self._sync = self._pos
            if version != VERSION:
                self.counters.unknown_version += 1
            elif codec >= len(Codec):
                self.counters.unknown_codec += 1
            elif rate_code >= len(SAMPLE_RATES_HZ):
                self.counters.unknown_rate += 1
            else:
                frame = Frame(seq, ts, Codec(codec), SAMPLE_RATES_HZ[rate_code], payload, channel, flags, version)
                out += self._accept(frame, crc)
        del buf[: self._pos]  # amortised O(1): CPython moves a bytearray's start instead of copying
        if self._sync >= 0:
            self._sync -= self._pos
        self._pos = 0
        return out

    def _next_candidate(self, final: bool) -> int:
        """Position of the next frame candidate with a whole header in the buffer, or -1 (skipping what
        cannot start one).  The due position is taken as it is; elsewhere a C-speed regex search finds
        plausible headers only, so runs of magic bytes in garbage cost no Python per byte."""
        buf = self._buf
        if self._sync == self._pos and buf.startswith(MAGIC, self._pos) and len(buf) - self._pos >= HEADER_SIZE:
            return self._pos
        match = _PLAUSIBLE_HEADER.search(buf, self._pos)
        if match is not None:
            self._skip(match.start() - self._pos)
            return match.start()
        # no whole plausible header: keep a tail that may still become one (or the due frame), skip the rest
        tail = len(buf) if final else max(self._pos, len(buf) - HEADER_SIZE + 1)
        if not final and self._sync == self._pos and len(buf) - self._pos < HEADER_SIZE:
            tail = self._pos
        magic = buf.find(MAGIC[:1], tail)
        self._skip((len(buf) if magic < 0 else magic) - self._pos)
        return -1

    def _advance(self, n: int) -> None:
        self._pos += n
        self._crc_credit = min(_MAX_CRC_CREDIT, self._crc_credit + _CRC_CREDIT_PER_BYTE * n)

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._sync >= 0:
            self.counters.resyncs += 1
            self._sync = -1
        self.counters.bytes_skipped += n
        self._advance(n)

    # ---- frames --------------------------------------------------------------------------------------------

    def _decode(self, frame: Frame) -> Chunk | None:
        if frame.codec == Codec.FEATURES_Q8:
            if not frame.payload or len(frame.payload) % self.n_mels:
                return None  # not a whole number of mel frames of the front end's shape
            q = np.frombuffer(frame.payload, dtype=np.int8).reshape(-1, self.n_mels)
            return Chunk(frame.seq, np.zeros(0, dtype=np.int16), frame.sample_rate_hz,
                         timestamp_us=frame.timestamp_us, features=q.astype(np.float32) * FEATURE_SCALE,
                         end=frame.flags & Flags.END != 0)
        try:
            samples = decode(frame.codec, frame.payload)
        except ProtocolError:
            return None
        return Chunk(frame.seq, samples, frame.sample_rate_hz, timestamp_us=frame.timestamp_us,
                     end=frame.flags & Flags.END != 0)

    def _accept(self, frame: Frame, crc: int) -> list[Chunk]:
        if frame.flags & Flags.CONTROL:
            self.counters.control_frames += 1
            if self.on_control:
                try:
                    self.on_control(frame)
                except ProtocolError:  # e.g. parse_device_info on a malformed DEVICE_INFO
                    self.counters.bad_control += 1
            return []
        chunk = self._decode(frame)
        if chunk is None:
            self.counters.bad_payload += 1  # its slot stays empty and is concealed like a lost frame
            return []
        if chunk.features is not None:
            self.counters.feature_frames += 1
        slot = _Slot(chunk, (frame.timestamp_us, crc))
        if self._expected is not None and (frame.seq - self._expected) & 0xFFFF >= 0x8000 and not any(
                0 < (frame.seq - s) & 0xFFFF <= self.reorder_window for s in self._pending):
            return self._behind(slot)  # (a frame just after one waiting in the queue is ahead, however far)
        self._end_late_run()
        return self._queue([slot], force=chunk.end)

    def _queue(self, slots: list[_Slot], force: bool) -> list[Chunk]:
        for slot in slots:
            if slot.chunk.seq in self._pending:
                self.counters.duplicates += 1
            else:
                self._pending[slot.chunk.seq] = slot
                self.counters.frames_ok += 1
        return self._drain(force=force)

    def _behind(self, slot: _Slot) -> list[Chunk]:
        """A frame behind the stream: a duplicate, a late frame, or the first of a restarted device."""
        seq = slot.chunk.seq
        seen = self._delivered.get(seq)
        if seen == slot.key:
            self.counters.duplicates += 1
            return []
        if self._late and not 0 < (seq - self._late[-1].chunk.seq) & 0xFFFF <= self.reorder_window:
            self._end_late_run()  # not consecutive with the run: those frames really were late
        self._late.append(slot)
        behind = (self._expected - seq) & 0xFFFF if self._expected is not None else 0
        if seen is None and behind <= LATE_HORIZON and len(self._late) < max(2, self.reorder_window):
            return []  # late, unless more consecutive frames follow
        # a different frame in a delivered slot, one far behind, or a run of them: the device restarted
        run, self._late = self._late, []
        out = self._drain(force=True)
        self._start_epoch()
        self._new_segment = True
        self.counters.resets += 1
        return out + self._queue(run, force=slot.chunk.end)

    def _end_late_run(self) -> None:
        self.counters.late += len(self._late)
        self._late = []

    # ---- ordering ------------------------------------------------------------------------------------------

    def _drain(self, force: bool = False) -> list[Chunk]:
        out: list[Chunk] = []
        if not self._pending:
            return out
        if self._expected is None:  # epoch start: the first frames may arrive out of order too
            if len(self._pending) < self.reorder_window and not force:
                return out
            self._expected = min(self._pending, key=lambda s: max((t - s) & 0xFFFF for t in self._pending))
        while self._pending:
            slot = self._pending.pop(self._expected, None)
            if slot is not None:
                self._deliver(slot.chunk, slot.key, out)
                self._expected = (self._expected + 1) & 0xFFFF
                continue
            if len(self._pending) < self.reorder_window and not force:
                break  # the missing frame may still arrive
            gap = min((s - self._expected) & 0xFFFF for s in self._pending)
            self._fill_gap(gap, self._pending[(self._expected + gap) & 0xFFFF].chunk, out)
            self._expected = (self._expected + gap) & 0xFFFF
        return out

    def _fill_gap(self, gap: int, nxt: Chunk, out: list[Chunk]) -> None:
        last = self._last
        # the time a lost frame stands for, from the last one delivered: its samples, or its log-mel frames; a frame
        # that carried nothing tells no length, so a gap after it is a discontinuity, never a hole filled with 0 s
        short = last is not None and (
            gap * last.samples.size <= self.max_gap_s * last.sample_rate_hz if last.features is None
            else gap * last.features.shape[0] * self.feature_hop_s <= self.max_gap_s)
        told = last is not None and (last.samples.size if last.features is None else last.features.shape[0]) > 0
        concealable = (last is not None and not self._new_segment and gap <= self.max_gap_frames
                       and nxt.sample_rate_hz == last.sample_rate_hz
                       and (nxt.features is None) == (last.features is None) and short and told)
        if last is not None and (nxt.timestamp_us - last.timestamp_us) & 0xFFFFFFFF >= 0x80000000:
            self.counters.resets += 1  # a small jump ahead, but the device clock went back: it restarted
            self._new_segment = True
            return
        if not concealable or last is None:
            self.counters.discontinuities += 1
            self.counters.frames_skipped += gap
            self._new_segment = True
            return
        features = None
        if last.features is not None:  # conceal a lost feature frame with the silence floor, flagged lost
            features = np.full(last.features.shape, -127 * FEATURE_SCALE, np.float32)
        for i in range(gap):
            seq = (self._expected + i) & 0xFFFF
            out.append(Chunk(seq, np.zeros(last.samples.size, dtype=np.int16), last.sample_rate_hz, lost=True,
                             features=features, segment=self._segment))
            self.counters.frames_lost += 1
            self.counters.samples_concealed += last.samples.size
            self._delivered.pop(seq, None)

    def _deliver(self, chunk: Chunk, key: tuple[int, int], out: list[Chunk]) -> None:
        last = self._last
        if last is not None and (self._new_segment or chunk.sample_rate_hz != last.sample_rate_hz
                                 or (chunk.features is None) != (last.features is None)):
            self._segment += 1
            if chunk.sample_rate_hz != last.sample_rate_hz:
                self.counters.rate_changes += 1
        self._new_segment = False
        chunk.segment = self._segment
        self._delivered.pop(chunk.seq, None)  # a reused slot moves to the newest end
        self._delivered[chunk.seq] = key
        if len(self._delivered) > LATE_HORIZON:
            del self._delivered[next(iter(self._delivered))]  # dicts keep insertion order: the oldest goes
        self._last = chunk
        out.append(chunk)
