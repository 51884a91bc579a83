"""Named transforms of a recording for the invariance suite: gain, bandwidth and codec, noise, hum and
stethoscope responses.  ``apply_transform(name, samples, rate, seed=..., noise=...)`` is the one entry point;
``TRANSFORMS`` lists every name with its specification (printed in the results so a figure names its filter).

Every transform takes and returns float32 mono at the same rate and length, is deterministic under its
seed, and never clips on purpose: gains above 0 dBFS are not offered (peak normalisation goes to -1 dBFS).
Torch-free (numpy, scipy, soundfile).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TRANSFORMS", "NoiseBank", "Transform", "apply_transform", "phone_call_8k", "transform_names"]


@dataclass(frozen=True)
class Transform:
    name: str
    group: str  # gain | channel | noise | stethoscope
    spec: str  # what it does, in words and numbers
    #: the data sets it applies to (None: every one); the phone codec is measured on phone and ESC-10 audio only
    datasets: tuple[str, ...] | None = None


def _gain(db: float) -> Callable[..., np.ndarray]:
    def f(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
        return x * np.float32(10 ** (db / 20))
    return f


def _peak_norm(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x if peak == 0 else x * np.float32(10 ** (-1 / 20) / peak)


def _resample(x: np.ndarray, up: int, down: int) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(x.astype(np.float64), up, down)


def _band_8k(x: np.ndarray, rate: int) -> np.ndarray:
    """Down to 8 kHz (anti-aliased) and back to ``rate``: what a phone call's bandwidth leaves."""
    if rate <= 8000:
        return x.astype(np.float64)
    return _back_from_8k(phone_call_8k(x, rate), rate, x.size)


def _back_from_8k(y: np.ndarray, rate: int, n: int) -> np.ndarray:
    """8 kHz samples ``y`` resampled back to ``rate`` (above 8 kHz), cut to ``n`` samples."""
    from math import gcd

    g = gcd(8000, rate)
    return _resample(y, rate // g, 8000 // g)[:n]


def _mulaw(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711-style 8-bit mu-law companding and expansion."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1) / 2 * 255) / 255 * 2 - 1  # 8-bit code
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu


def phone_call_8k(x: np.ndarray, rate: int, mulaw: bool = False) -> np.ndarray:
    """What a phone call delivers of samples at ``rate``: the samples at 8 kHz (polyphase, anti-aliased; as they
    are at 8 kHz or below), 8-bit mu-law coded and decoded with ``mulaw`` (``_mulaw``: mu 255, G.711's curve but no
    zero code, so digital silence decodes to +-8.6e-5); at 8000 Hz in float64 (at ``rate``, in
    ``x``'s dtype, when that is not above 8 kHz).  ``mulaw8k`` is this call resampled back to ``rate``."""
    if rate <= 8000:
        y = x
    else:
        from math import gcd

        g = gcd(8000, rate)
        y = _resample(x, 8000 // g, rate // g)
    return _mulaw(y) if mulaw else y


def _phone_8k(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
    return _band_8k(x, rate)


def _phone_mulaw(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
    y = phone_call_8k(x, rate, mulaw=True)
    return y if rate <= 8000 else _back_from_8k(y, rate, x.size)


def _opus(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
    """Ogg Opus through libsndfile at its default bit rate (a real lossy codec; 16 kHz in, 16 kHz out)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1).astype(np.float32), rate, format="OGG", subtype="OPUS")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = y[: x.size]
    return np.pad(y, (0, x.size - y.size)) if y.size < x.size else y


def _butter(kind: str, cutoff_hz: float | tuple[float, float], order: int) -> Callable[..., np.ndarray]:
    def f(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
        from scipy.signal import butter, sosfilt

        nyq = rate / 2
        cut = cutoff_hz if isinstance(cutoff_hz, float) else cutoff_hz
        if isinstance(cut, float) and cut >= nyq:
            return x.astype(np.float64)
        sos = butter(order, cut, btype=kind, fs=rate, output="sos")
        return sosfilt(sos, x.astype(np.float64))  # causal, as a device's analogue / DSP filter is
    return f


def _bell(x: np.ndarray, rate: int, **_: object) -> np.ndarray:
    """Bell: 2nd-order Butterworth low-pass at 600 Hz plus a +6 dB resonance (2nd-order band-pass 200-600 Hz
    added at unit gain): low tones emphasised, little above 1 kHz."""
    from scipy.signal import butter, sosfilt

    lp = sosfilt(butter(2, 600.0, "lowpass", fs=rate, output="sos"), x.astype(np.float64))
    bp = sosfilt(butter(2, (200.0, 600.0), "bandpass", fs=rate, output="sos"), x.astype(np.float64))
    return lp + bp


class NoiseBank:
    """Background clips for additive noise, each with its class; ``pick(rng, exclude)`` never returns the
    scored clip's own class.  Default: ESC-10's non-body classes loaded from ``root`` (``esc10/``)."""

    CLASSES = ("rain", "sea_waves", "helicopter", "chainsaw", "clock_tick", "fire_crackling")

    def __init__(self, clips: Sequence[tuple[str, np.ndarray]]) -> None:
        if not clips:
            raise ValueError("a noise bank needs at least one clip")
        self.clips = list(clips)

    PER_CLASS = 4

    @staticmethod
    def class_of(folder_name: str) -> str:
        """ESC-10's folder name ("002 - Rain") -> the class key ("rain")."""
        return folder_name.split("-", 1)[-1].strip().replace(" ", "_").lower()

    @classmethod
    def esc10_files(cls, root: str | Path, per_class: int = PER_CLASS) -> list[tuple[str, Path]]:
        """(class, file) of the clips ``from_esc10`` draws on: the first ``per_class`` files (sorted) of each
        background class.  Training's background augmentation leaves these out (``aligner.augment``)."""
        files = []
        for folder in sorted(Path(root).iterdir()):
            name = cls.class_of(folder.name)
            if folder.is_dir() and any(c in name for c in cls.CLASSES):
                files += [(name, f) for f in sorted(folder.glob("*.ogg"))[:per_class]]
        return files

    @classmethod
    def from_esc10(cls, root: str, rate: int = 16000, per_class: int = PER_CLASS) -> NoiseBank:
        from acula.sdk.audio import load_audio

        clips = []
        for name, f in cls.esc10_files(root, per_class):
            clip = load_audio(f, rate).samples
            if np.max(np.abs(clip)) > 1e-3:
                clips.append((name, clip))
        return cls(clips)

    def pick(self, rng: np.random.Generator, n: int, exclude: str | None = None) -> np.ndarray:
        pool = [c for k, c in self.clips if exclude is None or exclude not in k] or [c for _, c in self.clips]
        clip = pool[int(rng.integers(len(pool)))]
        reps = -(-n // max(clip.size, 1))
        start = int(rng.integers(0, max(1, clip.size)))
        return np.roll(np.tile(clip, reps + 1), -start)[:n]


def _noise(snr_db: float) -> Callable[..., np.ndarray]:
    def f(x: np.ndarray, rate: int, rng: np.random.Generator, noise: NoiseBank | None = None,
          exclude: str | None = None, **_: object) -> np.ndarray:
        if noise is None:
            raise ValueError("noise transforms need a NoiseBank (ESC-10 backgrounds)")
        bg = noise.pick(rng, x.size, exclude).astype(np.float64)
        p_sig = float(np.mean(x.astype(np.float64) ** 2))
        p_bg = float(np.mean(bg ** 2)) or 1.0
        return x + bg * np.sqrt(p_sig / p_bg / 10 ** (snr_db / 10))
    return f


def _hum(freq_hz: float, snr_db: float = 20.0) -> Callable[..., np.ndarray]:
    def f(x: np.ndarray, rate: int, rng: np.random.Generator, **_: object) -> np.ndarray:
        t = np.arange(x.size) / rate
        phase = float(rng.uniform(0, 2 * np.pi))
        # mains hum: fundamental and the 2nd and 3rd harmonics at -6 and -12 dB
        h = (np.sin(2 * np.pi * freq_hz * t + phase) + 0.5 * np.sin(4 * np.pi * freq_hz * t + phase)
             + 0.25 * np.sin(6 * np.pi * freq_hz * t + phase))
        p_sig = float(np.mean(x.astype(np.float64) ** 2))
        return x + h * np.sqrt(p_sig / float(np.mean(h ** 2)) / 10 ** (snr_db / 10))
    return f


_REGISTRY: dict[str, tuple[Transform, Callable[..., np.ndarray]]] = {}


def _register(name: str, group: str, spec: str, fn: Callable[..., np.ndarray],
              datasets: tuple[str, ...] | None = None) -> None:
    _REGISTRY[name] = (Transform(name, group, spec, datasets), fn)


for _db in (-6, -12, -24, -40):
    _register(f"gain{_db}", "gain", f"{_db} dB gain", _gain(_db))
_register("peak-1", "gain", "peak normalised to -1 dBFS", _peak_norm)
_register("phone8k", "channel", "resampled to 8 kHz and back (polyphase, anti-aliased)", _phone_8k)
_register("mulaw8k", "channel", "8 kHz G.711 mu-law (8-bit, mu 255) and back", _phone_mulaw)
_register("opus", "channel", "Ogg Opus (libsndfile, default bit rate) encode + decode; phone and ESC-10 audio only "
          "(2.7 s of CPU per 30 s clip here)", _opus, ("coswara", "esc10"))
_register("lp2k", "channel", "low-pass 2 kHz, 6th-order Butterworth, causal", _butter("lowpass", 2000.0, 6))
_register("lp1k", "channel", "low-pass 1 kHz, 6th-order Butterworth, causal", _butter("lowpass", 1000.0, 6))
_register("noise20", "noise", "ESC-10 background (rain, waves, helicopter, chainsaw, clock, fire) at 20 dB SNR",
          _noise(20.0))
_register("noise10", "noise", "ESC-10 background at 10 dB SNR", _noise(10.0))
_register("hum50", "noise", "50 Hz mains hum (+2nd, 3rd harmonics) at 20 dB SNR", _hum(50.0))
_register("hum60", "noise", "60 Hz mains hum (+2nd, 3rd harmonics) at 20 dB SNR", _hum(60.0))
_register("bell", "stethoscope", "bell: 2nd-order Butterworth low-pass 600 Hz + 2nd-order band-pass 200-600 Hz",
          _bell)
_register("diaphragm", "stethoscope", "diaphragm: 2nd-order Butterworth high-pass 150 Hz",
          _butter("highpass", 150.0, 2))

#: every transform by name, in the table's order
TRANSFORMS: dict[str, Transform] = {k: v[0] for k, v in _REGISTRY.items()}


def transform_names(groups: Sequence[str] | None = None) -> list[str]:
    return [k for k, t in TRANSFORMS.items() if groups is None or t.group in groups]


def apply_transform(name: str, samples: np.ndarray, rate: int, seed: int | Sequence[int] = 0,
                    noise: NoiseBank | None = None, exclude: str | None = None) -> np.ndarray:
    """``samples`` (float32 mono at ``rate``) after the named transform; ``"none"`` returns them unchanged.
    ``seed`` makes random parts (noise clip and offset, hum phase) reproducible per record; ``exclude`` names
    the scored clip's own class so noise never adds it."""
    if name == "none":
        return samples
    if name not in _REGISTRY:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(_REGISTRY)}")
    x = np.asarray(samples, dtype=np.float32)
    if x.size == 0:
        return x
    rng = np.random.default_rng(seed)
    y = _REGISTRY[name][1](x, rate, rng=rng, noise=noise, exclude=exclude)
    return np.asarray(y, dtype=np.float32)
