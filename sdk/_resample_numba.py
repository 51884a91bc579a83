"""The numba kernel of :class:`sdk.resample.StreamingResampler` (imported only when a rate needs converting)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _resample_kernel(buf: np.ndarray, base: int, n_have: int, h: np.ndarray, up: int, down: int, delay: int,
                     m0: int, n_out: int, out: np.ndarray) -> None:
    """out[i] = sum_j h[p - j*up] x[j], p = (m0+i)*down + delay, over source indices j in the buffer."""
    taps = h.shape[0]
    for i in range(n_out):
        p = (m0 + i) * down + delay
        j_hi = p // up
        j_lo = max(0, (p - taps) // up + 1)
        acc = 0.0
        for j in range(j_lo, j_hi + 1):
            if j >= n_have:
                break
            acc += h[p - j * up] * buf[j - base]
        out[i] = acc
