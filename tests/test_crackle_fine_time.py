"""The fine-time features of benchmarks.crackle_fine_time see crackle-like clicks that plain breath noise lacks."""

from __future__ import annotations

import numpy as np
import pytest

scipy_signal = pytest.importorskip("scipy.signal")


def _breath(seed: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(8000 * seconds))
    x = scipy_signal.sosfilt(scipy_signal.butter(2, 600, fs=8000, output="sos"), noise)
    return (0.05 * x / np.std(x)).astype(np.float32)


def _with_crackles(x: np.ndarray, every_s: float = 0.07) -> np.ndarray:
    """Damped 400 Hz clicks of about 5 ms, the shape of a fine crackle, every ``every_s``."""
    t = np.arange(40) / 8000
    click = 0.8 * np.exp(-t / 0.0015) * np.sin(2 * np.pi * 400 * t)
    y = x.copy()
    for start in range(400, x.size - 40, int(every_s * 8000)):
        y[start : start + 40] += click
    return y


def test_clicks_raise_impulsiveness_and_transient_counts_over_the_same_breath_noise():
    from acula.benchmarks.crackle_fine_time import RATE, cycle_features

    sos = scipy_signal.butter(4, [150, 2000], btype="band", fs=RATE, output="sos")
    for seed in range(3):
        plain = cycle_features(_breath(seed), sos)
        crackly = cycle_features(_with_crackles(_breath(seed)), sos)
        assert plain is not None and crackly is not None
        assert crackly["kurtosis 16 ms, p90"] > 1.5 * plain["kurtosis 16 ms, p90"]
        # a click every 70 ms: about 14 a second found, against at most one or two peaks of the noise itself
        assert crackly["transients over 5x median, per s"] >= 10 > 2 >= plain["transients over 5x median, per s"]
        assert crackly["level step spread, 4 ms"] > plain["level step spread, 4 ms"] + 1


def test_a_cycle_too_short_for_three_frames_has_no_features():
    from acula.benchmarks.crackle_fine_time import cycle_features

    sos = scipy_signal.butter(4, [150, 2000], btype="band", fs=8000, output="sos")
    assert cycle_features(np.zeros(200, np.float32), sos) is None
    assert cycle_features(_breath(0, 0.1), sos) is not None
