"""The streaming resampler: chunk-invariant and equal to scipy's resample_poly."""

from __future__ import annotations

import numpy as np
import pytest
from acula.sdk.resample import StreamingResampler
from scipy.signal import resample_poly


@pytest.mark.parametrize("source,target", [(44100, 16000), (48000, 16000), (8000, 16000), (2000, 16000),
                                           (22050, 16000)])
def test_streaming_resampler_matches_resample_poly_and_any_chunking(source: int, target: int):
    x = np.random.default_rng(0).standard_normal(source)
    r = StreamingResampler(source, target)
    whole = np.concatenate([r.accept(x), r.flush()])
    up, down = r.up, r.down
    np.testing.assert_allclose(whole, resample_poly(x, up, down), atol=1e-5)
    r.reset()
    rng, parts, i = np.random.default_rng(1), [], 0
    while i < x.size:
        n = int(rng.integers(1, 3000))
        parts.append(r.accept(x[i : i + n]))
        i += n
    parts.append(r.flush())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_same_rate_passes_through():
    r = StreamingResampler(16000, 16000)
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(r.accept(x), x)
    assert r.flush().size == 0


def test_kaiser_lowpass_equals_scipy_firwin():
    from acula.sdk.resample import kaiser_lowpass
    from scipy.signal import firwin

    np.testing.assert_allclose(kaiser_lowpass(8821, 1 / 441, 5.0), firwin(8821, 1 / 441, window=("kaiser", 5.0)),
                               atol=1e-12)
