"""acula.sdk.level: windows shifted to a running level stream exactly, ignore gain on a low-floored front end, agree
with the export's windows and with the experiment that measured them; the level-blind gate; the manifest's level
block."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.bundle import BundleError
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.level import DEFAULT_HISTORY_FRAMES, LevelShift, shift_crops, shift_cut_windows
from acula.sdk.quality import WindowGate
from acula.sdk.stream import Windower

from tests.toy_bundle import make_toy_bundle

FLOOR160 = FrontendConfig(amin_power=1e-16)


def _clip(seconds: float = 14.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.03 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) + 0.001 * rng.standard_normal(t.size)
    burst = slice(16000 * 6, 16000 * 6 + 3200)  # a tone 30 dB over the rest, which the running level keeps 10 s
    x[burst] += 0.9 * np.sin(2 * np.pi * 1000 * t[burst])
    return x.astype(np.float32)


def _windows(samples: np.ndarray, level: LevelShift | None, chunk: int | None = None,
             cfg: FrontendConfig = FLOOR160) -> list[np.ndarray]:
    stream, windower = LogMelFrontend(cfg).stream(), Windower(cfg.n_mels, 62, 15, level)
    out: list[np.ndarray] = []
    for a in range(0, samples.size, chunk or samples.size):
        windower.append(stream.accept(samples[a : a + (chunk or samples.size)]))
        out += [w.copy() for w in windower.ready()]
        windower.release()
    return out


def test_shifted_windows_stream_exactly_and_ignore_gain_on_a_low_floored_front_end():
    level, x = LevelShift(), _clip()
    whole, chunked = _windows(x, level), _windows(x, level, 7777)
    quiet = _windows(x * np.float32(10 ** (-24 / 20)), level)
    plain_loud, plain_quiet = _windows(x, None), _windows(x * np.float32(10 ** (-24 / 20)), None)
    assert len(whole) == len(chunked) == len(quiet) == len(plain_loud) > 20
    for a, b, c in zip(whole, chunked, quiet, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=2e-4)
    # unshifted, the same gain moves every cell by 24 dB (0.65 normalised units)
    assert float(np.abs(plain_loud[0] - plain_quiet[0]).mean()) == pytest.approx(24 / 36.8, abs=0.01)
    assert max(float(w.max()) for w in whole) == pytest.approx(level.ref, abs=1e-5)
    # the tone at 6-6.2 s sets the level of the windows after it that end within 10 s of it: they sit lower
    after = 6.2 * 16000 / 512 + 2  # the tone's last frame
    later = [k for k in range(len(whole)) if k * 15 > after and k * 15 + 62 - 312 < after - 8]
    assert len(later) > 5 and all(float(whole[k].max()) < level.ref - 0.5 for k in later)


def test_the_exports_windows_are_the_streams():
    from acula.aligner.data import windows

    level = LevelShift(history_frames=100)
    for seconds in (9.0, 1.5):  # a short clip: one tiled window, shifted by the level of all its frames
        x = _clip(seconds, seed=3)
        feats = LogMelFrontend(FLOOR160)(x)
        stream, windower = LogMelFrontend(FLOOR160).stream(), Windower(64, 62, 15, level)
        windower.append(stream.accept(x))
        got = [w.copy() for w in windower.ready()] + [w for w in [windower.tiled()] if w is not None]
        np.testing.assert_array_equal(np.stack(got), shift_cut_windows(level, feats, windows(feats, 62, 15), 15))


def test_calibration_crops_are_shifted_by_their_own_peak():
    crops = np.random.default_rng(0).standard_normal((5, 62, 64)).astype(np.float32)
    out = shift_crops(LevelShift(ref=1.5), crops)
    np.testing.assert_allclose(out.max(axis=(1, 2)), 1.5, atol=1e-6)
    np.testing.assert_allclose(out - out.max(axis=(1, 2), keepdims=True),
                               crops - crops.max(axis=(1, 2), keepdims=True), atol=1e-6)


def test_the_sdk_shift_is_the_one_the_level_floor_experiment_measured(monkeypatch):
    from acula.sdk import stream as st

    for name in ("reset", "append", "ready_raw", "tiled_raw"):
        monkeypatch.setattr(st.Windower, name, getattr(st.Windower, name))
    script = Path(__file__).resolve().parents[1] / "scripts" / "level_floor_experiment.py"
    spec = importlib.util.spec_from_file_location("level_floor_experiment", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = _clip()
    sdk_windows = _windows(x, LevelShift(), 4096)
    module.patch_windower(10.0, 0.0, 1.87)
    assert round(10.0 / module.FRAME_S) == DEFAULT_HISTORY_FRAMES
    experiment = _windows(x, None, 4096)
    assert len(sdk_windows) == len(experiment)
    for a, b in zip(sdk_windows, experiment, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_level_bundle_scores_the_same_at_any_gain_and_gates_by_activity_alone(tmp_path):
    from acula import sdk

    front = FLOOR160
    plain = sdk.load(make_toy_bundle(tmp_path / "plain", frontend=front))
    level = sdk.load(make_toy_bundle(tmp_path / "level", frontend=front, level=LevelShift().to_manifest()))
    assert plain.level is None and level.level == LevelShift()
    from acula.sdk.bundle import describe

    assert "level: windows shifted so the loudest cell of the last 312 frames sits at 1.87; quality gate relative" in (
        describe(level.bundle)) and "level:" not in describe(plain.bundle)
    x = _clip()
    # a stretch 20 dB under the rest, 40 dB under the tone's windows and loud enough (about -55 dBFS RMS) for the
    # absolute gate at its own level, not 24 dB lower
    x[16000 * 10 :] *= np.float32(0.1)

    def run(model, gain_db: float) -> list:
        s = model.stream()
        return s.accept(x * np.float32(10 ** (gain_db / 20)), 16000) + s.flush()

    a, b = run(level, 0.0), run(level, -24.0)
    assert [w.problems for w in a] == [w.problems for w in b]
    assert any(w.problems == ("low_level",) for w in a)
    np.testing.assert_allclose(np.stack([w.embedding for w in a]), np.stack([w.embedding for w in b]), atol=1e-3)
    p, q = run(plain, 0.0), run(plain, -24.0)
    assert [w.problems for w in p] != [w.problems for w in q]  # the absolute gate moves with gain
    assert float(np.abs(np.stack([w.embedding for w in p]) - np.stack([w.embedding for w in q])).max()) > 0.1


def test_the_relative_gate_keeps_silence_and_judges_low_level_against_the_loudest_window():
    rng = np.random.default_rng(2)
    x = np.concatenate([0.3 * rng.standard_normal(16000), 0.003 * rng.standard_normal(16000), np.zeros(16000)])

    def gated(relative: bool, gain_db: float) -> list[tuple[str, ...]]:
        gate = WindowGate(relative=relative)
        gate.append((x * 10 ** (gain_db / 20)).astype(np.float32))
        return [gate.problems(k * 16000, (k + 1) * 16000) for k in range(3)]

    assert gated(False, 0.0) == [(), (), ("silent",)] and gated(False, -20.0) == [(), ("low_level",), ("silent",)]
    assert gated(True, 0.0) == gated(True, -20.0) == [(), ("low_level",), ("silent",)]


@pytest.mark.parametrize(("block", "message"), [
    ({"ref": 1.87}, "lacks history_frames"), ({"ref": "x", "history_frames": 312}, "level.ref"),
    ({"ref": 1.87, "history_frames": 0}, "level.history_frames"),
    ({"ref": 1.87, "history_frames": 312, "gate": "loud"}, "level.gate"),
    ({"ref": 1.87, "history_frames": 312, "extra": 1}, "unknown keys"),
])
def test_a_bad_level_block_is_refused_with_its_field(tmp_path, block, message):
    from acula import sdk

    with pytest.raises(BundleError, match=message):
        sdk.load(make_toy_bundle(tmp_path / "b", level=block))


def test_export_writes_a_level_bundle_the_sdk_scores_blind_to_gain(tiny_student, tiny_corpus, tmp_path):
    pytest.importorskip("torch")
    from acula.export.cli import main as export_main

    from acula import sdk

    out = tmp_path / "level_bundle"
    assert export_main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(out),
                        "--no-tflite", "--level-shift"]) == 0
    model = sdk.load(out, precision="fp32")
    assert model.level == LevelShift() and model.bundle.manifest["level"]["gate"] == "relative"
    x = (0.2 * np.random.default_rng(5).standard_normal(16000 * 6)).astype(np.float32)  # far above any floor

    def embeddings(gain_db: float) -> np.ndarray:
        s = model.stream()
        return np.stack([w.embedding for w in s.accept(x * np.float32(10 ** (gain_db / 20)), 16000) + s.flush()])

    loud, quiet = embeddings(0.0), embeddings(-24.0)
    assert loud.shape[0] >= 5
    np.testing.assert_allclose(loud, quiet, atol=1e-4)
    with pytest.raises(ValueError, match="waveform graph"):
        export_main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "w"),
                     "--no-tflite", "--level-shift", "--waveform-graph"])


def test_the_web_model_carries_the_level_block(tmp_path):
    # the page's and the MCU kit's parity with the SDK on level bundles: tests/test_web.py, tests/test_mcu.py
    from acula.sdk.web.build import web_model

    from acula import sdk

    path = make_toy_bundle(tmp_path / "level", level=LevelShift().to_manifest())
    assert web_model(sdk.load(path))["level"] == {**LevelShift().to_manifest(), "floor": None, "low": None}
    assert web_model(sdk.load(make_toy_bundle(tmp_path / "plain")))["level"] is None


def test_keep_floor_leaves_digital_silence_where_no_gain_moves_it(tmp_path):
    from acula.sdk.level import floor_cell

    from acula import sdk

    kept = LevelShift().to_manifest() | {"keep_floor": True}
    models = {name: sdk.load(make_toy_bundle(tmp_path / name, window_frames=62, hop_frames=15, frontend=FLOOR160,
                                             level=block), precision="fp32")
              for name, block in (("moves", LevelShift().to_manifest()), ("kept", kept))}
    assert models["kept"].level.floor == floor_cell(FLOOR160) == pytest.approx((-160 + 38.7) / 36.8, abs=1e-4)
    x = _clip(8.0)
    x[16000 * 5 :] = 0.0  # digital silence, as ESC-10 clips end

    def embeddings(model, gain_db: float) -> np.ndarray:
        s = model.stream()
        return np.stack([w.embedding for w in s.accept(x * np.float32(10 ** (gain_db / 20)), 16000) + s.flush()])

    gaps = {name: float(np.abs(embeddings(m, 0.0) - embeddings(m, -24.0)).max()) for name, m in models.items()}
    assert gaps["kept"] < 1e-3 < 0.1 < gaps["moves"], gaps
    crops = np.full((1, 4, 64), np.float32(floor_cell(FLOOR160)))
    crops[0, 0, 0] = 0.5
    shifted = shift_crops(models["kept"].level, crops)
    assert shifted[0, 0, 0] == pytest.approx(LevelShift().ref) and shifted[0, 1, 1] == np.float32(floor_cell(FLOOR160))


def test_keep_floor_must_be_a_boolean_and_needs_the_shift(tmp_path, tiny_student, tiny_corpus):
    from acula.export.cli import main as export_main

    from acula import sdk

    with pytest.raises(BundleError, match="level.keep_floor"):
        sdk.load(make_toy_bundle(tmp_path / "b", level=LevelShift().to_manifest() | {"keep_floor": "yes"}))
    with pytest.raises(SystemExit):
        export_main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "x"),
                     "--level-keep-floor"])


def test_a_relative_floor_makes_near_silence_read_the_same_at_any_gain(tmp_path):
    # cells just above the -160 dB floor at full level reach it 24 dB lower: without a relative floor the shifted
    # window differs there (the dog bark of selection_rule_gain24_lowfloor.md); with one, both gains raise them
    # to the same cell
    from acula import sdk

    blocks = {"moves": LevelShift().to_manifest(), "range": LevelShift().to_manifest() | {"range_db": 130.0}}
    models = {name: sdk.load(make_toy_bundle(tmp_path / name, window_frames=62, hop_frames=15, frontend=FLOOR160,
                                             level=block), precision="fp32") for name, block in blocks.items()}
    ranged = models["range"].level
    assert ranged.range_db == 130.0 and ranged.low == pytest.approx(LevelShift().ref - 130.0 / 36.8)
    x = _clip(8.0)
    x[16000 * 5 :] *= np.float32(10 ** (-150 / 20))  # near-silence: about -150 dB under the clip, over the floor

    def embeddings(model, gain_db: float) -> np.ndarray:
        s = model.stream()
        return np.stack([w.embedding for w in s.accept(x * np.float32(10 ** (gain_db / 20)), 16000) + s.flush()])

    gaps = {name: float(np.abs(embeddings(m, 0.0) - embeddings(m, -24.0)).max()) for name, m in models.items()}
    assert gaps["range"] < 1e-3 < 0.05 < gaps["moves"], gaps
    crops = np.full((1, 4, 64), np.float32(-4.0))  # -2.6 once shifted, under the relative floor (-1.66)
    crops[0, 0, 0] = 0.5
    shifted = shift_crops(ranged, crops)
    assert shifted[0, 0, 0] == pytest.approx(LevelShift().ref) and shifted[0, 1, 1] == np.float32(ranged.low)


@pytest.mark.parametrize(("block", "message"), [
    ({"range_db": 0.5}, "level.range_db"), ({"range_db": "x"}, "level.range_db"),
    ({"range_db": 130.0, "keep_floor": True}, "level.keep_floor"),
])
def test_a_bad_relative_floor_is_refused(tmp_path, block, message):
    from acula import sdk

    with pytest.raises(BundleError, match=message):
        sdk.load(make_toy_bundle(tmp_path / "b", level=LevelShift().to_manifest() | block))
    with pytest.raises(ValueError, match="range_db"):
        LevelShift(range_db=-1.0)
    with pytest.raises(ValueError, match="for_front"):
        LevelShift(range_db=130.0).shift(np.zeros((4, 64), np.float32), np.zeros(4, np.float32))


def test_export_refuses_a_relative_floor_without_the_shift_or_with_keep_floor(tmp_path, tiny_student, tiny_corpus):
    from acula.export.cli import main as export_main

    base = ["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "x")]
    for extra in (["--level-range-db", "130"], ["--level-shift", "--level-range-db", "130", "--level-keep-floor"],
                  ["--level-shift", "--level-range-db", "0"]):
        with pytest.raises(SystemExit):
            export_main(base + extra)


@pytest.mark.parametrize("kind", ["plain", "range_db", "keep_floor"])
def test_a_batch_shifted_in_place_is_each_window_shifted_alone(kind):
    """LevelShift.shift_batch (a stream's and a pool's input buffer) gives, element for element, what
    LevelShift.shift gives one window at a time, whatever the floor."""
    level = {"plain": LevelShift(), "range_db": LevelShift(range_db=40.0),
             "keep_floor": LevelShift(floor=0.0)}[kind].for_front(FLOOR160)
    feats = np.stack(_windows(_clip(), None))
    floor = level.floor if level.floor is not None else float(feats.min())
    feats[:, :3] = floor  # digital silence on some cells
    windows = list(feats)
    peaks = [feats[max(0, k - 5) : k + 1].max(axis=(1, 2)) for k in range(len(windows))]
    out = np.full((len(windows) + 2, *feats.shape[1:]), np.nan, np.float32)
    got = level.shift_batch(windows, [float(p.max()) for p in peaks], out[: len(windows)])
    np.testing.assert_array_equal(got, np.stack([level.shift(w, p) for w, p in zip(windows, peaks, strict=True)]))
    assert np.isnan(out[len(windows):]).all()  # nothing written past the windows
    with pytest.raises(ValueError):
        level.shift_batch(windows, [0.0], out)
