"""The firmware kit (export.mcu): its C front end against the SDK's, TFLite Micro against LiteRT, the kit files."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.bundle import read_bundle, sha256_of
from acula.sdk.frontend import LogMelFrontend

pytest.importorskip("ai_edge_litert", reason="the kit reads the int8 graph with LiteRT (the [tflite] extra)")

from acula.export.mcu import KIT_FORMAT, STATIC_SOURCES, inspect_graph, resolve_bundle, write_kit  # noqa: E402
from acula.export.mcu_graph import check_same_outputs, fold_pads  # noqa: E402
from acula.export.mcu_host import (  # noqa: E402
    GCC_FLAGS,
    TFLMBackend,
    build_frontend,
    c_frames,
    c_windows,
    quantise_windows,
    section_sizes,
)

HAS_TFLM = importlib.util.find_spec("tflite_micro") is not None
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
needs_tflm = pytest.mark.skipif(not HAS_TFLM, reason="tflite-micro is not installed (the [mcu] extra)")
BUNDLE = resolve_bundle("default")


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("kit")
    return out, write_kit(read_bundle(BUNDLE), BUNDLE, out, measure_arena=HAS_TFLM)


@pytest.fixture(scope="module")
def builds(kit: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("build")
    return {"float32": build_frontend(kit[0], root / "f32"),
            "double": build_frontend(kit[0], root / "f64", double=True)}


def test_export_writes_the_kit_tied_to_the_bundle(kit: tuple[Path, dict]) -> None:
    out, manifest = kit
    expected = {*STATIC_SOURCES, "acula_fe_tables.h", "acula_model_config.h", "acula_model_data.h",
                "acula_model_data.c", "README.md", "kit.json"}
    assert expected <= {p.name for p in out.iterdir()}
    on_disk = json.loads((out / "kit.json").read_text())
    assert on_disk["format"] == KIT_FORMAT and on_disk["format_version"] == 2
    assert on_disk["bundle"]["manifest_sha256"] == sha256_of(BUNDLE / "manifest.json")
    assert on_disk["bundle"]["model_sha256"] == sha256_of(BUNDLE / "student_int8.tflite")
    for name, info in on_disk["files"].items():
        assert sha256_of(out / name) == info["sha256"], name
    data = (out / "acula_model_data.c").read_text()
    assert data.count("0x") == on_disk["graph"]["bytes"]
    assert on_disk["graph"]["sha256"] in data
    assert "acula_fe_push" in (out / "README.md").read_text()


def test_kit_tables_are_generated_from_the_frontend_config(kit: tuple[Path, dict]) -> None:
    cfg = read_bundle(BUNDLE).frontend
    tables = (kit[0] / "acula_fe_tables.h").read_text()
    assert f"#define ACULA_N_FFT {cfg.n_fft}u" in tables and f"#define ACULA_N_MELS {cfg.n_mels}u" in tables
    assert cfg.to_json() in tables


def test_every_op_of_the_student_has_a_tflm_kernel(kit: tuple[Path, dict]) -> None:
    config = (kit[0] / "acula_model_config.h").read_text()
    for op in kit[1]["ops"]:
        assert op in config
    assert kit[1]["macs_per_window"] > 0


@needs_gcc
def test_c_frontend_compiles_with_strict_flags_and_reports_its_size(builds: dict) -> None:
    assert GCC_FLAGS == ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
    sizes = section_sizes(builds["float32"].obj)
    assert 0 < sizes["text"] < 16_000 and sizes["data"] == 0 and sizes["bss"] == 0  # no mutable globals


@needs_gcc
def test_c_frontend_matches_the_sdk_on_synthetic_audio(builds: dict, noise_16k: np.ndarray) -> None:
    ref = LogMelFrontend(read_bundle(BUNDLE).frontend)(noise_16k)
    c = c_frames(builds["float32"], noise_16k)
    assert c.shape == ref.shape
    assert np.abs(c - ref).max() <= 1e-3
    assert np.abs(c_frames(builds["double"], noise_16k) - ref).max() <= 1e-3


@needs_gcc
def test_c_frontend_matches_the_sdk_far_below_a_strong_low_tone(builds: dict) -> None:
    # 80 Hz with a 6 kHz tone 94 dB below it, as in heart audio upsampled from 2 kHz: a single float32 FFT's
    # rounding noise gives 2e-2 in the upper bands; the second-difference pass gives 4e-5
    t = np.arange(32000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 80 * t) + 1e-5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    assert np.abs(c_frames(builds["float32"], x) - LogMelFrontend(read_bundle(BUNDLE).frontend)(x)).max() <= 1e-3


@needs_gcc
def test_c_frontend_windows_are_the_quantised_sdk_windows(builds: dict, noise_16k: np.ndarray) -> None:
    from acula.sdk.level import bundle_level, shift_cut_windows

    bundle = read_bundle(BUNDLE)
    info = inspect_graph(bundle.files["student_int8.tflite"])
    frames = LogMelFrontend(bundle.frontend)(noise_16k)  # 92 frames: windows at frames 0, 15 and 30 (62, hop 15)
    cut = np.stack([frames[0:62], frames[15:77], frames[30:92]])
    level = bundle_level(bundle)  # a level bundle's kit shifts each window by its running level, as the SDK does
    ref = quantise_windows(cut if level is None else shift_cut_windows(level, frames, cut, 15), info)
    c = c_windows(builds["float32"], noise_16k)
    assert c.shape == ref.shape
    assert np.abs(c.astype(int) - ref).max() <= 1 and np.mean(c == ref) > 0.999  # rounding ties at most
    short = c_windows(builds["float32"], noise_16k[:16000])  # 30 frames: tiled into one window, as sdk.Stream
    assert short.shape[0] == 1
    np.testing.assert_array_equal(short[0, 30:60], short[0, :30])


@needs_tflm
def test_tflm_matches_litert_on_int8_windows() -> None:
    from acula.benchmarks.mcu import tflm_vs_litert

    tflite = read_bundle(BUNDLE).files["student_int8.tflite"]
    info = inspect_graph(tflite)
    windows = quantise_windows(np.random.default_rng(0).standard_normal((4, 62, 64)), info)
    result = tflm_vs_litert(fold_pads(tflite), tflite, windows)
    assert result["cosine_min"] >= 0.999


@needs_tflm
def test_folded_graph_gives_the_bundle_graphs_outputs_bit_for_bit() -> None:
    tflite = read_bundle(BUNDLE).files["student_int8.tflite"]
    folded = fold_pads(tflite)
    ops = inspect_graph(folded).op_names
    assert "GATHER" in ops and [op.name for op in inspect_graph(folded).ops].count("PAD") == 3  # 4 in the bundle's
    windows = quantise_windows(np.random.default_rng(1).standard_normal((3, 62, 64)), inspect_graph(tflite))
    for a, b in zip(TFLMBackend(tflite)(windows), TFLMBackend(folded)(windows), strict=True):
        np.testing.assert_array_equal(a, b)
    check_same_outputs(tflite, folded, 62)  # LiteRT, also what write_kit runs


def test_check_same_outputs_refuses_a_different_graph() -> None:
    from ai_edge_litert.interpreter import Interpreter

    tflite = read_bundle(BUNDLE).files["student_int8.tflite"]
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    (kernel,) = [t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == (1, 3, 3, 32)][:1]
    at = tflite.find(interpreter.get_tensor(kernel["index"]).tobytes())  # the first convolution's weights
    assert at > 0
    changed = bytearray(tflite)
    changed[at + 4] ^= 0x40
    with pytest.raises(ValueError, match="differ"):
        check_same_outputs(tflite, bytes(changed), 62)


@needs_tflm
def test_kit_meets_the_arena_and_flash_goals(kit: tuple[Path, dict]) -> None:
    manifest = kit[1]
    assert manifest["tflm_arena_bytes_measured"] <= 64 * 1024  # 85,611 B for the bundle's graph as converted
    assert manifest["arena_bytes_reserved"] <= 64 * 1024  # with 4 KiB for CMSIS-NN scratch
    assert manifest["graph"]["bytes"] <= 256 * 1024


@pytest.mark.shared_data
@needs_gcc
def test_c_frontend_matches_the_sdk_on_real_recordings(builds: dict, data_dir: Path) -> None:
    from acula.benchmarks.mcu import PARITY_GROUPS, frontend_parity, pick_files

    groups = pick_files(data_dir)
    rows = frontend_parity(builds, {g: groups[g][:2] for g in PARITY_GROUPS}, read_bundle(BUNDLE).frontend)
    assert {row["group"] for row in rows} == {"synthetic", *PARITY_GROUPS}
    for row in rows:
        # double: the SDK's float64 engine; float32: the SDK's float32 engine, also in the near-empty upper bands
        # of heart and lung audio upsampled from 2 and 8 kHz (measured ~1e-5 there), at every stored sample rate
        assert row["c_double_vs_numba"] <= 1e-3, row
        assert row["c_float32_vs_numpy"] <= 1e-3, row


@pytest.mark.shared_data
@needs_gcc
@needs_tflm
def test_c_frontend_and_tflm_agree_with_the_sdk_on_coughs_and_non_coughs(builds: dict, data_dir: Path) -> None:
    from acula.benchmarks.mcu import end_to_end, pick_files

    from acula import sdk

    groups = pick_files(data_dir)
    tflite = read_bundle(BUNDLE).files["student_int8.tflite"]
    # the SDK on the same int8 graph (LiteRT): onnxruntime's int8 kernels saturate on CPUs without VNNI
    model = sdk.load(BUNDLE, backend="tflite", precision="int8")
    rows = end_to_end(builds["float32"], fold_pads(tflite), model, groups)
    assert len(rows) == len(groups["e2e_cough"]) + len(groups["e2e_noncough"])
    assert min(r["cosine_min"] for r in rows) >= 0.99
    # a recording may decide differently only through a window whose two probabilities straddle a threshold
    # (the inputs' rounding ties), and only one recording may
    apart = [r for r in rows if not r["agree"]]
    assert all(r["straddles_threshold"] for r in apart) and len(apart) <= 1, apart
    # the cough logits of the two int8 paths: within two steps of the graph's int8 output (0.136 logit a step on the
    # default of 2026-12-06, whose largest difference is 0.271: two steps, 0.065 in probability where the sigmoid is
    # steep), under the int8 graph's own error against fp32 (99th percentile 0.38-0.52 logit, int8_decisions)
    assert max(r["cough_logit_max_abs_diff"] or 0.0 for r in rows) <= 0.3


@needs_tflm
def test_tflm_backend_returns_dequantised_outputs() -> None:
    tflite = read_bundle(BUNDLE).files["student_int8.tflite"]
    emb, heads = TFLMBackend(tflite)(np.zeros((2, 62, 64), np.int8))
    assert emb.shape == (2, 512) and heads.shape == (2, 1) and emb.dtype == np.float32


def test_acula_export_mcu_command_writes_a_kit(tmp_path: Path) -> None:
    from acula.sdk.cli import COMMANDS, main

    assert COMMANDS["export-mcu"][0] == "acula.export.mcu"
    assert main(["export-mcu", "--bundle", "default", "--out", str(tmp_path), "--no-arena"]) == 0
    assert json.loads((tmp_path / "kit.json").read_text())["tflm_arena_bytes_measured"] is None


@needs_gcc
@pytest.mark.parametrize("mode", ["shift", "keep-floor", "range"])
def test_a_level_kit_shifts_each_window_as_the_sdk_does(tmp_path: Path, mode: str) -> None:
    # the default bundle's graph with a level block (sdk.level; 100 frames of history, so the running level
    # forgets a loud start within the 8 s clip): the C front end's int8 windows are the SDK's shifted windows,
    # quantised, to rounding ties; the tiled window of a short clip is shifted by the level of all its frames
    import dataclasses

    from acula.aligner.data import windows
    from acula.sdk.level import LevelShift, floor_cell, shift_cut_windows

    bundle = read_bundle(BUNDLE)
    keep_floor = mode == "keep-floor"
    # range: a relative floor 60 dB under ref, high enough to raise the quiet stretch's cells
    level = LevelShift(history_frames=100, floor=floor_cell(bundle.frontend) if keep_floor else None,
                       range_db=60.0 if mode == "range" else None).for_front(bundle.frontend)
    bundle = dataclasses.replace(bundle, manifest={**bundle.manifest, "level": level.to_manifest()})
    kit = write_kit(bundle, BUNDLE, tmp_path / "kit", measure_arena=False)
    assert kit["level"] == level.to_manifest()
    tables = (tmp_path / "kit" / "acula_fe_tables.h").read_text()
    assert "#define ACULA_LEVEL_HISTORY 100u" in tables and ("ACULA_LEVEL_FLOOR" in tables) == keep_floor
    assert ("ACULA_LEVEL_LOW" in tables) == (mode == "range")
    build = build_frontend(tmp_path / "kit", tmp_path / "build")
    info = inspect_graph(bundle.files["student_int8.tflite"])
    rng = np.random.default_rng(8)
    x = (0.01 * rng.standard_normal(16000 * 8)).astype(np.float32)
    x[:16000] *= 30  # a loud first second: the level of the windows that still remember it
    x[16000 * 6 : 16000 * 7] = 0.0  # digital silence: with keep_floor it stays at the floor cell
    for samples in (x, x[:12000]):
        frames = LogMelFrontend(bundle.frontend)(samples)
        ref = quantise_windows(shift_cut_windows(level, frames, windows(frames, 62, 15), 15), info)
        c = c_windows(build, samples)
        assert c.shape == ref.shape
        assert np.abs(c.astype(int) - ref).max() <= 1 and np.mean(c == ref) > 0.999
        if mode == "range" and samples is x:  # the relative floor raised cells: without it the windows differ
            bare = quantise_windows(shift_cut_windows(dataclasses.replace(level, range_db=None, low=None), frames,
                                                      windows(frames, 62, 15), 15), info)
            assert np.mean(c != bare) > 0.01
    plain = quantise_windows(windows(LogMelFrontend(bundle.frontend)(x), 62, 15), info)
    assert np.mean(c_windows(build, x) == plain) < 0.5  # the shift moved the windows
