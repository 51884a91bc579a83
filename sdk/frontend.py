"""Log-mel front end: the numpy reference and the numba streaming implementation.

Both compute, per frame of ``n_fft`` samples (not centred, periodic Hann window),
the power spectrum, an HTK mel filterbank without area normalisation (the same
as ``torchaudio.transforms.MelSpectrogram(mel_scale="htk", norm=None)``),
``10 * log10(max(power, amin))`` and the fixed affine normalisation of
:class:`FrontendConfig`.  Output: shape (n_frames, n_mels), float32.

The numba kernel carries its own radix-2 real FFT (numba has no ``np.fft``) and
applies the filterbank sparsely, so one frame costs a few microseconds and the
stream needs no Python loop over samples.  ``tests/test_frontend.py`` holds the
parity tests against the numpy reference, the torch implementation and
torchaudio.
"""

from __future__ import annotations

import numba
import numpy as np

from sdk.frontend_config import FrontendConfig

__all__ = ["LogMelFrontend", "StreamingFrontend", "mel_filterbank", "hann_window", "logmel_reference"]


def hz_to_mel(freq_hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(freq_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(config: FrontendConfig) -> np.ndarray:
    """Triangular HTK filters, shape (n_freqs, n_mels), float64 (torchaudio's formula)."""
    all_freqs = np.linspace(0.0, config.sample_rate_hz // 2, config.n_freqs)
    mel_pts = np.linspace(hz_to_mel(config.f_min_hz), hz_to_mel(config.f_max_hz), config.n_mels + 2)
    f_pts = mel_to_hz(mel_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default), float64."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def logmel_reference(samples: np.ndarray, config: FrontendConfig) -> np.ndarray:
    """Whole-clip reference in plain numpy; shape (n_frames, n_mels), float32."""
    x = np.asarray(samples, dtype=np.float64)
    n_frames = config.n_frames(x.shape[0])
    if n_frames == 0:
        return np.zeros((0, config.n_mels), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, config.n_fft)[:: config.hop_length][:n_frames]
    spec = np.fft.rfft(frames * hann_window(config.n_fft), axis=-1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_filterbank(config)
    db = 10.0 * np.log10(np.maximum(mel, config.amin_power))
    return ((db - config.norm_mean_db) / config.norm_std_db).astype(np.float32)


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


class LogMelFrontend:
    """Stateless front end for one config: tables are built once, shared by streams."""

    def __init__(self, config: FrontendConfig | None = None) -> None:
        self.config = config or FrontendConfig()
        cfg = self.config
        half_n = cfg.n_fft // 2
        n_bits = half_n.bit_length() - 1
        idx = np.arange(half_n)
        self._bitrev = np.array([int(format(i, f"0{n_bits}b")[::-1], 2) for i in idx], dtype=np.int64)
        twiddle = np.exp(-2j * np.pi * np.arange(max(half_n // 2, 1)) / half_n)
        post_twiddle = np.exp(-2j * np.pi * np.arange(half_n + 1) / cfg.n_fft)
        self._tw_re, self._tw_im = twiddle.real.copy(), twiddle.imag.copy()
        self._post_re, self._post_im = post_twiddle.real.copy(), post_twiddle.imag.copy()
        self._window = hann_window(cfg.n_fft)
        fb = mel_filterbank(cfg)
        nonzero = fb > 0
        starts = np.zeros(cfg.n_mels, dtype=np.int64)
        widths = np.ones(cfg.n_mels, dtype=np.int64)
        for m in range(cfg.n_mels):
            bins = np.flatnonzero(nonzero[:, m])
            if bins.size:
                starts[m], widths[m] = bins[0], bins[-1] - bins[0] + 1
        self._fb_start, self._fb_width = starts, widths
        self._fb_weight = np.zeros((cfg.n_mels, int(widths.max())), dtype=np.float64)
        for m in range(cfg.n_mels):
            self._fb_weight[m, : widths[m]] = fb[starts[m] : starts[m] + widths[m], m]

    def _run(self, samples: np.ndarray, n_frames: int) -> np.ndarray:
        cfg = self.config
        out = np.empty((n_frames, cfg.n_mels), dtype=np.float32)
        if n_frames:
            _logmel_kernel(
                samples, n_frames, cfg.hop_length, self._window, self._bitrev,
                self._tw_re, self._tw_im, self._post_re, self._post_im,
                self._fb_start, self._fb_width, self._fb_weight,
                cfg.amin_power, cfg.norm_mean_db, cfg.norm_std_db, out,
            )
        return out

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Whole clip: shape (n_samples,) -> (n_frames, n_mels), float32."""
        x = np.ascontiguousarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n_samples,), got {x.shape}")
        return self._run(x, self.config.n_frames(x.shape[0]))

    def stream(self) -> StreamingFrontend:
        return StreamingFrontend(self)


class StreamingFrontend:
    """Per-session state: accepts chunks of any length and keeps the remainder.

    The frames it emits are identical to ``LogMelFrontend(...)(whole_clip)``.
    """

    def __init__(self, frontend: LogMelFrontend) -> None:
        self.frontend = frontend
        cfg = frontend.config
        self._buf = np.zeros(cfg.n_fft + 4096, dtype=np.float64)
        self._n_buf = 0
        self.n_frames_emitted = 0

    def reset(self) -> None:
        self._n_buf = 0
        self.n_frames_emitted = 0

    def accept(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; return the newly completed frames, shape (n_new, n_mels)."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 1:
            raise ValueError(f"expected a mono chunk of shape (n_samples,), got {chunk.shape}")
        cfg = self.frontend.config
        need = self._n_buf + chunk.shape[0]
        if need > self._buf.shape[0]:
            grown = np.empty(max(need, 2 * self._buf.shape[0]), dtype=np.float64)
            grown[: self._n_buf] = self._buf[: self._n_buf]
            self._buf = grown
        self._buf[self._n_buf : need] = chunk
        self._n_buf = need
        n_frames = cfg.n_frames(need)
        out = self.frontend._run(self._buf, n_frames)
        if n_frames:
            consumed = n_frames * cfg.hop_length
            rest = need - consumed
            self._buf[:rest] = self._buf[consumed:need]
            self._n_buf = rest
            self.n_frames_emitted += n_frames
        return out
