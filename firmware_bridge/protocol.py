"""AcuLa stethoscope wire protocol, version 1.  This docstring is the specification.

Byte order: little-endian throughout.  A frame is a 16-byte header, a payload
and a CRC::

    offset size field
    0      2    magic       0xAC 0x1A
    2      1    version     1
    3      1    flags       bit 0 FEATURES (payload holds log-mel frames, not audio)
                            bit 1 END (last frame of a stream)   bit 2 CONTROL (payload is a control message)
    4      2    seq         frame sequence number, +1 per audio/feature frame, wraps at 65536
    6      4    timestamp   device clock in microseconds, wraps at 2**32
    10     1    codec       0 PCM16, 1 MU_LAW (G.711), 2 IMA_ADPCM (4:1), 3 FEATURES_Q8
    11     1    rate_code   index into SAMPLE_RATES_HZ
    12     1    channel     microphone / chest piece index
    13     1    reserved    0
    14     2    length      payload length in bytes (<= MAX_PAYLOAD)
    16     n    payload
    16+n   2    crc         CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over bytes 2 .. 16+n-1

Payloads:

* PCM16: int16 samples.  MU_LAW: one G.711 byte per sample.
* IMA_ADPCM: a 4-byte block header (int16 predictor, uint8 step index, 0) then
  two 4-bit codes per byte, low nibble first; each frame decodes on its own, so
  a lost frame never corrupts the next one.
* FEATURES_Q8: ``n_frames x n_mels`` int8 values; log-mel = value * FEATURE_SCALE
  (the device computes the project front end; constants in the C header).
* CONTROL (host -> device): uint8 command then arguments: START, STOP,
  SET_GAIN (int8 dB), SET_RATE (uint8 rate_code), FILTER_MODE (uint8: 0 bell,
  1 diaphragm, 2 wide), GET_INFO.  Device -> host DEVICE_INFO: uint16 firmware
  version, uint8 rate_code, int8 mic sensitivity (dBV/Pa), then the UTF-8 model name.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"\xac\x1a"
VERSION = 1
HEADER = struct.Struct("<2sBBHIBBBBH")
CRC = struct.Struct("<H")
HEADER_SIZE = HEADER.size  # 16
MAX_PAYLOAD = 4096
SAMPLE_RATES_HZ = (2000, 4000, 8000, 16000, 22050, 44100, 48000)
FEATURE_SCALE = 1.0 / 16.0  # int8 step in normalised log-mel units


class Flags:
    FEATURES = 0x01
    END = 0x02
    CONTROL = 0x04


class Codec(IntEnum):
    PCM16 = 0
    MU_LAW = 1
    IMA_ADPCM = 2
    FEATURES_Q8 = 3


class Command(IntEnum):
    START = 0x01
    STOP = 0x02
    SET_GAIN = 0x03
    SET_RATE = 0x04
    FILTER_MODE = 0x05
    GET_INFO = 0x06
    DEVICE_INFO = 0x81


class FilterMode(IntEnum):
    BELL = 0
    DIAPHRAGM = 1
    WIDE = 2


class ProtocolError(ValueError):
    """A frame that cannot be built or parsed; the message says which field, ``field`` names it
    (magic, length, crc, version, codec, rate, payload) so a decoder can count it without parsing text."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).

    ``binascii.crc_hqx`` is exactly this CRC when started at 0xFFFF (a test checks it against
    the bitwise definition), so the bridge needs no table or compiled kernel of its own."""
    return binascii.crc_hqx(data, crc)


@dataclass(frozen=True)
class Frame:
    seq: int
    timestamp_us: int
    codec: Codec
    sample_rate_hz: int
    payload: bytes
    channel: int = 0
    flags: int = 0
    version: int = VERSION

    def pack(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD:
            raise ProtocolError(f"payload of {len(self.payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
        if self.sample_rate_hz not in SAMPLE_RATES_HZ:
            raise ProtocolError(f"sample rate {self.sample_rate_hz} Hz is not one of {SAMPLE_RATES_HZ}")
        header = HEADER.pack(MAGIC, self.version, self.flags, self.seq & 0xFFFF, self.timestamp_us & 0xFFFFFFFF,
                             int(self.codec), SAMPLE_RATES_HZ.index(self.sample_rate_hz), self.channel, 0,
                             len(self.payload))
        body = header + self.payload
        return body + CRC.pack(crc16(body[2:]))


def unpack(data: bytes) -> Frame:
    """Parse exactly one frame.  EOFError when ``data`` is short; ProtocolError on a bad
    magic, CRC, version, codec or rate (the message names the field)."""
    if len(data) < HEADER_SIZE:
        raise EOFError(f"need {HEADER_SIZE} header bytes, got {len(data)}")
    magic, version, flags, seq, ts, codec, rate_code, channel, _, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r}", "magic")
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"length {length} exceeds MAX_PAYLOAD", "length")
    end = HEADER_SIZE + length
    if len(data) < end + CRC.size:
        raise EOFError(f"need {end + CRC.size} bytes for this frame, got {len(data)}")
    (crc,) = CRC.unpack_from(data, end)
    if crc != crc16(data[2:end]):
        raise ProtocolError("CRC mismatch", "crc")
    if version != VERSION:
        raise ProtocolError(f"unknown protocol version {version} (this decoder speaks {VERSION})", "version")
    try:
        codec_enum = Codec(codec)
    except ValueError as exc:
        raise ProtocolError(f"unknown codec {codec}", "codec") from exc
    if rate_code >= len(SAMPLE_RATES_HZ):
        raise ProtocolError(f"unknown rate code {rate_code}", "rate")
    return Frame(seq, ts, codec_enum, SAMPLE_RATES_HZ[rate_code], bytes(data[HEADER_SIZE:end]), channel, flags,
                 version)


def control(command: Command, argument: bytes = b"", seq: int = 0) -> bytes:
    """A host -> device control frame."""
    return Frame(seq, 0, Codec.PCM16, 16000, bytes([int(command)]) + argument, flags=Flags.CONTROL).pack()


def device_info(firmware_version: int, sample_rate_hz: int, mic_sensitivity_dbv: int, model: str) -> bytes:
    payload = bytes([Command.DEVICE_INFO]) + struct.pack("<HBb", firmware_version,
                                                         SAMPLE_RATES_HZ.index(sample_rate_hz),
                                                         mic_sensitivity_dbv) + model.encode()
    return Frame(0, 0, Codec.PCM16, sample_rate_hz, payload, flags=Flags.CONTROL).pack()


def parse_device_info(payload: bytes) -> dict[str, object]:
    if not payload or payload[0] != Command.DEVICE_INFO or len(payload) < 5:
        raise ProtocolError("not a DEVICE_INFO payload", "payload")
    fw, rate_code, sens = struct.unpack_from("<HBb", payload, 1)
    if rate_code >= len(SAMPLE_RATES_HZ):
        raise ProtocolError(f"DEVICE_INFO names unknown rate code {rate_code}", "rate")
    return {"firmware_version": fw, "sample_rate_hz": SAMPLE_RATES_HZ[rate_code], "mic_sensitivity_dbv": sens,
            "model": payload[5:].decode("utf-8", errors="replace")}
