"""A streaming polyphase resampler: chunks of any length, output identical to one call.

Kaiser-windowed sinc FIR (as ``scipy.signal.resample_poly``), delay-compensated:
output sample m sits at time m / target_rate.  The SDK's Stream and its
whole-recording calls both resample through this class, so their results match
whatever the chunking.  Output stops ``half the filter`` before the newest input
until :meth:`flush`.
"""

from __future__ import annotations

import math

import numpy as np


def kaiser_lowpass(numtaps: int, cutoff: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass, cutoff relative to Nyquist, unit DC gain: scipy.signal.firwin's design
    (same taps) in numpy, so the device never imports scipy.signal."""
    m = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return np.asarray(h / h.sum(), dtype=np.float64)


class StreamingResampler:
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
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.float64)
        self._base = 0  # global index of _buf[0]
        self._n_in = 0
        self._m = 0  # next output index

    def _emit(self, limit_m: int) -> np.ndarray:
        n_out = max(0, limit_m - self._m)
        out = np.empty(n_out, dtype=np.float64)
        if n_out:
            from acula.sdk._resample_numba import _resample_kernel

            _resample_kernel(self._buf, self._base, self._n_in, self.h, self.up, self.down, self.delay, self._m,
                             n_out, out)
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
