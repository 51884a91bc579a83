"""Reading audio files: the header checked before any sample is read, whole clips (:func:`load_audio`) and
blocks of any length (:func:`iter_audio_blocks`, which ``acula screen`` streams through).  The conventions and
the errors are :mod:`sdk.audio`'s; both names are re-exported there.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from collections.abc import Iterator
from typing import Any

import numpy as np
from acula.sdk.audio import (
    MAX_FRAMES,
    AudioClip,
    AudioError,
    EmptyAudioError,
    SampleRateError,
    UnreadableAudioError,
    check_sample_rate,
    prepare_audio,
    validate_samples,
)
from acula.sdk.quality import QualityFlags, QualityMeter
from acula.sdk.wav_header import PCM_FORMAT_TAGS, UNSET_DATA_SIZES, WavLayout, wav_layout

__all__ = ["MAX_BLOCK_SAMPLES", "AudioBlocks", "iter_audio_blocks", "load_audio"]

_READ_BLOCK_FRAMES = 1 << 20
#: the most samples (frames x channels) a command reads from a file at a time (``acula screen``, ``score``,
#: ``index``, ``search``, ``check``): 2 s of 48 kHz stereo.  2 s of 192 kHz 8-channel audio measured 138 MB peak.
MAX_BLOCK_SAMPLES = 192_000


def _check_wav(layout: WavLayout, path: str) -> bool:
    """Refuse a WAV header that contradicts itself; True when it declares more data than the file holds."""
    if layout.format_tag not in PCM_FORMAT_TAGS or layout.block_align <= 0:
        return False
    if layout.byte_rate != layout.sample_rate_hz * layout.block_align:
        raise UnreadableAudioError(
            f"WAV header contradicts itself: the sample rate field says {layout.sample_rate_hz} Hz but the byte "
            f"rate field implies {layout.byte_rate / layout.block_align:g} Hz (an edited or corrupt header) in "
            f"{path}")
    declared = layout.declared_data_bytes
    return declared not in UNSET_DATA_SIZES and declared > layout.available_data_bytes


def _segment(start_s: float | None, end_s: float | None, rate: int, n_frames: int, path: str) -> tuple[int, int]:
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if value is not None and not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise AudioError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    start = 0 if start_s is None else int(round(start_s * rate))
    stop = n_frames if end_s is None else min(n_frames, int(round(end_s * rate)))
    if n_frames > 0 and start >= stop:
        raise EmptyAudioError(f"segment [{start_s}, {end_s}) s is empty in {path}")
    return start, stop


def _readable_file(path_str: str) -> bytes:
    """The path as bytes for libsndfile (any name the file system holds, not only valid UTF-8), once it is known
    to name a regular file this process may read: a missing or forbidden file gets the system's reason, and a
    folder, FIFO or device is refused before it is opened (a FIFO would block, and be drained by the first of
    the three opens a read takes)."""
    try:
        st = os.stat(path_str)
    except OSError as exc:
        raise UnreadableAudioError(f"cannot read {path_str}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise UnreadableAudioError(f"cannot read {path_str}: {kind}")
    try:
        with open(path_str, "rb"):
            pass
    except OSError as exc:
        raise UnreadableAudioError(f"cannot read {path_str}: {exc.strerror or exc}") from None
    return os.fsencode(path_str)


def _checked_header(path_str: str) -> tuple[Any, int, bool]:
    """(soundfile info, sample rate, truncated) of a file whose header passed the checks :func:`load_audio`
    documents; nothing but the header is read."""
    import soundfile as sf

    path_bytes = _readable_file(path_str)
    try:
        info = sf.info(path_bytes)
        layout = wav_layout(path_str)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as exc:
        raise UnreadableAudioError(f"cannot read {path_str}: {exc}") from exc
    try:
        rate = check_sample_rate(info.samplerate, "header sample rate")
    except SampleRateError as exc:
        raise SampleRateError(f"{exc} in {path_str}") from None
    truncated = layout is not None and _check_wav(layout, path_str)
    if info.frames > MAX_FRAMES:
        raise UnreadableAudioError(f"header claims {info.frames} frames (corrupt?) in {path_str}")
    return info, rate, truncated


def load_audio(
    path: str | os.PathLike[str],
    target_rate_hz: int | None = 16000,
    start_s: float | None = None,
    end_s: float | None = None,
) -> AudioClip:
    """Read WAV/FLAC/OGG (anything libsndfile reads), optionally a segment [start_s, end_s).

    The header is checked before any sample is read: the rate must lie in the supported range, a WAV's fields
    must agree with each other, and memory grows only with the samples the file actually holds.  A file that
    ends before its header says is read as far as it goes and flagged ``truncated``.  ``target_rate_hz`` None
    keeps the file's rate.
    """
    import soundfile as sf

    path_str = os.fspath(path)
    info, rate, truncated = _checked_header(path_str)
    start, stop = _segment(start_s, end_s, rate, info.frames, path_str)
    blocks: list[np.ndarray] = []
    try:
        with sf.SoundFile(os.fsencode(path_str)) as f:
            if start:
                f.seek(start)
            remaining = stop - start
            while remaining > 0:  # in blocks: a header that overstates the length never sizes an allocation
                block = f.read(frames=min(remaining, _READ_BLOCK_FRAMES), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                blocks.append(block)
                remaining -= block.shape[0]
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError, MemoryError) as exc:
        raise UnreadableAudioError(f"cannot read {path_str}: {exc}") from exc
    data = np.concatenate(blocks) if blocks else np.zeros((0, info.channels), dtype=np.float32)
    truncated = truncated or data.shape[0] < stop - start
    if data.shape[0] == 0:
        raise EmptyAudioError(f"audio holds no samples in {path_str}")
    return prepare_audio(data, rate, target_rate_hz, path=path_str, truncated=truncated,
                         n_channels=info.channels)


class AudioBlocks:
    """A file read in blocks: iterate for float32 mono blocks of shape (n,) at ``sample_rate_hz`` (the file's
    rate), each checked as :func:`validate_samples` checks an array.  After the last block, :meth:`quality`
    gives the flags :func:`load_audio` gives for the whole file (``truncated`` included).  One pass only."""

    def __init__(self, path: str, sample_rate_hz: int, n_channels: int, n_frames: int, block_frames: int,
                 truncated: bool) -> None:
        self.path, self.sample_rate_hz, self.n_channels = path, sample_rate_hz, n_channels
        self.n_frames, self.block_frames = n_frames, block_frames  # n_frames: as the header declares
        self.truncated = truncated
        self.n_samples = 0
        self._meter = QualityMeter()
        self._started = False

    @property
    def duration_s(self) -> float:
        """Length the header declares (the file may hold less: see ``truncated``)."""
        return self.n_frames / self.sample_rate_hz

    def __iter__(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        if self._started:
            raise RuntimeError(f"the blocks of {self.path} were already read: call iter_audio_blocks again")
        self._started = True
        try:
            with sf.SoundFile(os.fsencode(self.path)) as f:
                while True:
                    block = f.read(frames=self.block_frames, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        break
                    try:
                        valid = validate_samples(block, self.sample_rate_hz, self.n_channels)
                    except AudioError as exc:
                        raise type(exc)(f"{exc} in {self.path}") from None
                    mono = valid.mono
                    self._meter.update(mono)
                    if valid.channels is not None:
                        self._meter.update_channels(valid.channels)
                    self.n_samples += mono.shape[0]
                    yield mono
        except AudioError:  # a ValueError too: already a sentence naming the file
            raise
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError, MemoryError) as exc:
            raise UnreadableAudioError(f"cannot read {self.path}: {exc}") from exc
        self.truncated = self.truncated or self.n_samples < self.n_frames
        if self.n_samples == 0:
            raise EmptyAudioError(f"audio holds no samples in {self.path}")

    def quality(self) -> QualityFlags:
        """Flags of every sample read so far (all of them once the iteration has ended), each channel's clipping
        included (the mono blocks handed out cannot show a channel clipped beside a quiet one)."""
        if not self._meter.n_samples:
            raise EmptyAudioError(f"audio holds no samples in {self.path}")
        return self._meter.flags(self.truncated)


def iter_audio_blocks(path: str | os.PathLike[str], block_s: float = 10.0, max_block_samples: int | None = None
                      ) -> AudioBlocks:
    """Read a file of any length in blocks of ``block_s`` seconds, at its own rate, mixed to mono: memory stays
    at one block whatever the length.  ``max_block_samples`` caps a block's frames x channels, so a
    high-rate, many-channel file costs no more memory a block than a common one.  The header is checked first,
    as :func:`load_audio` checks it; feed the blocks to a :class:`sdk.Stream` for results identical to the whole
    file's."""
    if not (isinstance(block_s, numbers.Real) and math.isfinite(block_s) and block_s > 0):
        raise AudioError(f"block_s must be a positive number of seconds, got {block_s!r}")
    path_str = os.fspath(path)
    info, rate, truncated = _checked_header(path_str)
    frames = int(block_s * rate)
    if max_block_samples is not None:
        frames = min(frames, max_block_samples // info.channels)
    return AudioBlocks(path_str, rate, info.channels, info.frames, max(1, frames), truncated)
