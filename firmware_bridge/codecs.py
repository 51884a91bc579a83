"""Audio codecs of the wire protocol: PCM16, G.711 mu-law and IMA-ADPCM (per-frame blocks).

``AUDIO_CODECS`` is the one table of them, by command-line name: a new codec is its functions here, one row
there, and its value in ``protocol.Codec`` (with the wire specification's line).  The bridge command, the
simulated stethoscope, the decoder and the benchmarks all read the table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
from acula.firmware_bridge.protocol import MAX_PAYLOAD, Codec, ProtocolError

IMA_STEPS = np.array([
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80, 88, 97,
    107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796,
    876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871,
    5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623,
    27086, 29794, 32767], dtype=np.int32)
IMA_INDEX = (-1, -1, -1, -1, 2, 4, 6, 8)
ADPCM_BLOCK = struct.Struct("<hBB")

def mulaw_encode(pcm: np.ndarray) -> bytes:
    """G.711 mu-law of int16 samples."""
    x = np.asarray(pcm, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()

def mulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -mag, mag).astype(np.int16)

def adpcm_encode(pcm: np.ndarray, predictor: int | None = None, index: int = 0) -> tuple[bytes, int, int]:
    """IMA-ADPCM block: header (predictor, step index) then 4-bit codes, low nibble first.

    Returns (block, predictor, index) so a stream encoder carries its state into the
    next block's header; each block still decodes on its own.
    """
    x = np.asarray(pcm, dtype=np.int32)
    pred = int(x[0]) if predictor is None and x.size else int(predictor or 0)
    header = ADPCM_BLOCK.pack(pred, index, 0)
    codes = []
    for sample in x:
        step = int(IMA_STEPS[index])
        diff = int(sample) - pred
        code = 8 if diff < 0 else 0
        diff = abs(diff)
        delta = step >> 3
        if diff >= step:
            code |= 4
            diff -= step
            delta += step
        if diff >= step >> 1:
            code |= 2
            diff -= step >> 1
            delta += step >> 1
        if diff >= step >> 2:
            code |= 1
            delta += step >> 2
        pred = max(-32768, min(32767, pred - delta if code & 8 else pred + delta))
        index = max(0, min(88, index + IMA_INDEX[code & 7]))
        codes.append(code)
    if len(codes) % 2:
        codes.append(0)
    packed = bytes((codes[i] & 0x0F) | ((codes[i + 1] & 0x0F) << 4) for i in range(0, len(codes), 2))
    return header + packed, pred, index

class AdpcmEncoder:
    """Stateful IMA-ADPCM: the step size adapts across frames as a device's encoder does."""

    def __init__(self) -> None:
        self.predictor: int | None = None
        self.index = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        block, self.predictor, self.index = adpcm_encode(pcm, self.predictor, self.index)
        return block

def _adpcm_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(signed delta, next step index) for every (step index, 4-bit code), flattened as index * 16 + code.

    The decoder's inner loop becomes two table look-ups and a clamp per sample, fast enough in plain
    Python (a 256-sample frame in well under a millisecond) that the bridge needs no compiled kernel."""
    deltas, nexts = [], []
    for index in range(89):
        step = int(IMA_STEPS[index])
        for code in range(16):
            delta = step >> 3
            if code & 4:
                delta += step
            if code & 2:
                delta += step >> 1
            if code & 1:
                delta += step >> 2
            deltas.append(-delta if code & 8 else delta)
            nexts.append(16 * max(0, min(88, index + IMA_INDEX[code & 7])))
    return tuple(deltas), tuple(nexts)


_ADPCM_DELTA, _ADPCM_NEXT = _adpcm_tables()
_DELTA = np.array(_ADPCM_DELTA, dtype=np.int64)
_NEXT = np.array(_ADPCM_NEXT, dtype=np.int64)
# step-index row after a whole code byte (low nibble, then high), indexed by row * 16 + byte: one look-up a byte
_NEXT_BYTE = tuple(_ADPCM_NEXT[_ADPCM_NEXT[row + (b & 0x0F)] + (b >> 4)] for row in range(0, 89 * 16, 16)
                   for b in range(256))


def adpcm_decode(block: bytes, n_samples: int | None = None) -> np.ndarray:
    """One IMA-ADPCM block -> int16 samples, two per code byte (``n_samples`` trims the padding nibble).

    The step-index sequence is one table look-up per byte; the predictor is then a cumulative sum of
    table deltas (numpy), exact unless it leaves the int16 range, where the clamping loop takes over."""
    if len(block) < ADPCM_BLOCK.size:
        raise ProtocolError(f"IMA-ADPCM block of {len(block)} bytes is shorter than its 4-byte header", "payload")
    pred, index, _ = ADPCM_BLOCK.unpack_from(block)
    if index > 88:
        raise ProtocolError(f"IMA-ADPCM step index {index} out of range 0..88", "payload")
    codes = bytes(block[ADPCM_BLOCK.size :])
    next_byte = _NEXT_BYTE
    rows = np.fromiter(accumulate(codes[:-1], lambda row, b: next_byte[row * 16 + b], initial=16 * index),
                       dtype=np.int64, count=len(codes))
    c = np.frombuffer(codes, dtype=np.uint8).astype(np.int64)
    lo, hi = c & 0x0F, c >> 4
    deltas = np.empty(2 * c.size, dtype=np.int64)
    deltas[0::2] = _DELTA[rows + lo]
    deltas[1::2] = _DELTA[_NEXT[rows + lo] + hi]
    out = pred + np.cumsum(deltas)
    if out.size and (out.min() < -32768 or out.max() > 32767):
        out = np.array(_adpcm_decode_clamped(codes, pred, index), dtype=np.int64)
    samples = out.astype(np.int16)
    return samples if n_samples is None else samples[:n_samples]


def _adpcm_decode_clamped(codes: bytes, pred: int, index: int) -> list[int]:
    delta_of, next_of = _ADPCM_DELTA, _ADPCM_NEXT
    row = 16 * index
    out = []
    for byte in codes:
        for code in (byte & 0x0F, byte >> 4):
            pred += delta_of[row + code]
            pred = -32768 if pred < -32768 else 32767 if pred > 32767 else pred
            row = next_of[row + code]
            out.append(pred)
    return out


def pcm16_encode(pcm: np.ndarray) -> bytes:
    return np.asarray(pcm, dtype=np.int16).astype("<i2").tobytes()


def pcm16_decode(payload: bytes) -> np.ndarray:
    if len(payload) % 2:
        raise ProtocolError(f"PCM16 payload has an odd number of bytes ({len(payload)})", "payload")
    return np.frombuffer(payload, dtype="<i2").astype(np.int16)


@dataclass(frozen=True)
class AudioCodec:
    """One audio codec of the wire: its ``Codec`` value, the most samples a frame's payload holds, how a
    payload decodes to int16 samples, and ``encoder()``: a new per-stream encode function (int16 samples ->
    payload; IMA-ADPCM's step size carries from frame to frame, as a device's encoder does)."""

    codec: Codec
    max_frame_samples: int
    decode: Callable[[bytes], np.ndarray]
    encoder: Callable[[], Callable[[np.ndarray], bytes]]


#: command-line name -> codec (ADPCM: a 4-byte block header, then two samples a byte)
AUDIO_CODECS: dict[str, AudioCodec] = {
    "pcm16": AudioCodec(Codec.PCM16, MAX_PAYLOAD // 2, pcm16_decode, lambda: pcm16_encode),
    "mulaw": AudioCodec(Codec.MU_LAW, MAX_PAYLOAD, mulaw_decode, lambda: mulaw_encode),
    "adpcm": AudioCodec(Codec.IMA_ADPCM, 2 * (MAX_PAYLOAD - ADPCM_BLOCK.size), adpcm_decode,
                        lambda: AdpcmEncoder().encode),
}
_BY_VALUE = {c.codec: c for c in AUDIO_CODECS.values()}


def audio_codec(codec: Codec) -> AudioCodec:
    """The table's row for ``codec``; ProtocolError for a codec that carries no audio samples (features)."""
    if codec not in _BY_VALUE:
        raise ProtocolError(f"codec {codec!r} does not carry audio samples", "codec")
    return _BY_VALUE[codec]


def encode(codec: Codec, pcm: np.ndarray) -> bytes:
    """int16 samples -> one payload, from a fresh encoder (a stream of frames keeps one: ``encoder()``)."""
    return audio_codec(codec).encoder()(np.asarray(pcm, dtype=np.int16))


def decode(codec: Codec, payload: bytes) -> np.ndarray:
    """Payload -> int16 samples."""
    return audio_codec(codec).decode(payload)
