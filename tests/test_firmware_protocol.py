"""Wire protocol and decoder: round trips, truncation, unknown fields, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from acula.firmware_bridge.codecs import AdpcmEncoder, adpcm_decode, decode, encode, mulaw_decode, mulaw_encode
from acula.firmware_bridge.decoder import FrameDecoder
from acula.firmware_bridge.protocol import (
    HEADER_SIZE,
    Codec,
    Command,
    Flags,
    Frame,
    ProtocolError,
    control,
    crc16,
    device_info,
    parse_device_info,
    unpack,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

N = 160  # samples per frame in the property tests


def frames_of(payloads: list[np.ndarray], codec: Codec = Codec.PCM16) -> list[bytes]:
    return [Frame(i, i * 10_000, codec, 16000, encode(codec, p)).pack() for i, p in enumerate(payloads)]


def decode_all(stream: bytes, cuts: list[int], window: int = 4) -> tuple[list, FrameDecoder]:
    dec = FrameDecoder(reorder_window=window)
    out, prev = [], 0
    for c in sorted(set(cuts)) + [len(stream)]:
        out += dec.feed(stream[prev:c])
        prev = c
    return out + dec.flush(), dec


def test_crc_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1


def test_frame_round_trip_and_truncation():
    f = Frame(65535, 2**32 - 1, Codec.MU_LAW, 8000, b"\x01\x02\x03", channel=2, flags=Flags.END)
    data = f.pack()
    assert unpack(data) == f
    for cut in (0, 5, HEADER_SIZE, len(data) - 1):
        with pytest.raises(EOFError):
            unpack(data[:cut])


def test_unknown_version_and_codec_are_reported_not_guessed():
    good = Frame(0, 0, Codec.PCM16, 16000, b"\x00\x00").pack()
    bad_version = bytearray(good)
    bad_version[2] = 7
    bad_codec = bytearray(good)
    bad_codec[10] = 9
    for bad, word in ((bad_version, "version"), (bad_codec, "codec")):
        body = bytes(bad[:-2])
        fixed = body + crc16(body[2:]).to_bytes(2, "little")
        with pytest.raises(ProtocolError, match=word):
            unpack(fixed)
        dec = FrameDecoder()
        assert dec.feed(fixed + good) + dec.flush() != []
        assert (dec.counters.unknown_version, dec.counters.unknown_codec) == ((1, 0) if word == "version" else (0, 1))


def test_refuses_oversize_payload_and_unknown_rate():
    with pytest.raises(ProtocolError, match="MAX_PAYLOAD"):
        Frame(0, 0, Codec.PCM16, 16000, bytes(5000)).pack()
    with pytest.raises(ProtocolError, match="sample rate"):
        Frame(0, 0, Codec.PCM16, 11025, b"").pack()


def test_codecs_round_trip_within_their_precision():
    x = (np.sin(np.arange(1600) / 7) * 12000).astype(np.int16)
    assert np.array_equal(decode(Codec.PCM16, encode(Codec.PCM16, x)), x)
    err = np.abs(mulaw_decode(mulaw_encode(x)).astype(int) - x)
    assert np.all(err <= np.maximum(8, np.abs(x) // 16))  # mu-law: about 4 bits of relative precision
    enc = AdpcmEncoder()
    blocks = [enc.encode(x[i : i + 160]) for i in range(0, 1600, 160)]
    assert all(len(b) == 4 + 80 for b in blocks)  # 4:1 plus the block header
    y = np.concatenate([adpcm_decode(b) for b in blocks])
    assert np.abs(y[400:].astype(int) - x[400:]).max() < 1500  # after the step size has adapted
    assert np.corrcoef(y, x)[0, 1] > 0.99


def test_control_and_device_info_messages():
    frame = unpack(control(Command.SET_GAIN, (-6).to_bytes(1, "little", signed=True)))
    assert frame.flags & Flags.CONTROL and frame.payload == bytes([3, 0xFA])
    info = unpack(device_info(0x0102, 8000, -38, "AcuScope 2"))
    assert parse_device_info(info.payload) == {"firmware_version": 258, "sample_rate_hz": 8000,
                                               "mic_sensitivity_dbv": -38, "model": "AcuScope 2"}
    seen = []
    dec = FrameDecoder(on_control=seen.append)
    assert dec.feed(control(Command.START)) == [] and seen[0].payload == b"\x01"


payload_lists = st.lists(st.binary(min_size=2 * N, max_size=2 * N), min_size=1, max_size=25).map(
    lambda bs: [np.frombuffer(b, dtype="<i2").copy() for b in bs])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload_lists, st.lists(st.integers(0, 20000), max_size=30))
def test_any_split_of_the_stream_delivers_every_frame_once_in_order(payloads, cuts):
    stream = b"".join(frames_of(payloads))
    out, dec = decode_all(stream, [c % (len(stream) + 1) for c in cuts])
    assert [c.seq for c in out] == list(range(len(payloads)))
    assert all(np.array_equal(c.samples, p) for c, p in zip(out, payloads, strict=True))
    assert dec.counters.frames_ok == len(payloads) and dec.counters.frames_lost == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload_lists, st.data())
def test_bit_flips_drops_and_duplicates_never_raise_and_every_sample_is_accounted(payloads, data):
    frames = frames_of(payloads)
    n = len(frames)
    dropped = data.draw(st.sets(st.integers(0, n - 1), max_size=n // 3))
    flipped = data.draw(st.sets(st.integers(0, n - 1), max_size=n // 3)) - dropped
    dup = data.draw(st.sets(st.integers(0, n - 1), max_size=3)) - dropped - flipped
    wire = []
    for i, f in enumerate(frames):
        if i in dropped:
            continue
        if i in flipped:
            b = bytearray(f)
            pos = data.draw(st.integers(HEADER_SIZE, len(b) - 1))  # inside payload or CRC
            b[pos] ^= 1 << data.draw(st.integers(0, 7))
            f = bytes(b)
        wire.append(f)
        if i in dup:
            wire.append(f)
    stream = b"".join(wire)
    out, dec = decode_all(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    intact = [i for i in range(n) if i not in dropped and i not in flipped]
    delivered = [c.seq for c in out if not c.lost]
    assert delivered == intact  # every intact frame exactly once, in order
    assert all(np.array_equal(c.samples, payloads[c.seq]) for c in out if not c.lost)
    last = max(intact, default=-1)
    first = min(intact, default=0)
    lost_between = [i for i in range(first, last + 1) if i not in intact]
    assert sorted(c.seq for c in out if c.lost) == lost_between
    assert dec.counters.samples_concealed == N * len(lost_between)
    assert dec.counters.duplicates == len(dup)
    assert dec.counters.crc_failures >= (1 if flipped else 0)
