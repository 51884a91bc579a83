"""A documented generator of body-sound-like test recordings (no data needed).

* Heart: S1 and S2 as Hann-windowed decaying tones (S1 ~ 45 Hz, 90 ms; S2 ~ 70 Hz,
  70 ms, 0.3 s after S1) at ``heart_rate_bpm``.
* Breathing: noise band-passed to 150-1200 Hz under a raised-cosine envelope,
  inhalation then exhalation, at ``breaths_per_min``.
* Cough: an explosive broadband burst (fast attack, 50 ms) followed by a voiced,
  decaying phase; 0.35 s in all, at the given onsets.

It is for demos and tests of the plumbing, not a model of pathology.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SynthEvent", "synth_recording"]


@dataclass(frozen=True)
class SynthEvent:
    kind: str
    start_s: float
    end_s: float


def _bandpass_noise(rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float, rate_hz: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate_hz)
    spec[(freqs < lo_hz) | (freqs > hi_hz)] = 0.0
    out = np.fft.irfft(spec, n)
    return out / (np.max(np.abs(out)) + 1e-12)


def _tone_burst(rate_hz: int, freq_hz: float, dur_s: float) -> np.ndarray:
    t = np.arange(int(dur_s * rate_hz)) / rate_hz
    return np.sin(2 * np.pi * freq_hz * t) * np.hanning(t.size) * np.exp(-t / (dur_s / 2))


def _cough(rng: np.random.Generator, rate_hz: int) -> np.ndarray:
    n_burst, n_voiced = int(0.05 * rate_hz), int(0.30 * rate_hz)
    burst = rng.standard_normal(n_burst) * np.minimum(1.0, np.arange(n_burst) / (0.005 * rate_hz))
    t = np.arange(n_voiced) / rate_hz
    voiced = (np.sign(np.sin(2 * np.pi * 180 * t)) * 0.3 + rng.standard_normal(n_voiced) * 0.7) * np.exp(-t / 0.08)
    return np.concatenate([burst, voiced])


def synth_recording(
    duration_s: float = 10.0,
    sample_rate_hz: int = 16000,
    seed: int = 0,
    heart_rate_bpm: float = 72.0,
    breaths_per_min: float = 15.0,
    cough_onsets_s: tuple[float, ...] = (3.0, 7.0),
    level: float = 0.3,
) -> tuple[np.ndarray, list[SynthEvent]]:
    """Return (samples of shape (n,), float32 in [-1, 1]; the events it holds)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    x = np.zeros(n)
    events: list[SynthEvent] = []
    beat_s = 60.0 / heart_rate_bpm
    s1, s2 = _tone_burst(sample_rate_hz, 45.0, 0.09), _tone_burst(sample_rate_hz, 70.0, 0.07)
    for onset in np.arange(0.1, duration_s, beat_s):
        for sound, delay in ((s1, 0.0), (s2, 0.3)):
            i = int((onset + delay) * sample_rate_hz)
            seg = sound[: max(0, n - i)]
            x[i : i + seg.size] += 0.8 * seg
        events.append(SynthEvent("heartbeat", float(onset), float(min(onset + 0.37, duration_s))))
    breath_s = 60.0 / breaths_per_min
    phase = (np.arange(n) / sample_rate_hz) % breath_s / breath_s
    inhale = np.sin(np.pi * phase / 0.4)
    exhale = 0.6 * np.sin(np.pi * np.clip((phase - 0.45) / 0.5, 0, 1))
    envelope = np.where(phase < 0.4, inhale, exhale)
    x += 0.15 * _bandpass_noise(rng, n, 150.0, 1200.0, sample_rate_hz) * np.clip(envelope, 0, None)
    for onset in cough_onsets_s:
        burst = _cough(rng, sample_rate_hz)
        i = int(onset * sample_rate_hz)
        seg = burst[: max(0, n - i)]
        x[i : i + seg.size] += seg
        if seg.size:
            events.append(SynthEvent("cough", float(onset), float(onset + seg.size / sample_rate_hz)))
    x += 0.002 * rng.standard_normal(n)
    x *= level / (np.max(np.abs(x)) + 1e-12)
    return x.astype(np.float32), sorted(events, key=lambda e: e.start_s)
