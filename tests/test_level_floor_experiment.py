"""scripts/level_floor_experiment.py: the level-shifted windows are causal (a stream and a whole clip agree) and,
with a relative floor, blind to a gain change; without one, only the cells the absolute floor clips differ."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from acula.sdk import stream as st
from acula.sdk.frontend_config import FrontendConfig

from tests.test_level import _windows as level_windows

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "level_floor_experiment.py"


@pytest.fixture
def experiment(monkeypatch):
    from acula.aligner.systems import BundleSystem

    for name in ("reset", "append", "ready_raw", "tiled_raw"):  # restored after the test
        monkeypatch.setattr(st.Windower, name, getattr(st.Windower, name))
    monkeypatch.setattr(st.Stream, "__init__", st.Stream.__init__)
    monkeypatch.setattr(BundleSystem, "__init__", BundleSystem.__init__)
    from acula.sdk.quality import WindowGate

    monkeypatch.setattr(WindowGate, "__init__", WindowGate.__init__)
    from acula.sdk.level import LevelShift

    monkeypatch.setattr(LevelShift, "shift_batch", LevelShift.shift_batch)
    spec = importlib.util.spec_from_file_location("level_floor_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _windows(samples: np.ndarray, chunk: int | None = None) -> list[np.ndarray]:
    """The windows a plain (patched) Windower hands out on the default front end, streamed in ``chunk``s."""
    return level_windows(samples, None, chunk, FrontendConfig())


def _clip(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(16000 * 12) / 16000
    x = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) + 0.01 * rng.standard_normal(t.size)
    x[16000 * 6 : 16000 * 6 + 800] += 0.8 * rng.standard_normal(800)  # a loud burst the running level keeps
    return x.astype(np.float32)


def test_with_a_relative_floor_the_windows_ignore_gain_and_chunking(experiment):
    experiment.patch_windower(10.0, 90.0, 1.87)
    x = _clip()
    whole, chunked, quiet = _windows(x), _windows(x, 7777), _windows(x * np.float32(10 ** (-24 / 20)))
    assert len(whole) == len(chunked) == len(quiet) > 10
    for a, b, c in zip(whole, chunked, quiet, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, atol=1e-4)
    assert max(float(w.max()) for w in whole) == pytest.approx(1.87, abs=1e-5)  # the loudest window sits at ref
    assert min(float(w.min()) for w in whole) >= np.float32(1.87 - 90 / 36.8)


def test_without_a_floor_a_gain_change_moves_only_the_cells_the_absolute_floor_clips(experiment):
    experiment.patch_windower(10.0, 0.0, 1.87)
    x = (0.3 * np.random.default_rng(1).standard_normal(16000 * 4)).astype(np.float32)  # every bin far above
    x[16000 * 2 :] *= np.float32(3e-6)  # then 110 dB quieter: its bins near -95 dB, under -100 once 24 dB less
    loud, quiet = _windows(x), _windows(x * np.float32(10 ** (-24 / 20)))
    np.testing.assert_allclose(loud[0], quiet[0], atol=1e-4)  # the first window holds the loud part's peak
    assert max(float(np.abs(a - b).max()) for a, b in zip(loud, quiet, strict=True)) > 0.1


def test_the_results_files_name_the_experiment_as_their_command(experiment, monkeypatch):
    import acula.aligner.primary as primary

    seen = {}
    monkeypatch.setattr(primary, "main", lambda argv, command: seen.update(argv=argv, command=command) or 0)
    assert experiment.main(["--range-db", "90", "--", "--scored", "val"]) == 0
    assert seen == {"argv": ["--scored", "val"], "command": "python scripts/level_floor_experiment.py --range-db 90 --"}


def test_shifted_names_pick_the_systems_whose_streams_are_shifted(experiment):
    from acula.aligner.systems import BundleSystem

    experiment.patch_windower(10.0, 0.0, 1.87, only=["shifted"])
    experiment.patch_gate(only=["shifted"])
    x = _clip()
    plain, shifted = BundleSystem("as shipped"), BundleSystem("shifted")
    a, b = plain.model.stream(), shifted.model.stream()
    wa = [w.embedding for w in a.accept(x, 16000)]
    wb = [w.embedding for w in b.accept(x, 16000)]
    assert len(wa) == len(wb) > 10
    assert not a.windower.level_shifted and b.windower.level_shifted
    assert not a.gate.relative and b.gate.relative  # --relative-gate follows --shifted
    reference = plain.model.stream()
    reference.windower.level_shifted = True  # the patched windower's default when no system marked it
    assert max(float(np.abs(p - q).max()) for p, q in zip(wa, wb, strict=True)) > 1e-3
    np.testing.assert_array_equal(np.stack(wb), np.stack([w.embedding for w in reference.accept(x, 16000)]))


def test_the_command_line_quotes_names_with_spaces(experiment, monkeypatch):
    import acula.aligner.primary as primary

    seen = {}
    monkeypatch.setattr(primary, "main", lambda argv, command: seen.update(command=command) or 0)
    experiment.main(["--range-db", "0", "--shifted", "floor160 seed 0", "--", "--scored", "val"])
    assert seen["command"] == "python scripts/level_floor_experiment.py --range-db 0 --shifted 'floor160 seed 0' --"


def _gated(gain_db: float) -> list[tuple[str, ...]]:
    """The gate's problems for three 1 s windows: loud noise, then noise 40 dB under it, then digital silence."""
    from acula.sdk.quality import WindowGate

    rng = np.random.default_rng(2)
    x = np.concatenate([0.3 * rng.standard_normal(16000), 0.003 * rng.standard_normal(16000), np.zeros(16000)])
    gate = WindowGate()
    gate.append((x * 10 ** (gain_db / 20)).astype(np.float32))
    return [gate.problems(k * 16000, (k + 1) * 16000) for k in range(3)]


def test_the_relative_gate_judges_low_level_against_the_loudest_window_only(experiment):
    # as shipped, the quiet window (about -50 dBFS RMS) is scored at 0 dB and gated 20 dB lower
    assert _gated(0.0) == [(), (), ("silent",)] and _gated(-20.0) == [(), ("low_level",), ("silent",)]
    experiment.patch_gate()
    assert _gated(0.0) == _gated(-20.0) == [(), ("low_level",), ("silent",)]


def test_keep_floor_leaves_digital_silence_at_the_floor_whatever_the_gain(experiment):
    # a level bundle's windows (sdk.level) on the -160 dB front end: a clip that ends in digital zeros.  As the SDK
    # shifts them, the silent cells move with the gain; with --keep-floor they stay at the floor, so the windows agree
    from acula.sdk.level import LevelShift

    from tests.test_level import FLOOR160
    from tests.test_level import _windows as level_windows

    x = (0.05 * np.random.default_rng(6).standard_normal(16000 * 6)).astype(np.float32)
    x[16000 * 4 :] = 0.0
    quiet = x * np.float32(10 ** (-24 / 20))

    def gap() -> float:
        a, b = level_windows(x, LevelShift(), None, FLOOR160), level_windows(quiet, LevelShift(), None, FLOOR160)
        return max(float(np.abs(p - q).max()) for p, q in zip(a, b, strict=True))

    assert gap() > 0.5  # 24 dB is 0.65 normalised units: the silent cells' move
    experiment.patch_keep_floor(1e-16)
    assert gap() < 1e-3
