"""Reading and preparing audio: any file soundfile reads, any rate, any channels.

Every problem is either a typed error (:class:`AudioError` and its subclasses)
or a flag on the result (:class:`QualityFlags`); nothing is silently repaired.
Quality is measured on the source samples, before resampling smears clipping.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "AudioClip",
    "AudioError",
    "EmptyAudioError",
    "NonFiniteAudioError",
    "QualityFlags",
    "UnreadableAudioError",
    "assess_quality",
    "load_audio",
    "prepare_audio",
    "resample",
]

LSB16 = 1.0 / 32768.0
#: A peak under two 16-bit steps is digital silence (dither of +-1 step included).
SILENCE_PEAK = 2 * LSB16
#: Clipping = flat tops: runs of samples within CLIP_TOLERANCE of a peak that is near full scale.
#: (A smooth low-frequency wave stays within 1 % of its peak for several samples, so a
#: relative threshold would flag clean heart and lung sounds.)
CLIP_LEVEL = 0.95
CLIP_TOLERANCE = 4 * LSB16
CLIP_MIN_RUN = 3
CLIPPED_FRACTION = 1e-3
LOW_LEVEL_RMS_DBFS = -60.0
#: A header claiming more than 24 h at 384 kHz is corrupt, not long.
MAX_FRAMES = 24 * 3600 * 384_000


class AudioError(ValueError):
    """Base class of every audio problem the SDK reports."""


class UnreadableAudioError(AudioError):
    """The file is missing, not audio, or corrupt."""


class EmptyAudioError(AudioError):
    """The audio holds no samples."""


class NonFiniteAudioError(AudioError):
    """The samples contain NaN or infinity."""


@dataclass(frozen=True)
class QualityFlags:
    silent: bool
    clipped: bool
    low_level: bool
    peak_dbfs: float
    rms_dbfs: float
    clipped_fraction: float

    @property
    def ok(self) -> bool:
        return not (self.silent or self.clipped or self.low_level)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(n for n in ("silent", "clipped", "low_level") if getattr(self, n))


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
            "quality": asdict(self.quality),
        }


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def _longest_runs_fraction(mask: np.ndarray, min_run: int) -> float:
    """Fraction of samples inside runs of at least ``min_run`` consecutive True."""
    if not mask.any():
        return 0.0
    padded = np.concatenate(([0], mask.view(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    lengths = edges[1::2] - edges[0::2]
    return float(lengths[lengths >= min_run].sum()) / mask.shape[0]


def assess_quality(samples: np.ndarray) -> QualityFlags:
    """Silence, clipping and level of mono samples in [-1, 1], shape (n_samples,)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise EmptyAudioError("audio holds no samples")
    peak = float(np.max(np.abs(x)))
    centred = x - x.mean()
    rms = float(np.sqrt(np.mean(centred * centred)))
    silent = peak < SILENCE_PEAK
    clipped_fraction = 0.0
    if peak >= CLIP_LEVEL:
        clipped_fraction = _longest_runs_fraction(np.abs(x) >= peak - CLIP_TOLERANCE, CLIP_MIN_RUN)
    return QualityFlags(
        silent=silent,
        clipped=clipped_fraction >= CLIPPED_FRACTION,
        low_level=(not silent) and _dbfs(rms) < LOW_LEVEL_RMS_DBFS,
        peak_dbfs=_dbfs(peak),
        rms_dbfs=_dbfs(rms),
        clipped_fraction=clipped_fraction,
    )


def resample(samples: np.ndarray, source_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """Polyphase resampling (Kaiser-windowed FIR), shape (n,) -> (n * target / source,)."""
    if source_rate_hz <= 0 or target_rate_hz <= 0:
        raise AudioError(f"sample rates must be positive, got {source_rate_hz} -> {target_rate_hz}")
    if source_rate_hz == target_rate_hz:
        return np.asarray(samples, dtype=np.float32)
    from sdk.resample import StreamingResampler  # equals scipy.signal.resample_poly (tests/test_resample.py)

    r = StreamingResampler(int(source_rate_hz), int(target_rate_hz))
    return np.concatenate([r.accept(np.asarray(samples, dtype=np.float64)), r.flush()])


def prepare_audio(
    samples: np.ndarray,
    sample_rate_hz: int,
    target_rate_hz: int = 16000,
    path: str | None = None,
) -> AudioClip:
    """Validate, mix down and resample an array of shape (n,) or (n, n_channels).

    Integer arrays are scaled from their full range to [-1, 1].
    """
    x = np.asarray(samples)
    where = f" in {path}" if path else ""
    if x.ndim not in (1, 2):
        raise AudioError(f"expected audio of shape (n,) or (n, n_channels), got {x.shape}{where}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
    elif not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"unsupported sample type {x.dtype}{where}")
    n_channels = 1 if x.ndim == 1 else x.shape[1]
    if x.size == 0:
        raise EmptyAudioError(f"audio holds no samples{where}")
    if not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise NonFiniteAudioError(f"audio holds {n_bad} NaN or infinite samples{where}")
    mono = x if x.ndim == 1 else x.mean(axis=1)
    quality = assess_quality(mono)
    out = resample(mono, int(sample_rate_hz), target_rate_hz)
    return AudioClip(
        samples=np.ascontiguousarray(out, dtype=np.float32),
        sample_rate_hz=target_rate_hz,
        source_rate_hz=int(sample_rate_hz),
        n_source_channels=n_channels,
        quality=quality,
        path=path,
    )


def load_audio(
    path: str | os.PathLike[str],
    target_rate_hz: int = 16000,
    start_s: float | None = None,
    end_s: float | None = None,
) -> AudioClip:
    """Read WAV/FLAC/OGG (anything libsndfile reads), optionally a segment [start_s, end_s)."""
    import soundfile as sf

    path_str = os.fspath(path)
    try:
        with sf.SoundFile(path_str) as f:
            rate = int(f.samplerate)
            start = 0 if start_s is None else max(0, int(round(start_s * rate)))
            stop = f.frames if end_s is None else min(f.frames, int(round(end_s * rate)))
            if f.frames > MAX_FRAMES:
                raise UnreadableAudioError(f"header claims {f.frames} frames (corrupt?) in {path_str}")
            if f.frames > 0 and start >= stop:
                raise EmptyAudioError(f"segment [{start_s}, {end_s}) s is empty in {path_str}")
            if start:
                f.seek(start)
            data = f.read(frames=max(stop - start, 0), dtype="float64", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError, MemoryError) as exc:
        raise UnreadableAudioError(f"cannot read {path_str}: {exc}") from exc
    if data.shape[0] == 0:
        raise EmptyAudioError(f"audio holds no samples in {path_str}")
    return prepare_audio(data if data.shape[1] > 1 else data[:, 0], rate, target_rate_hz, path=path_str)
