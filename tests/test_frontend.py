"""Parity of every front-end implementation with the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from acula.sdk.frontend import LogMelFrontend, logmel_reference, mel_filterbank
from acula.sdk.frontend_config import FrontendConfig

TOL = 1e-4


def stream_in_chunks(frontend: LogMelFrontend, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    stream = frontend.stream()
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(stream.accept(x[i : i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out)


ENGINES = ["numpy", "numba"]


@pytest.mark.parametrize("engine", ENGINES)
def test_whole_clip_matches_numpy_reference(noise_16k, engine):
    frontend = LogMelFrontend(engine=engine)
    got, want = frontend(noise_16k), logmel_reference(noise_16k, frontend.config)
    assert got.shape == (frontend.config.n_frames(noise_16k.size), 64)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= TOL


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("chunk", [1, 160, 511, 512, 4096])
def test_stream_is_chunk_size_invariant(noise_16k, chunk, engine):
    frontend = LogMelFrontend(engine=engine)
    x = noise_16k[:24000] if chunk == 1 else noise_16k
    streamed = stream_in_chunks(frontend, x, [chunk])
    whole = logmel_reference(x, frontend.config)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) <= TOL
    np.testing.assert_array_equal(streamed, frontend(x))  # same engine: bit-identical to the whole clip


@pytest.mark.parametrize("engine", ENGINES)
def test_stream_with_random_chunk_sizes_matches_whole_clip(noise_16k, engine):
    frontend = LogMelFrontend(engine=engine)
    sizes = list(np.random.default_rng(7).integers(0, 3000, size=200))
    streamed = stream_in_chunks(frontend, noise_16k, sizes)
    assert np.max(np.abs(streamed - logmel_reference(noise_16k, frontend.config))) <= TOL


def test_stream_reset_starts_over_and_streams_do_not_share_state(noise_16k):
    frontend = LogMelFrontend()
    a, b = frontend.stream(), frontend.stream()
    a.accept(noise_16k[:5000])
    a.reset()
    first = a.accept(noise_16k[:8000])
    other = b.accept(noise_16k[:8000])
    np.testing.assert_array_equal(first, other)
    np.testing.assert_array_equal(first, frontend(noise_16k[:8000]))


def test_short_input_gives_no_frames():
    frontend = LogMelFrontend()
    assert frontend(np.zeros(100, dtype=np.float32)).shape == (0, 64)
    assert frontend.stream().accept(np.zeros(1023, dtype=np.float32)).shape == (0, 64)


@pytest.mark.parametrize("engine", ENGINES)
def test_silence_maps_to_the_floor_not_minus_infinity(engine):
    cfg = FrontendConfig()
    out = LogMelFrontend(cfg, engine=engine)(np.zeros(4096, dtype=np.float32))
    floor = (10 * np.log10(cfg.amin_power) - cfg.norm_mean_db) / cfg.norm_std_db
    assert np.all(np.isfinite(out)) and np.allclose(out, floor)


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        LogMelFrontend(engine="cuda")


def test_config_refuses_impossible_settings():
    with pytest.raises(ValueError, match="power of two"):
        FrontendConfig(n_fft=1000)
    with pytest.raises(ValueError, match="f_max_hz"):
        FrontendConfig(f_max_hz=9000.0)
    with pytest.raises(ValueError, match="unknown"):
        FrontendConfig.from_dict({"n_fft": 1024, "bogus": 1})
    cfg = FrontendConfig(n_mels=32)
    assert FrontendConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("engine", ENGINES)
def test_other_configs_stay_in_parity(noise_16k, engine):
    cfg = FrontendConfig(sample_rate_hz=8000, n_fft=256, hop_length=80, n_mels=40, f_min_hz=20, f_max_hz=4000)
    frontend = LogMelFrontend(cfg, engine=engine)
    assert np.max(np.abs(frontend(noise_16k) - logmel_reference(noise_16k, cfg))) <= TOL
    assert np.max(np.abs(stream_in_chunks(frontend, noise_16k, [77]) - logmel_reference(noise_16k, cfg))) <= TOL


@pytest.mark.parametrize("n_mels", [1, 2, 3, 5, 64])
def test_the_grouped_mel_product_covers_every_band(noise_16k, n_mels: int):
    """The mel product runs in groups of bands; with fewer bands than groups every band is still written."""
    cfg = FrontendConfig(n_mels=n_mels)
    frontend = LogMelFrontend(cfg)
    covered = sorted(b for _, _, bands, _ in frontend._fb_groups for b in range(n_mels)[bands])
    assert covered == list(range(n_mels))
    assert np.max(np.abs(frontend(noise_16k) - logmel_reference(noise_16k, cfg))) <= TOL
    assert np.array_equal(stream_in_chunks(frontend, noise_16k, [77]), frontend(noise_16k))


def test_filterbank_has_no_empty_band():
    fb = mel_filterbank(FrontendConfig())
    assert fb.shape == (513, 64)
    assert np.all(fb.max(axis=0) > 0)


def test_torch_frontend_matches_reference(noise_16k):
    torch = pytest.importorskip("torch")
    from acula.aligner.frontend_torch import TorchLogMel

    module = TorchLogMel()
    batch = torch.from_numpy(np.stack([noise_16k, noise_16k[::-1].copy()]))
    got = module(batch).numpy()
    assert got.shape == (2, FrontendConfig().n_frames(noise_16k.size), 64)
    assert np.max(np.abs(got[0] - logmel_reference(noise_16k, module.config))) <= TOL
    assert np.max(np.abs(got[1] - logmel_reference(noise_16k[::-1], module.config))) <= TOL


def test_torchaudio_melspectrogram_agrees_with_reference(noise_16k):
    torch = pytest.importorskip("torch")
    torchaudio = pytest.importorskip("torchaudio")
    cfg = FrontendConfig()
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate_hz, n_fft=cfg.n_fft, hop_length=cfg.hop_length, f_min=cfg.f_min_hz,
        f_max=cfg.f_max_hz, n_mels=cfg.n_mels, power=2.0, center=False, norm=None, mel_scale="htk",
        window_fn=torch.hann_window,
    )
    power = mel.double()(torch.from_numpy(noise_16k).double()).T.numpy()
    normalised = (10 * np.log10(np.maximum(power, cfg.amin_power)) - cfg.norm_mean_db) / cfg.norm_std_db
    assert np.max(np.abs(normalised - logmel_reference(noise_16k, cfg))) <= TOL


def test_the_sparse_filterbank_holds_every_non_zero_weight_of_each_filter():
    from acula.sdk.frontend import mel_filterbank, sparse_filterbank

    cfg = FrontendConfig()
    dense = np.zeros((cfg.n_freqs, cfg.n_mels))
    for m, (start, weights) in enumerate(sparse_filterbank(cfg)):
        dense[start : start + len(weights), m] = weights
    assert np.array_equal(dense, mel_filterbank(cfg))


def test_the_fft_is_scipys_pocketfft_loaded_without_scipy_fft():
    """The front end's FFT is scipy's pocketfft module loaded on its own (not the 0.28 s scipy.fft package), in
    float64: bit for bit scipy.fft.rfft, written into the caller's buffer, and scipy.fft stays unimported."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from acula.sdk.frontend import _rfft, _pocketfft_r2c\n"
            "assert _pocketfft_r2c() is not None\n"
            "x = np.random.default_rng(0).standard_normal((15, 1024))\n"
            "out = np.empty((15, 513), np.complex128)\n"
            "assert _rfft(x, out) is out\n"
            "assert 'scipy.fft' not in sys.modules\n"
            "import scipy.fft\n"
            "assert scipy.fft.rfft(x, axis=-1).tobytes() == out.tobytes()\n"
            "assert np.abs(np.fft.rfft(x, axis=-1) - out).max() < 1e-9\n"
            "print('ok')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


@pytest.mark.parametrize("n_rows", [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 128])
def test_the_fft_in_place_over_the_windowed_frames_equals_the_fft_into_a_buffer_of_its_own(n_rows: int):
    """The scratch puts the windowed frames inside the spectrum's rows and transforms them in place: for every row
    count (pocketfft transforms rows in groups, and a group must read its rows before it writes them) the
    spectrum is bit for bit the one written into a separate buffer, and the log-mel too."""
    from acula.sdk.frontend import _rfft, _Scratch

    frontend = LogMelFrontend()
    x = np.random.default_rng(n_rows).standard_normal((n_rows, 1024))
    expected = _rfft(x.copy(), np.empty((n_rows, 513), np.complex128))
    scratch = _Scratch(1024)
    windowed, (spec, power) = scratch.get(n_rows)
    assert np.shares_memory(windowed, spec)
    windowed[...] = x
    assert _rfft(windowed, spec).tobytes() == expected.tobytes()
    windowed[...] = x
    separate = (np.empty((n_rows, 513), np.complex128), np.empty((n_rows, 513), np.float32))
    assert frontend.logmel_of_windowed(windowed, (spec, power)).tobytes() == \
        frontend.logmel_of_windowed(x.copy(), separate).tobytes()
