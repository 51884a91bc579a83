"""Reading and preparing audio: any file soundfile reads, any rate, any channels.

Every problem is either a typed error (:class:`AudioError` and its subclasses)
or a flag on the result (:class:`QualityFlags`); nothing is silently repaired.
Quality is measured on the source samples, before resampling smears clipping.

Input conventions, checked once by :func:`validate_samples` for arrays and by
:func:`load_audio` for files (header first, before any sample is read):

- sample rates are whole numbers of Hz from ``MIN_SAMPLE_RATE_HZ`` to ``MAX_SAMPLE_RATE_HZ``;
- float samples are full scale at +-1; int8 / int16 / int32 are signed PCM scaled by
  their full range; uint8 is 8-bit unsigned PCM (offset 128); other types are refused;
- shape (n,) is mono; a 2-D array is (n, channels) when its last axis has 1 to
  ``MAX_CHANNELS`` entries, else (channels, n) when its first axis does; channels
  are averaged;
- a WAV whose header declares more data than the file holds is read as far as it
  goes and flagged ``truncated``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from acula.sdk.quality import (
    CLIP_LEVEL,
    CLIP_MIN_RUN,
    CLIP_TOLERANCE,
    CLIPPED_FRACTION,
    INACTIVE_BELOW_LOUDEST_DB,
    LOW_LEVEL_RMS_DBFS,
    LSB16,
    SILENCE_PEAK,
    QualityFlags,
    QualityMeter,
    assess_quality,
)

__all__ = [  # the quality names are re-exported from sdk.quality, where they now live
    "CLIPPED_FRACTION",
    "CLIP_LEVEL",
    "CLIP_MIN_RUN",
    "CLIP_TOLERANCE",
    "INACTIVE_BELOW_LOUDEST_DB",
    "LOW_LEVEL_RMS_DBFS",
    "LSB16",
    "SILENCE_PEAK",
    "AudioClip",
    "AudioError",
    "AudioTypeError",
    "EmptyAudioError",
    "NonFiniteAudioError",
    "QualityFlags",
    "QualityMeter",
    "SampleRateError",
    "StreamEndedError",
    "UnreadableAudioError",
    "assess_quality",
    "check_sample_rate",
    "AudioBlocks",
    "iter_audio_blocks",
    "load_audio",
    "prepare_audio",
    "resample",
    "validate_samples",
]

#: Sample rates outside this range are refused: below it there is no body sound to hear (and a rate field
#: patched to 1 Hz turns a 160 KB file into 22 hours); above it is no recorder's rate.
MIN_SAMPLE_RATE_HZ = 1_000
MAX_SAMPLE_RATE_HZ = 384_000
#: The short axis of a 2-D array is taken as channels only up to this many entries.
MAX_CHANNELS = 8
#: Float samples are full scale at +-1; a peak above this is not audio in that convention (PCM counts passed
#: as floats, say) and is refused rather than scored as a 70 dB overload.
MAX_FLOAT_PEAK = 16.0
#: A header claiming more than 24 h at 384 kHz is corrupt, not long.
MAX_FRAMES = 24 * 3600 * 384_000

_INT_FULL_SCALE = {np.dtype(np.int8): 128.0, np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


class AudioError(ValueError):
    """Base class of every audio problem the SDK reports."""


class AudioTypeError(AudioError, TypeError):
    """Samples or a sample rate of a type that is not audio (object, string, complex, bool, int64 ...)."""


class SampleRateError(AudioError):
    """A sample rate that is not a whole number of Hz within [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ]."""


class UnreadableAudioError(AudioError):
    """The file is missing, not audio, or corrupt."""


class EmptyAudioError(AudioError):
    """The audio holds no samples."""


class NonFiniteAudioError(AudioError):
    """The samples contain NaN or infinity."""


class StreamEndedError(AudioError):
    """Input for a stream after its ``flush()``, the end of its input (``reset()`` starts it again)."""


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples at ``sample_rate_hz``, shape (n_samples,)."""

    samples: np.ndarray
    sample_rate_hz: int
    source_rate_hz: int
    n_source_channels: int
    quality: QualityFlags
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate_hz

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (without the samples)."""
        return {
            "path": self.path,
            "sample_rate_hz": self.sample_rate_hz,
            "source_rate_hz": self.source_rate_hz,
            "n_source_channels": self.n_source_channels,
            "duration_s": self.duration_s,
            "quality": self.quality.to_dict(),
        }


def check_sample_rate(sample_rate_hz: Any, what: str = "sample rate") -> int:
    """The rate as an int; :class:`AudioTypeError` for a non-number, :class:`SampleRateError` for a rate that
    is not whole or lies outside [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ]."""
    if isinstance(sample_rate_hz, (bool, np.bool_)) or not isinstance(sample_rate_hz, numbers.Real):
        raise AudioTypeError(f"{what} must be a number of Hz, got {type(sample_rate_hz).__name__} "
                             f"{sample_rate_hz!r}")
    if isinstance(sample_rate_hz, numbers.Integral):
        rate = int(sample_rate_hz)
    else:
        value = float(sample_rate_hz)
        if not (math.isfinite(value) and value.is_integer()):
            raise SampleRateError(f"{what} must be a whole number of Hz, got {sample_rate_hz!r}")
        rate = int(value)
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise SampleRateError(f"{what} {rate} Hz is outside the supported range "
                              f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz")
    return rate


def _as_float(x: np.ndarray) -> np.ndarray:
    """Samples as floats with full scale at +-1 (the dtype conventions of the module docstring)."""
    kind, size = x.dtype.kind, x.dtype.itemsize
    if kind == "i" and size in (1, 2, 4):
        return x.astype(np.float64) / float(1 << (8 * size - 1))
    if kind == "u" and size == 1:
        return (x.astype(np.float64) - 128.0) / 128.0
    if kind == "f":
        return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    raise AudioTypeError(f"samples of type {x.dtype} are not audio this SDK reads: pass floats in [-1, 1], "
                         "int8 / int16 / int32 PCM or uint8 (8-bit unsigned PCM)")


def _channel_axis(shape: tuple[int, ...], n_channels: int | None) -> int | None:
    """The channels axis of a 2-D array (None for 1-D); ``n_channels`` is a count already known (a stream's)."""
    if len(shape) == 1:
        if n_channels not in (None, 1):
            raise AudioError(f"this stream carries {n_channels} channels; got a mono chunk of shape {shape}")
        return None
    if len(shape) != 2:
        raise AudioError(f"expected audio of shape (n,), (n, channels) or (channels, n), got {shape}")
    if n_channels is not None:
        if shape[1] == n_channels or shape[0] == n_channels:
            return 1 if shape[1] == n_channels else 0
        raise AudioError(f"this stream carries {n_channels} channel(s); got a chunk of shape {shape}")
    if 1 <= shape[1] <= MAX_CHANNELS:
        return 1
    if 1 <= shape[0] <= MAX_CHANNELS:
        return 0
    raise AudioError(f"cannot tell the channels of an array of shape {shape}: the channels axis must have 1 to "
                     f"{MAX_CHANNELS} entries, as in (n, channels) or (channels, n)")


class ValidAudio(NamedTuple):
    """What :func:`validate_samples` returns."""

    mono: np.ndarray  # float32, shape (n,)
    sample_rate_hz: int
    n_channels: int
    #: the float samples before the mixdown, shape (n, channels) (a view where it can be), None for mono: what
    #: :meth:`sdk.quality.QualityMeter.update_channels` counts each channel's clipping on
    channels: np.ndarray | None = None


def number_array(values: Any, what: str) -> np.ndarray:
    """``values`` as an array, or an :class:`AudioTypeError` naming ``what`` for a string or a ragged nesting (the
    dtype is the caller's to check)."""
    if isinstance(values, (str, bytes)):
        raise AudioTypeError(f"{what} must be an array of numbers, got {type(values).__name__}")
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise AudioTypeError(f"{what} must be a rectangular array of numbers ({exc})") from exc


def validate_samples(samples: Any, sample_rate_hz: Any, n_channels: int | None = None) -> ValidAudio:
    """Check audio from an array once, by the module's conventions, and mix it down: float32 mono, shape (n,).

    An empty array is returned empty (the caller decides whether that is an error).  Raises
    :class:`AudioTypeError`, :class:`SampleRateError`, :class:`NonFiniteAudioError` or :class:`AudioError`,
    each with a sentence saying what is wrong.
    """
    rate = check_sample_rate(sample_rate_hz)
    x = number_array(samples, "samples")
    if x.dtype.kind == "b":
        raise AudioTypeError("samples of type bool are not audio")
    axis = _channel_axis(x.shape, n_channels)
    x = _as_float(x)
    if x.size and x.dtype.kind == "f":
        # max and -min: the peak in two passes without temporaries; NaN or infinity anywhere makes it non-finite
        peak = max(float(np.maximum.reduce(x, axis=None)), -float(np.minimum.reduce(x, axis=None)))
        if not math.isfinite(peak):
            raise NonFiniteAudioError(f"audio holds {int(x.size - np.count_nonzero(np.isfinite(x)))} NaN or "
                                      "infinite samples")
        if peak > MAX_FLOAT_PEAK:
            raise AudioError(f"float samples must be full scale at +-1; their peak is {peak:g} (PCM counts "
                             "passed as floats? divide int16 counts by 32768)")
    channels = 1 if axis is None else x.shape[axis]
    mono = x if axis is None else mix_down(x, axis)
    multi = None if axis is None or channels < 2 else (x if axis == 1 else x.T)
    return ValidAudio(np.ascontiguousarray(mono, dtype=np.float32), rate, channels, multi)


#: below this many channels numpy's mean adds a row's channels one after another; from it on, pairwise
_SEQUENTIAL_MEAN_CHANNELS = 8


def mix_down(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.mean(axis=axis)`` of float samples, shape (n, channels) (axis 1) or (channels, n) (axis 0), bit for bit.
    For the common layout, (n, 2-7 channels) in C order (what a file or a sound card gives), one pass per channel:
    numpy's mean over that short contiguous axis took 935 us for 1.92 s of 44.1 kHz stereo here, this 35.  There
    numpy adds a row's channels in order starting from 0.0, then divides by the count, and this does the same (the
    signs of zeros included; tests/test_audio.py compares the bits).  Every other shape is numpy's own mean."""
    n = x.shape[axis]
    if axis != 1 or not 2 <= n < _SEQUENTIAL_MEAN_CHANNELS or not x.flags.c_contiguous:
        return x.mean(axis=axis)
    out = np.zeros(x.shape[0], dtype=x.dtype)
    for c in range(n):
        out += x[:, c]
    out /= n
    return out


def resample(samples: np.ndarray, source_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """Polyphase resampling (Kaiser-windowed FIR), shape (n,) -> (n * target / source,)."""
    source, target = check_sample_rate(source_rate_hz), check_sample_rate(target_rate_hz, "target rate")
    if source == target:
        return np.asarray(samples, dtype=np.float32)
    from acula.sdk.resample import StreamingResampler  # equals scipy.signal.resample_poly (tests/test_resample.py)

    r = StreamingResampler(source, target)
    return np.concatenate([r.accept(np.asarray(samples, dtype=np.float64)), r.flush()])


def prepare_audio(
    samples: np.ndarray,
    sample_rate_hz: int,
    target_rate_hz: int | None = 16000,
    path: str | None = None,
    truncated: bool = False,
    n_channels: int | None = None,
) -> AudioClip:
    """Validate (:func:`validate_samples`), mix down, measure quality and resample to ``target_rate_hz``
    (None keeps the source rate).  ``truncated`` marks samples known to end early."""
    try:
        valid = validate_samples(samples, sample_rate_hz, n_channels)
        mono, rate, channels = valid.mono, valid.sample_rate_hz, valid.n_channels
        target = rate if target_rate_hz is None else check_sample_rate(target_rate_hz, "target rate")
        if mono.size == 0:
            raise EmptyAudioError("audio holds no samples")
    except AudioError as exc:
        if path is None:
            raise
        raise type(exc)(f"{exc} in {path}") from None
    meter = QualityMeter()
    meter.update(mono)
    if valid.channels is not None:
        meter.update_channels(valid.channels)
    quality = meter.flags(truncated)
    out = resample(mono, rate, target)
    return AudioClip(
        samples=np.ascontiguousarray(out, dtype=np.float32),
        sample_rate_hz=target,
        source_rate_hz=rate,
        n_source_channels=channels,
        quality=quality,
        path=path,
    )


# file reading lives in sdk.audio_files (it uses the names above); its public names are sdk.audio's too
from acula.sdk.audio_files import AudioBlocks, iter_audio_blocks, load_audio  # noqa: E402
