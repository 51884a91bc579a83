"""A streaming polyphase resampler: chunks of any length, output identical to one call.

Kaiser-windowed sinc FIR (as ``scipy.signal.resample_poly``), delay-compensated:
output sample m sits at time m / target_rate.  The SDK's Stream and its
whole-recording calls both resample through this class, so their results match
whatever the chunking.  Output stops ``half the filter`` before the newest input
until :meth:`flush`.

Numpy only: numba's LLVM alone maps about 90 MB, most of a device's budget for a whole ``acula screen``.
Each output is the direct-form sum over its source samples in one fixed order (oldest first, as a scalar loop
would add them), whatever the chunk and whichever of the two vectorised layouts computes it, so streamed and
whole-recording outputs are bit-identical (tests/test_resample.py checks both against a scalar reference).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: below this many outputs per call, one gathered (n_out, n_taps_per_phase) block and a running sum along it;
#: from it on, one pass per tap over a (periods, up) grid (fewer, longer operations).  Per output here, at 800
#: outputs the grid took 0.12-0.22 us against the gathered block's 0.11-0.27 (8-48 kHz sources), at 160 twice the
#: gathered block's time
_GRID_MIN_OUTPUTS = 512
#: outputs per gathered block (bounds its temporaries to about 1 MB)
_BLOCK_OUTPUTS = 2048
#: up to this many grid columns, each tap reads each column as a strided view of the source (no gather)
_VIEW_COLUMNS = 4


def kaiser_lowpass(numtaps: int, cutoff: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass, cutoff relative to Nyquist, unit DC gain: scipy.signal.firwin's design
    (same taps) in numpy, so the device never imports scipy.signal."""
    m = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return np.asarray(h / h.sum(), dtype=np.float64)


class StreamingResampler:
    """Rational-rate resampling by ``up / down`` (the rates' ratio in lowest terms).

    Output m is ``sum_j h[p - j * up] * x[j]`` with ``p = m * down + delay``; for a fixed output its taps are
    ``h[r + k * up]`` (``r = p % up``) against ``x[p // up - k]``, k = 0 .. n_phase_taps - 1: ``self.phases``
    holds them, shape (n_phase_taps, up), zero where the filter has ended.
    """

    def __init__(self, source_rate_hz: int, target_rate_hz: int, kaiser_beta: float = 5.0) -> None:
        g = math.gcd(int(source_rate_hz), int(target_rate_hz))
        self.up, self.down = target_rate_hz // g, source_rate_hz // g
        self.source_rate_hz, self.target_rate_hz = source_rate_hz, target_rate_hz
        half = 10 * max(self.up, self.down)
        if self.up == self.down:  # pass-through: no filter
            half = 0
            self.h = np.ones(1)
        else:
            self.h = kaiser_lowpass(2 * half + 1, 1.0 / max(self.up, self.down), kaiser_beta) * self.up
        self.delay = half
        n_phase_taps = -(-self.h.shape[0] // self.up)
        phases = np.zeros(n_phase_taps * self.up)
        phases[: self.h.shape[0]] = self.h
        self.phases = phases.reshape(n_phase_taps, self.up)  # phases[k, r] = h[r + k * up]
        # per phase, oldest source sample first: the order each output's sum runs in
        self._phase_rows = np.ascontiguousarray(self.phases[::-1].T)
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.float64)
        self._base = 0  # global index of _buf[0]
        self._n_in = 0
        self._m = 0  # next output index

    def _source(self, lo: int, hi: int) -> np.ndarray:
        """Global source samples [lo, hi), zero outside what has arrived (before 0, after the newest) and
        before ``_base`` (dropped samples only ever meet zero taps)."""
        x = np.zeros(hi - lo)
        a, b = max(lo, self._base), min(hi, self._n_in)
        if b > a:
            x[a - lo : b - lo] = self._buf[a - self._base : b - self._base]
        return x

    def _gathered(self, m0: int, n_out: int) -> np.ndarray:
        """Outputs [m0, m0 + n_out): per block, the (n, n_phase_taps) products, summed by a running sum."""
        k_oldest_first = np.arange(self.phases.shape[0] - 1, -1, -1)
        out = np.empty(n_out)
        for s in range(0, n_out, _BLOCK_OUTPUTS):
            p = (m0 + s + np.arange(min(_BLOCK_OUTPUTS, n_out - s))) * self.down + self.delay
            newest = p // self.up
            lo = int(newest[0]) - (self.phases.shape[0] - 1)
            terms = self._source(lo, int(newest[-1]) + 1)[(newest - lo)[:, None] - k_oldest_first[None, :]]
            terms *= self._phase_rows[p - newest * self.up]
            np.add.accumulate(terms, axis=1, out=terms)
            out[s : s + p.shape[0]] = terms[:, -1]
        return out

    def _grid(self, m0: int, n_out: int) -> np.ndarray:
        """Outputs [m0, m0 + n_out) on a (periods, up) grid: outputs ``up`` apart share a phase and sit ``down``
        source samples apart, so tap k is one gather from a strided view of the source for all of them."""
        n_phase_taps = self.phases.shape[0]
        n_cols = min(n_out, self.up)
        n_rows = -(-n_out // n_cols)
        p = (m0 + np.arange(n_cols)) * self.down + self.delay
        newest = p // self.up
        taps = self.phases[:, p - newest * self.up]  # (n_phase_taps, n_cols)
        lo = int(newest[0]) - (n_phase_taps - 1)
        width = int(newest[-1]) - lo + 1
        x = self._source(lo, lo + width + self.down * (n_rows - 1))
        rows = as_strided(x, shape=(n_rows, width), strides=(self.down * x.itemsize, x.itemsize), writeable=False)
        cols = newest - lo
        acc = np.zeros((n_rows, n_cols))
        term = np.empty((n_rows, n_cols))
        # tap k reads x[i * down + cols - k], scaled in one reused buffer and added: the same products and sums, in
        # the same order.  A few columns (an integer decimation such as 48 -> 16 kHz has one) are strided views of
        # x; more are one fixed index grid into x shifted by k (no index arithmetic per tap)
        if n_cols <= _VIEW_COLUMNS:
            few = [int(c) for c in cols]
            for k in range(n_phase_taps - 1, -1, -1):  # oldest source sample first
                for j, c in enumerate(few):
                    np.multiply(rows[:, c - k], taps[k, j], out=term[:, j])
                acc += term
        else:
            base = np.arange(n_rows)[:, None] * self.down + cols[None, :] - (n_phase_taps - 1)
            for k in range(n_phase_taps - 1, -1, -1):  # oldest source sample first
                np.take(x[n_phase_taps - 1 - k :], base, out=term, mode="clip")
                term *= taps[k]
                acc += term
        return acc.reshape(-1)[:n_out]

    def _emit(self, limit_m: int) -> np.ndarray:
        n_out = max(0, limit_m - self._m)
        out = (self._grid if n_out >= _GRID_MIN_OUTPUTS else self._gathered)(self._m, n_out)
        self._m += n_out
        # keep only the source samples a future output can still reach
        first_needed = max(0, (self._m * self.down + self.delay - self.h.shape[0]) // self.up + 1)
        drop = min(max(0, first_needed - self._base), self._buf.shape[0])
        if drop:
            self._buf = self._buf[drop:]
            self._base += drop
        return out.astype(np.float32)

    def accept(self, chunk: np.ndarray) -> np.ndarray:
        if self.up == self.down:
            return np.asarray(chunk, dtype=np.float32)
        self._buf = np.concatenate([self._buf, np.asarray(chunk, dtype=np.float64)])
        self._n_in += len(chunk)
        # output m is final once its newest source sample j = (m*down + delay) // up has arrived
        limit = (self._n_in * self.up - self.delay - 1) // self.down + 1 if self._n_in else 0
        return self._emit(max(limit, 0))

    def flush(self) -> np.ndarray:
        """Emit the tail: outputs up to the input's duration, treating later input as silence."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self.up // self.down)  # ceil(n_in * target / source)
        return self._emit(total)
