"""The streaming resampler: chunk-invariant, equal to scipy's resample_poly, and bit-identical to the direct-form
scalar sum it vectorises."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from acula.sdk import resample as resample_module
from acula.sdk.resample import StreamingResampler
from scipy.signal import resample_poly


@functools.cache
def _direct_kernel() -> Any:
    numba = pytest.importorskip("numba")

    @numba.njit(cache=False)
    def kernel(x, h, up, down, delay, m0, out):  # numba infers the types
        for i in range(out.shape[0]):
            p = (m0 + i) * down + delay
            acc = 0.0
            for j in range(max(0, (p - h.shape[0]) // up + 1), min(p // up, x.shape[0] - 1) + 1):
                acc += h[p - j * up] * x[j]
            out[i] = acc

    return kernel


def direct_form(x: np.ndarray, r: StreamingResampler, m0: int, n_out: int) -> np.ndarray:
    """The reference: each output's taps summed one at a time, oldest source sample first (numba, so a long
    input runs in test time; the SDK itself never imports numba)."""
    out = np.empty(n_out)
    _direct_kernel()(np.asarray(x, np.float64), r.h, r.up, r.down, r.delay, m0, out)
    return out


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


@pytest.mark.parametrize("source", [44100, 48000, 8000, 22050, 11025, 44101, 12000, 24000, 20000])
def test_both_layouts_are_bit_identical_to_the_direct_form_sum(source: int):
    x = np.random.default_rng(0).standard_normal(3 * source)
    r = StreamingResampler(source, 16000)
    r.accept(x)  # the whole input held, nothing dropped: outputs [m0, m0 + n) can be computed again
    r._buf, r._base = np.asarray(x, np.float64), 0
    for m0, n_out in [(0, 3 * 16000 + 5), (7, 1000), (5000, 333), (0, 1), (123, 40000)]:
        want = direct_form(x, r, m0, n_out)
        np.testing.assert_array_equal(r._grid(m0, n_out), want)
        np.testing.assert_array_equal(r._gathered(m0, n_out), want)


def test_resampling_imports_no_numba():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from acula.sdk.resample import StreamingResampler as R; r = R(44100, 16000); "
            "r.accept(np.ones(50000)); r.flush(); assert 'numba' not in sys.modules and 'llvmlite' not in "
            "sys.modules, sorted(m for m in sys.modules if 'numba' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(resample_module.__file__).parents[1]))
