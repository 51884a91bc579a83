"""The SDK Model and Stream on a toy bundle: chunking, reset, bad input, quality gate, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from acula.sdk.audio import AudioError, NonFiniteAudioError, resample  # noqa: E402
from acula.sdk.synth import synth_recording  # noqa: E402

from acula import sdk  # noqa: E402
from tests.test_sdk_imports import BLOCKER  # noqa: E402
from tests.toy_bundle import make_toy_bundle  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "bundle")


@pytest.fixture(scope="module")
def model(bundle: Path) -> sdk.Model:
    return sdk.load(bundle, precision="fp32")


def run_stream(model: sdk.Model, x: np.ndarray, rate: int, sizes: list[int]) -> tuple[list, list]:
    stream = model.stream()
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out += stream.accept(x[i : i + n], rate)
        i, k = i + n, k + 1
    out += stream.flush()
    return out, stream.events


def as_tuple(windows: list) -> list:
    return [(w.index, w.start_s, w.end_s, w.cough_probability, w.problems, tuple(np.round(w.embedding, 6)))
            for w in windows]


@pytest.mark.parametrize("sizes", [[1], [160], [511], [512], [4096], [7680], [7, 3000, 1, 999], [2560, 7680, 5, 2555]])
def test_stream_results_do_not_depend_on_chunking(model: sdk.Model, sizes: list[int]):
    x, _ = synth_recording(2.0 if sizes == [1] else 6.0, seed=2)
    whole = model.screen(x, 16000)
    got, events = run_stream(model, x, 16000, sizes)
    assert as_tuple(got) == as_tuple(whole.windows)
    assert events == whole.events


def stream_state(stream) -> tuple:
    """What a hop leaves behind in a stream's gate, meter and cough envelope."""
    m = stream._meter
    return ([(a, x.tolist()) for a, x in stream.gate.samples.pieces()], stream.gate._blocks.held().tolist(),
            stream.gate.block_open,
            (m.n_samples, m.n_clipped, m._peak, m._sum, m._sumsq, m._run, m._last),
            list(stream.detector._power), stream.detector._power_base, stream.n_samples_16k)



def test_a_16khz_stream_keeps_no_quiet_samples_and_a_44khz_stream_keeps_its_ragged_edges(model: sdk.Model):
    """At the model's rate every window lies on the gate's block grid, so quiet hops are measured and not kept
    (sdk.fifo.SampleStore); at 44.1 kHz windows have ragged edges in source samples, so every sample from the
    next window's start is kept."""
    x, _ = synth_recording(6.0, seed=5)
    at16 = model.stream()
    for i in range(0, x.size - 7680 + 1, 7680):
        at16.accept(x[i : i + 7680], 16000)
    assert at16.gate.sparse and at16.gate.samples.pieces() == []
    y = resample(x, 16000, 44100)
    at44 = model.stream()
    for i in range(0, y.size, 4410):
        at44.accept(y[i : i + 4410], 44100)
    held = at44.gate.samples
    kept = sum(p.shape[0] for _, p in held.pieces())
    assert not at44.gate.sparse and kept == held.end - held.base > 4410  # every sample from the next window's start


def test_hop_sized_chunks_take_the_whole_block_path_and_leave_the_general_paths_state(model: sdk.Model,
                                                                                    monkeypatch):
    """Float32 hops on the block grid skip the general validation (sdk.stream.stage_whole_blocks); each hop
    leaves bit for bit the gate, meter and envelope state and the windows of the general path, a clipped hop
    and a hop with NaN included (the NaN raises the same error and leaves the stream as it was)."""
    from acula.sdk.stream import Stream

    x, _ = synth_recording(8.0, seed=3)
    hop = 7680  # the default bundle's hop: 15 quality blocks, 48 envelope frames
    x[3 * hop + 100 : 3 * hop + 400] = 1.0  # a flat top: the meter follows the samples
    bad = x[:hop].copy()
    bad[17] = np.nan
    fast, general = model.stream(), model.stream()
    calls = []
    real = Stream._takes_whole_blocks
    monkeypatch.setattr(Stream, "_takes_whole_blocks",
                        lambda self, c, r: self is fast and calls.append(real(self, c, r)) or calls[-1])
    got = {id(fast): [], id(general): []}
    for i in range(0, x.size - hop + 1, hop):
        for s in (fast, general):
            with pytest.raises(NonFiniteAudioError, match="NaN"):
                s.accept(bad, 16000)
            got[id(s)] += s.accept(x[i : i + hop], 16000)
        assert stream_state(fast) == stream_state(general)
    assert calls.count(True) > 10 and calls[0] is False  # the first chunk (the rate unknown yet) takes the general path
    assert as_tuple(got[id(fast)]) == as_tuple(got[id(general)]) and got[id(fast)]
    assert fast.quality() == general.quality() and fast.quality().clipped_fraction > 0


def test_stream_at_44k_is_chunk_invariant_and_close_to_16k(model: sdk.Model):
    from scipy.signal import firwin, lfilter, resample_poly

    x16, _ = synth_recording(4.0, seed=5)
    x16 = lfilter(firwin(255, 6000, fs=16000), 1.0, x16).astype(np.float32)  # inside both rates' passbands

    x44 = resample_poly(x16, 441, 160).astype(np.float32)
    whole = model.embed(x44, 44100)
    parts, _ = run_stream(model, x44, 44100, [1234, 77, 5000])
    np.testing.assert_array_equal(np.stack([w.embedding for w in parts]), whole.embeddings)
    direct = model.embed(x16, 16000).embeddings
    assert whole.embeddings.shape == direct.shape
    cos = np.sum(whole.embeddings * direct, 1) / np.linalg.norm(whole.embeddings, axis=1) / np.linalg.norm(direct,
                                                                                                          axis=1)
    assert cos.min() > 0.99


def test_reset_starts_over_and_two_streams_do_not_share_state(model: sdk.Model):
    x, _ = synth_recording(5.0, seed=1)
    a, b = model.stream(), model.stream()
    a.accept(x[:30000], 16000)
    b_first = b.accept(x, 16000)
    a.reset()
    a_first = a.accept(x, 16000)
    assert as_tuple(a_first) == as_tuple(b_first)


def test_nan_and_inf_are_rejected(model: sdk.Model):
    x, _ = synth_recording(2.0)
    x[100] = np.nan
    with pytest.raises(NonFiniteAudioError):
        model.screen(x, 16000)
    with pytest.raises(NonFiniteAudioError):
        model.stream().accept(np.array([0.0, np.inf], dtype=np.float32), 16000)


def test_empty_and_too_short_audio_give_flagged_results(model: sdk.Model):
    empty = model.score(np.zeros(0, dtype=np.float32), 16000, "lung")
    assert empty.probabilities is None and empty.problems == ("too_short",)
    short = model.score(synth_recording(0.3)[0], 16000, "lung")  # shorter than one window: tiled, and said so
    assert short.n_windows == 1 and short.probabilities is not None and short.problems == ("too_short",)


def test_rate_change_within_a_stream_is_refused(model: sdk.Model):
    stream = model.stream()
    stream.accept(np.zeros(100, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="start a new stream"):
        stream.accept(np.zeros(100, dtype=np.float32), 8000)


def test_int16_multichannel_and_odd_rates_are_accepted(model: sdk.Model):
    x, _ = synth_recording(3.0)
    stereo16 = (np.stack([x, x], 1) * 32767).astype(np.int16)
    a = model.embed(stereo16, 16000).embeddings
    b = model.embed(x, 16000).embeddings
    assert np.max(np.abs(a - b)) / np.max(np.abs(b)) < 0.01  # 16-bit quantisation only
    for rate in (2000, 4000, 8000, 22050, 48000):
        t = np.arange(rate * 3) / rate
        assert model.embed((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), rate).embeddings.shape[0] > 0


def test_silence_and_clipping_are_gated_not_scored(model: sdk.Model):
    silent = model.screen(np.zeros(16000 * 3, dtype=np.float32), 16000)
    assert not silent.ok and silent.quality.silent
    assert all("silent" in w.problems and w.cough_probability is None for w in silent.windows)
    assert silent.events == []
    x, _ = synth_recording(3.0)
    clipped = model.screen(np.clip(x * 20, -1, 1), 16000)
    assert all("clipped" in w.problems and w.cough_probability is None for w in clipped.windows)
    score = model.score(np.zeros(16000 * 3, dtype=np.float32), 16000, "lung")
    assert score.probabilities is None and "silent" in score.problems


def test_unknown_label_set_and_backend_are_clear_errors(model: sdk.Model, bundle: Path):
    with pytest.raises(ValueError, match="offers"):
        model.score(np.zeros(32000, dtype=np.float32), 16000, "kidney")
    with pytest.raises(sdk.BundleError, match="no tflite fp32 model"):
        sdk.load(bundle, backend="tflite", precision="fp32")
    with pytest.raises(sdk.BundleError, match="export one"):
        sdk.load("no-such-model")
    assert set(model.label_sets) == {"heart", "lung", "sound"}


def test_results_convert_to_json(model: sdk.Model):
    x, _ = synth_recording(3.0)
    silent = np.zeros(16000 * 3, dtype=np.float32)
    for result in (model.screen(x, 16000), model.score(x, 16000, "heart"), model.embed(x, 16000),
                   model.screen(silent, 16000), model.score(silent, 16000, "heart")):
        json.dumps(result.to_dict(), allow_nan=False)  # strict JSON: no NaN or -Infinity


def test_a_cold_start_imports_only_what_the_first_hop_needs():
    """Import, load the packaged default and screen: nothing heavy that the first result does not use (scipy cost
    0.28 s of a 0.4 s cold start, numba 0.5 s, importlib.resources 10 ms through tempfile, shutil, bz2, lzma)."""
    code = ("import sys, numpy as np, acula\n"
            "m = acula.load('default', precision='fp32')\n"
            "assert m.screen(np.zeros(32000, np.float32) + 0.01, 16000).windows\n"
            "heavy = {'scipy', 'numba', 'llvmlite', 'torch', 'importlib.resources', 'tempfile', 'soundfile'}\n"
            "print(sorted(k for k in sys.modules if k in heavy or k.split('.')[0] in heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_sdk_runs_a_bundle_with_torch_blocked(bundle: Path):
    code = BLOCKER + (
        "import numpy as np, acula.sdk as sdk\n"
        f"m = sdk.load({str(bundle)!r})\n"
        "r = m.screen(np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1, 16000)\n"
        "assert len(r.windows) > 0\n"
        "assert not any(k.split('.')[0] in {'torch', 'transformers'} for k in sys.modules)\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_acula_screen_and_score_cli(bundle: Path, tmp_path: Path, capsys):
    import soundfile as sf
    from acula.sdk.cli import main

    x, _ = synth_recording(4.0)
    sf.write(tmp_path / "r.wav", x, 16000)
    (tmp_path / "bad.wav").write_bytes(b"junk")
    assert main(["screen", "--bundle", str(bundle), "--json", str(tmp_path / "r.wav")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["duration_s"] == 4.0 and "events" in row
    assert main(["score", "--bundle", str(bundle), "--labels", "heart", str(tmp_path / "r.wav")]) == 0
    assert "abnormal" in capsys.readouterr().out
    assert main(["screen", "--bundle", str(bundle), str(tmp_path / "bad.wav")]) == 1
    assert "UnreadableAudioError" in capsys.readouterr().err
    assert main(["screen", "--bundle", str(tmp_path / "missing"), str(tmp_path / "r.wav")]) == 1
    capsys.readouterr()
    # --json: one object per file, errors included, and the good file still scored
    assert main(["score", "--bundle", str(bundle), "--json", str(tmp_path / "bad.wav"), str(tmp_path / "r.wav")]) == 1
    bad, good = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert bad["error"] == "UnreadableAudioError" and bad["path"].endswith("bad.wav")
    assert good["label_set"] == "lung" and set(good["probabilities"]) == {"normal", "crackles", "wheezes"}
    assert main(["score", "--bundle", str(bundle), "--json", "--labels", "kidney", str(tmp_path / "r.wav")]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "ValueError"


def test_per_label_set_temperature_from_the_manifest_scales_the_logits(tmp_path: Path):
    import json as _json

    bundle = make_toy_bundle(tmp_path / "t")
    base = sdk.load(bundle, precision="fp32")
    manifest = _json.loads((bundle / "manifest.json").read_text())
    manifest["calibration"]["temperature"] = {"lung": 4.0}
    (bundle / "manifest.json").write_text(_json.dumps(manifest))
    hot = sdk.load(bundle, precision="fp32")
    x, _ = synth_recording(3.0)
    a, b = base.embed(x, 16000), hot.embed(x, 16000)
    la = base.scorer(a.embeddings)
    lb = hot.scorer(b.embeddings)
    np.testing.assert_allclose(lb["lung"] * 4.0, la["lung"], rtol=1e-5)
    np.testing.assert_allclose(lb["heart"], la["heart"], rtol=1e-6)


def test_peak_window_is_the_highest_scored_window_and_none_without_one():
    from acula.sdk.model import ScreenResult, WindowResult

    def window(i: int, p: float | None) -> WindowResult:
        return WindowResult(i, 0.48 * i, 0.48 * i + 1.98, np.zeros(4, np.float32), p, {})

    result = ScreenResult(5.0, [], [window(0, 0.2), window(1, None), window(2, 0.7), window(3, 0.4)], None, 0.0)
    peak = result.peak_window()
    assert peak is not None and peak.index == 2
    assert ScreenResult(5.0, [], [window(0, None)], None, 0.0).peak_window() is None


def test_odd_arguments_to_the_model_are_clear_errors(model: sdk.Model, bundle: Path):
    with pytest.raises(ValueError, match="offers"):
        model.score(np.zeros(32000, dtype=np.float32), 16000, ["heart"])  # type: ignore[arg-type]
    for n_threads in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_threads must be a whole number"):
            sdk.load(bundle, precision="fp32", n_threads=n_threads)  # type: ignore[arg-type]
    from acula.sdk.text import CustomLabels

    def embed(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 8), np.float32)

    for labels, match in (({"stridor": ["A recording of stridor."], "normal": ["a recording of  stridor."]},
                           "share the prompt"), ({"a": [""], "b": ["x"]}, "non-blank"),
                          ({"a": ["  "], "b": ["x"]}, "non-blank"), ({1: ["x"], "b": ["y"]}, "non-empty strings")):
        with pytest.raises(ValueError, match=match):
            CustomLabels.build(labels, embed)  # type: ignore[arg-type]


def test_moving_the_cough_threshold_does_not_compound(model: sdk.Model, bundle: Path):
    fresh = sdk.load(bundle, precision="fp32")
    own = fresh.screening
    for on in (0.0001, 0.96, 1e-5, 0.3, 0.9):
        fresh.set_cough_threshold(on)
    assert fresh.screening == own.with_on(0.9)  # as if 0.9 had been the only move


def test_a_manifest_that_does_not_match_its_model_is_refused_at_load(tmp_path: Path):
    """An edited manifest that agrees with itself (its files' declared shapes changed too, so the schema passes)
    but not with the model file: refused at load, not inside the runtime at the first window."""

    def edit(manifest: dict, window: int = 16, embed: int = 8, n_heads: int = 1) -> None:
        manifest["window_frames"], manifest["embed_dim"] = window, embed
        manifest["hop_frames"] = min(manifest["hop_frames"], window)
        for entry in manifest["files"].values():
            if "inputs" in entry:
                entry["inputs"][0]["shape"][1] = window
                entry["outputs"][0]["shape"][1], entry["outputs"][1]["shape"][1] = embed, n_heads
        if n_heads > 1:
            manifest["heads"] = {"cough": {"index": n_heads - 1}}

    for name, change, match in (("window", {"window": 40}, "does not take the manifest's window of 40"),
                                ("heads", {"n_heads": 4}, "reads output 3")):  # (embed_dim: the prompts' width)
        folder = make_toy_bundle(tmp_path / name)
        manifest = json.loads((folder / "manifest.json").read_text())
        edit(manifest, **change)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(sdk.BundleError, match=match):
            sdk.load(folder, precision="fp32")


def test_search_by_audio_refuses_silence_and_names_the_embedding_size(model: sdk.Model):
    from acula.sdk.search import CaseIndex

    x, _ = synth_recording(3.0, seed=1)
    index = CaseIndex(8, "flat")
    index.add(model.embed(x, 16000).embeddings, [{"i": i} for i in range(len(model.embed(x, 16000).times_s))])
    assert model.search(x, index, 2)
    with pytest.raises(AudioError, match="digital silence"):
        model.search(np.zeros(48000, np.float32), index)
    with pytest.raises(AudioError, match="this bundle's 8 values"):
        model.search(np.ones(6, np.float32), index)


def test_run_windows_and_run_batch_check_shapes_and_take_no_window(model: sdk.Model):
    n_mels = model.frontend.config.n_mels
    for run in (model.run_windows, model.run_batch):
        emb, heads = run(np.zeros((0, model.window_frames, n_mels), np.float32))
        assert emb.shape == (0, 8) and heads.shape == (0, 1)
        with pytest.raises(ValueError, match="this model takes"):
            run(np.zeros((1, model.window_frames + 1, n_mels), np.float32))
    assert model.run_windows([])[0].shape == (0, 8)
    window = np.random.default_rng(0).standard_normal((1, model.window_frames, n_mels))  # float64: converted
    np.testing.assert_array_equal(model.run_batch(window)[0], model.run_batch(window.astype(np.float32))[0])
