"""Log-mel front end: the numpy reference and the numba streaming implementation.

Both compute, per frame of ``n_fft`` samples (not centred, periodic Hann window),
the power spectrum, an HTK mel filterbank without area normalisation (the same
as ``torchaudio.transforms.MelSpectrogram(mel_scale="htk", norm=None)``),
``10 * log10(max(power, amin))`` and the fixed affine normalisation of
:class:`FrontendConfig`.  Output: shape (n_frames, n_mels), float32.

Two engines run the same computation: numpy (the device default: float32 frames,
mel and log, a float64 FFT from scipy's pocketfft module, see :func:`_rfft`) and numba
(its own FFT, float64, in ``sdk/_logmel_numba.py``).  ``tests/test_frontend.py`` holds the
parity tests against the numpy reference, the torch implementation and
torchaudio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from acula.sdk.frontend_config import FrontendConfig

__all__ = ["LogMelFrontend", "StreamingFrontend", "mel_filterbank", "sparse_filterbank", "hann_window",
           "logmel_reference"]


_RFFT: Any = None


def _pocketfft_r2c() -> Any:
    """scipy's pocketfft real transform (``r2c``), loaded straight from its extension module: the whole
    ``scipy.fft`` package costs 0.28 s of import, the module alone about 1 ms.  None where it cannot be found
    or loaded (no scipy, another layout): the caller falls back to the public APIs."""
    import importlib.machinery
    import importlib.util
    import sys
    from pathlib import Path

    name = "scipy.fft._pocketfft.pypocketfft"
    if name in sys.modules:
        return getattr(sys.modules[name], "r2c", None)
    try:
        spec = importlib.util.find_spec("scipy")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / "fft" / "_pocketfft"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"pypocketfft{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader(name, str(path))
                module_spec = importlib.util.spec_from_loader(name, loader)
                if module_spec is None:
                    return None
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
                return getattr(module, "r2c", None)
    except (ImportError, OSError, ValueError):
        return None
    return None


def _rfft(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Real FFT over the last axis of float64 frames (n, n_fft) into ``out`` (n, n_fft // 2 + 1), complex128.

    Float64 on purpose: a float32 FFT's rounding noise sits about 140 dB under the strongest component, which
    in a heart recording upsampled from 2 kHz (a strong low tone, almost nothing above 1 kHz) is the level of the
    upper bands themselves (tests/test_mcu.py: 2e-2 in normalised log-mel).  numpy 2's float32 ``rfft`` computes
    in float64 internally; this does the same with scipy's pocketfft module, vectorised over rows: 4.6 us a
    frame for a hop's 15 frames and 3.3 us in the 128-frame passes of :class:`sdk.pool.StreamPool`, where numpy's
    took 5.2 and 8.4 us.  The module is loaded without importing ``scipy.fft`` (:func:`_pocketfft_r2c`), whose
    import cost 0.28 s of a 0.4 s cold start.  Fallbacks, chosen once per process so a stream and a whole clip
    always agree bit for bit: numpy's ``rfft``, else (numpy 1.x) ``scipy.fft.rfft``."""
    global _RFFT
    if _RFFT is None:
        r2c = _pocketfft_r2c()
        if r2c is not None:
            def _RFFT(x: np.ndarray, out: np.ndarray) -> np.ndarray:
                return r2c(x, axes=[-1], forward=True, inorm=0, out=out, nthreads=1)
        elif int(np.__version__.split(".")[0]) >= 2:
            _RFFT = lambda x, out: np.fft.rfft(x, axis=-1, out=out)  # noqa: E731
        else:
            import scipy.fft

            def _RFFT(x: np.ndarray, out: np.ndarray) -> np.ndarray:
                out[...] = scipy.fft.rfft(x, axis=-1, workers=1)
                return out
    return _RFFT(x, out)


class _Scratch:
    """A stream's work buffers for :meth:`LogMelFrontend._run`, grown to the most frames one call has needed, so
    a hop allocates only its output: the windowed frames (float64, exactly the float32 product widened) and their
    spectrum (complex128, squared in place) share one buffer, and the power (float32) has its own.  Row ``i`` of
    the windowed frames is the first ``n_fft`` of the ``n_fft + 2`` doubles that row ``i`` of the spectrum
    occupies, so the FFT runs in place: every transform reads its rows whole before it writes them (pocketfft's
    groups of rows; numpy's and scipy's fallbacks copy overlapping operands), and no row is written by another
    row's transform (tests/test_frontend.py: the in-place spectrum and log-mel equal, bit for bit, those computed
    into separate buffers, for 14 row counts from 1 to 128).  A hop's 15 frames touch 154 KB, not 277 (and 465
    before the product was widened in place), and the runtime that follows finds more of itself in cache
    (``benchmarks.hop_parts``, one run: 171 -> 164 us a hop, the runtime 45.6 -> 43.7; this machine's noise is
    about 3 us)."""

    def __init__(self, n_fft: int) -> None:
        self.n_fft, self.n = n_fft, 0

    def get(self, n_frames: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The windowed frames' buffer (n, n_fft) and :meth:`LogMelFrontend.logmel_of_windowed`'s work (the
        spectrum, the same memory as the windowed frames, and the power buffer) for ``n_frames`` rows."""
        if n_frames > self.n:
            n_freqs = self.n_fft // 2 + 1
            self.n = n_frames
            self.spec = np.empty((n_frames, n_freqs), np.complex128)
            self.wide = self.spec.view(np.float64)[:, : self.n_fft]
            self.power = np.empty((n_frames, n_freqs), np.float32)
        n = n_frames
        return self.wide[:n], (self.spec[:n], self.power[:n])


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


def sparse_filterbank(config: FrontendConfig) -> list[tuple[int, np.ndarray]]:
    """Each mel filter as (its first FFT bin, its weights up to its last non-zero bin), float64: the form a C
    front end loops over (the bridge header's and the MCU kit's tables).  An all-zero filter is (0, empty)."""
    fb = mel_filterbank(config)
    out = []
    for m in range(config.n_mels):
        nz = np.flatnonzero(fb[:, m] > 0)
        start, end = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        out.append((start, fb[start:end, m]))
    return out


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


class LogMelFrontend:
    """Stateless front end for one config: tables are built once, shared by streams.

    ``engine="numpy"`` (default) batches float32 frames through a float64 pocketfft (:func:`_rfft`);
    ``engine="numba"`` runs the numba kernel (float64, its own FFT).  Both are
    parity-tested against :func:`logmel_reference`; on either engine a stream and a whole
    clip give bit-identical frames.  The numpy engine keeps numba (about
    60 MB and 0.25 s of start-up) out of the device process.
    """

    ENGINES = ("numpy", "numba")
    MEL_GROUPS = 4  # 24 -> 14 us for a hop's 15 frames here; 8 groups cost more in calls than they save
    #: frames per pass over a long clip, the pass's three buffers (590 KB) in cache: a 10 s clip (311 frames) in one
    #: pass ran 3.8 ms here (6.5 ms with the two more buffers it had before), in passes of 128 frames 2.2 ms, of
    #: 24-48 frames 1.2-1.4 ms (``python -m acula.benchmarks.frontend``, AMD EPYC, 1 MB of L2 a core)
    PASS_ROWS = 32

    def __init__(self, config: FrontendConfig | None = None, engine: str = "numpy") -> None:
        if engine not in self.ENGINES:
            raise ValueError(f"engine must be one of {self.ENGINES}, got {engine!r}")
        self.config = config or FrontendConfig()
        self.engine = engine
        cfg = self.config
        fb = mel_filterbank(cfg)
        self._window32 = hann_window(cfg.n_fft).astype(np.float32)
        self._fb32 = np.ascontiguousarray(fb, dtype=np.float32)
        # the filters in MEL_GROUPS runs of bands, each with only the FFT bins its bands reach: a quarter of the
        # multiply-adds of the whole (n_freqs x n_mels) matrix, whose low bands are mostly zeros
        self._fb_groups: list[tuple[int, int, slice, np.ndarray]] = []
        n_groups = min(self.MEL_GROUPS, cfg.n_mels)
        for g in range(n_groups):
            bands = slice(g * cfg.n_mels // n_groups, (g + 1) * cfg.n_mels // n_groups)
            bins = np.flatnonzero(self._fb32[:, bands].any(axis=1))
            lo, hi = (int(bins[0]), int(bins[-1]) + 1) if bins.size else (0, 1)
            self._fb_groups.append((lo, hi, bands, np.ascontiguousarray(self._fb32[lo:hi, bands])))
        self._scale = np.float32(10.0 / cfg.norm_std_db)
        self._shift = np.float32(cfg.norm_mean_db / cfg.norm_std_db)
        self._numba = None
        if engine == "numba":
            from acula.sdk._logmel_numba import NumbaTables

            self._numba = NumbaTables(cfg, hann_window(cfg.n_fft), fb)

    def _run(self, samples: np.ndarray, n_frames: int, scratch: _Scratch | None = None) -> np.ndarray:
        """``n_frames`` frames of ``samples``; ``scratch``: a stream's work buffers (None: fresh ones)."""
        cfg = self.config
        if not n_frames:
            return np.empty((0, cfg.n_mels), dtype=np.float32)
        if self._numba is not None:
            out = np.empty((n_frames, cfg.n_mels), dtype=np.float32)
            self._numba.run(samples, n_frames, out)
            return out
        scratch = scratch or _Scratch(cfg.n_fft)
        if n_frames <= self.PASS_ROWS:
            windowed, work = scratch.get(n_frames)
            self.window(samples, n_frames, windowed)
            return self.logmel_of_windowed(windowed, work)
        # a long clip in passes of PASS_ROWS frames, each pass's buffers in cache (row by row, the same values)
        out = np.empty((n_frames, cfg.n_mels), dtype=np.float32)
        for a in range(0, n_frames, self.PASS_ROWS):
            n = min(self.PASS_ROWS, n_frames - a)
            windowed, work = scratch.get(n)
            self.window(samples[a * cfg.hop_length :], n, windowed)
            out[a : a + n] = self.logmel_of_windowed(windowed, work)
        return out

    def window(self, samples: np.ndarray, n_frames: int, out: np.ndarray) -> None:
        """The ``n_frames`` overlapping frames of ``samples`` times the analysis window, into ``out`` (shape
        (n_frames, n_fft)): the product is taken in float32 and stored in ``out``'s dtype (float64 for
        :meth:`logmel_of_windowed`: the float32 product, widened exactly, in one pass)."""
        cfg = self.config
        x = np.ascontiguousarray(samples[: (n_frames - 1) * cfg.hop_length + cfg.n_fft], dtype=np.float32)
        step = x.itemsize
        # the frames as a view of x: np.ndarray on x's buffer costs 1 us where as_strided's Python wrapper cost
        # 11 us, 6 % of a hop's front end
        frames = np.ndarray((n_frames, cfg.n_fft), np.float32, x, 0, (cfg.hop_length * step, step))
        np.multiply(frames, self._window32, out=out, dtype=np.float32)

    def logmel_of_windowed(self, windowed: np.ndarray, work: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Normalised log-mel of frames already multiplied by the window, shape (n, n_fft), float64 (the float32
        product widened, as :meth:`window` writes it) -> (n, n_mels).  Every step works row by row, so a frame's
        values never depend on the other rows of the call (a stream, a whole clip and
        :class:`sdk.pool.StreamPool`'s batch of many streams' frames agree bit for bit).  ``work``: the spectrum
        and power buffers for n rows (``_Scratch.get(n)[1]``)."""
        cfg = self.config
        n = windowed.shape[0]
        spec, power = work
        out = np.empty((n, cfg.n_mels), dtype=np.float32)
        spec = _rfft(windowed, spec)
        # |X|^2 = re^2 + im^2 in float64, squaring the interleaved (re, im) values in place (one contiguous pass,
        # no buffer of its own); the sum is rounded once, to the float32 power the mel product takes
        squares = spec.view(np.float64)
        np.square(squares, out=squares)
        np.add(squares[:, 0::2], squares[:, 1::2], out=power)
        # one (1 x bins) @ (bins x bands) product per frame and group of bands: a frame's result then never
        # depends on how many frames share the call, so a stream is bit-identical whatever its chunking
        for lo, hi, bands, weights in self._fb_groups:
            np.matmul(power[:, None, lo:hi], weights, out=out[:, None, bands])
        np.maximum(out, np.float32(cfg.amin_power), out=out)
        np.log10(out, out=out)
        out *= self._scale
        out -= self._shift
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
        # float32, the precision the engine computes in: storing float32 rounds each sample once, exactly as
        # the whole-clip call does before its FFT, so frames stay bit-identical
        dtype = np.float64 if frontend.engine == "numba" else np.float32
        self._buf = np.zeros(cfg.n_fft + 4096, dtype=dtype)
        self._n_buf = 0
        self.n_frames_emitted = 0
        self._scratch = _Scratch(cfg.n_fft)

    def reset(self) -> None:
        self._n_buf = 0
        self.n_frames_emitted = 0

    def accept(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; return the newly completed frames, shape (n_new, n_mels)."""
        n_frames = self.stage(chunk)
        out = self.compute(n_frames)
        self.commit(n_frames)
        return out

    def stage(self, chunk: np.ndarray) -> int:
        """Buffer samples; returns how many frames are complete.  :meth:`compute` (or, for a batch of streams,
        :meth:`window_staged`) turns them into log-mel, :meth:`commit` releases them; :meth:`accept` does all."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 1:
            raise ValueError(f"expected a mono chunk of shape (n_samples,), got {chunk.shape}")
        need = self._n_buf + chunk.shape[0]
        if need > self._buf.shape[0]:
            grown = np.empty(max(need, 2 * self._buf.shape[0]), dtype=self._buf.dtype)
            grown[: self._n_buf] = self._buf[: self._n_buf]
            self._buf = grown
        self._buf[self._n_buf : need] = chunk
        self._n_buf = need
        return self.frontend.config.n_frames(need)

    def compute(self, n_frames: int) -> np.ndarray:
        """Log-mel of the staged complete frames, shape (n_frames, n_mels) (not yet released: see commit)."""
        return self.frontend._run(self._buf, n_frames, self._scratch)

    def window_staged(self, n_frames: int, out: np.ndarray) -> None:
        """The staged complete frames times the analysis window, into ``out`` (before ``commit``)."""
        self.frontend.window(self._buf, n_frames, out)

    def commit(self, n_frames: int) -> None:
        """Drop the samples of ``n_frames`` emitted frames, keeping the overlap the next frame needs."""
        if n_frames:
            cfg = self.frontend.config
            consumed = n_frames * cfg.hop_length
            rest = self._n_buf - consumed
            self._buf[:rest] = self._buf[consumed : self._n_buf]
            self._n_buf = rest
            self.n_frames_emitted += n_frames
