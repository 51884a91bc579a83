"""The RIFF/WAVE header, read only as far as the SDK needs to check it before trusting libsndfile.

libsndfile silently clamps a data chunk that claims more bytes than the file holds and ignores the byte rate
field; :func:`wav_layout` returns both, so :func:`sdk.audio.load_audio` can flag a truncated file and refuse
a header whose sample rate and byte rate disagree.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

__all__ = ["PCM_FORMAT_TAGS", "UNSET_DATA_SIZES", "WavLayout", "wav_layout"]

# RIFF/WAVE layout (little-endian): "RIFF" size "WAVE", then chunks of (4-byte id, uint32 size, data, pad byte
# to an even size).  "fmt " starts (format tag, channels, sample rate, byte rate, block align, bits).
_RIFF_HEAD = struct.Struct("<4sI4s")
_CHUNK_HEAD = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
PCM_FORMAT_TAGS = (0x0001, 0x0003, 0xFFFE)  # integer PCM, IEEE float, extensible
UNSET_DATA_SIZES = (0, 0xFFFFFFFF)  # written by recorders that never patch the header: the file length rules
_MAX_CHUNKS = 1024


@dataclass(frozen=True)
class WavLayout:
    format_tag: int
    sample_rate_hz: int
    byte_rate: int
    block_align: int
    declared_data_bytes: int
    available_data_bytes: int  # bytes after the data chunk header up to the end of the file


def wav_layout(path: str) -> WavLayout | None:
    """The fmt and data chunk fields of a RIFF/WAVE file; None for anything else (FLAC, RF64, ...)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(_RIFF_HEAD.size)
        if len(head) < _RIFF_HEAD.size:
            return None
        riff, _, wave = _RIFF_HEAD.unpack(head)
        if riff != b"RIFF" or wave != b"WAVE":
            return None
        fmt: tuple[int, ...] | None = None
        pos = _RIFF_HEAD.size
        for _ in range(_MAX_CHUNKS):
            f.seek(pos)
            chunk = f.read(_CHUNK_HEAD.size)
            if len(chunk) < _CHUNK_HEAD.size:
                return None
            chunk_id, n_bytes = _CHUNK_HEAD.unpack(chunk)
            if chunk_id == b"fmt " and n_bytes >= _FMT.size:
                fmt = _FMT.unpack(f.read(_FMT.size))
            elif chunk_id == b"data":
                if fmt is None:
                    return None
                tag, _, rate, byte_rate, block_align, _ = fmt
                return WavLayout(tag, rate, byte_rate, block_align, n_bytes, size - pos - _CHUNK_HEAD.size)
            pos += _CHUNK_HEAD.size + n_bytes + (n_bytes & 1)
    return None
