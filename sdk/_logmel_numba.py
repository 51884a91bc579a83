"""The numba log-mel kernel: its own radix-2 real FFT (numba has no ``np.fft``) and a sparse
mel filterbank, so one frame costs a few microseconds with no Python loop over samples.
Imported only by ``LogMelFrontend(engine="numba")``."""

from __future__ import annotations

import numba
import numpy as np
from acula.sdk.frontend_config import FrontendConfig


@numba.njit(cache=True, nogil=True, fastmath=True)
def _logmel_kernel(
    samples: np.ndarray,
    n_frames: int,
    hop: int,
    window: np.ndarray,
    bitrev: np.ndarray,
    tw_re: np.ndarray,
    tw_im: np.ndarray,
    post_re: np.ndarray,
    post_im: np.ndarray,
    fb_start: np.ndarray,
    fb_width: np.ndarray,
    fb_weight: np.ndarray,
    amin: float,
    mean_db: float,
    std_db: float,
    out: np.ndarray,
) -> None:
    half_n = bitrev.shape[0]
    n_mels = fb_start.shape[0]
    zr = np.empty(half_n, dtype=np.float64)
    zi = np.empty(half_n, dtype=np.float64)
    power = np.empty(half_n + 1, dtype=np.float64)
    for f in range(n_frames):
        off = f * hop
        # Pack the real frame as half_n complex samples (even -> real, odd -> imag),
        # in bit-reversed order for the in-place radix-2 FFT.
        for n in range(half_n):
            j = bitrev[n]
            zr[j] = samples[off + 2 * n] * window[2 * n]
            zi[j] = samples[off + 2 * n + 1] * window[2 * n + 1]
        size = 2
        while size <= half_n:
            half = size // 2
            step = half_n // size
            for start in range(0, half_n, size):
                for k in range(half):
                    a = start + k
                    b = a + half
                    wr = tw_re[k * step]
                    wi = tw_im[k * step]
                    tr = wr * zr[b] - wi * zi[b]
                    ti = wr * zi[b] + wi * zr[b]
                    zr[b] = zr[a] - tr
                    zi[b] = zi[a] - ti
                    zr[a] += tr
                    zi[a] += ti
            size *= 2
        # Split the half-length complex FFT into the real FFT's bins 0..half_n:
        # X[k] = E[k] + exp(-2 pi i k / n_fft) O[k].
        for k in range(half_n + 1):
            p = k % half_n
            q = (half_n - k) % half_n
            er = 0.5 * (zr[p] + zr[q])
            ei = 0.5 * (zi[p] - zi[q])
            o_r = 0.5 * (zi[p] + zi[q])
            o_i = -0.5 * (zr[p] - zr[q])
            xr = er + post_re[k] * o_r - post_im[k] * o_i
            xi = ei + post_re[k] * o_i + post_im[k] * o_r
            power[k] = xr * xr + xi * xi
        for m in range(n_mels):
            acc = 0.0
            start = fb_start[m]
            for j in range(fb_width[m]):
                acc += fb_weight[m, j] * power[start + j]
            if acc < amin:
                acc = amin
            out[f, m] = (10.0 * np.log10(acc) - mean_db) / std_db


class NumbaTables:
    """FFT twiddles, bit reversal and the sparse filterbank for one config."""

    def __init__(self, cfg: FrontendConfig, window: np.ndarray, fb: np.ndarray) -> None:
        half_n = cfg.n_fft // 2
        n_bits = half_n.bit_length() - 1
        self.bitrev = np.array([int(format(i, f"0{n_bits}b")[::-1], 2) for i in range(half_n)], dtype=np.int64)
        twiddle = np.exp(-2j * np.pi * np.arange(max(half_n // 2, 1)) / half_n)
        post = np.exp(-2j * np.pi * np.arange(half_n + 1) / cfg.n_fft)
        self.tw_re, self.tw_im = twiddle.real.copy(), twiddle.imag.copy()
        self.post_re, self.post_im = post.real.copy(), post.imag.copy()
        self.window = window
        starts = np.zeros(cfg.n_mels, dtype=np.int64)
        widths = np.ones(cfg.n_mels, dtype=np.int64)
        for m in range(cfg.n_mels):
            bins = np.flatnonzero(fb[:, m] > 0)
            if bins.size:
                starts[m], widths[m] = bins[0], bins[-1] - bins[0] + 1
        self.fb_start, self.fb_width = starts, widths
        self.fb_weight = np.zeros((cfg.n_mels, int(widths.max())), dtype=np.float64)
        for m in range(cfg.n_mels):
            self.fb_weight[m, : widths[m]] = fb[starts[m] : starts[m] + widths[m], m]
        self.cfg = cfg

    def run(self, samples: np.ndarray, n_frames: int, out: np.ndarray) -> None:
        cfg = self.cfg
        _logmel_kernel(samples, n_frames, cfg.hop_length, self.window, self.bitrev, self.tw_re, self.tw_im,
                       self.post_re, self.post_im, self.fb_start, self.fb_width, self.fb_weight, cfg.amin_power,
                       cfg.norm_mean_db, cfg.norm_std_db, out)
