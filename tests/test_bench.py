"""acula bench on the packaged default bundle with a short budget: runs and writes valid JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.cli import main
from acula.sdk.model import available_models


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_acula_bench_prints_a_table_and_valid_json(tmp_path: Path, capsys):
    out = tmp_path / "a.json"
    assert main(["bench", "--seconds", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {(r["backend"], r["precision"]) for r in report["runs"]} >= {("onnxruntime", "int8"),
                                                                         ("onnxruntime", "fp32")}
    assert all(r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in report["runs"])
    assert report["peak_rss_mb"] > 10 and report["cold_start_s"] > 0 and report["device"]["cores"] >= 1
    assert "| onnxruntime | int8 |" in capsys.readouterr().out
    assert main(["bench", "compare", str(out), str(out)]) == 0
    assert "p50_ms 1.00" in capsys.readouterr().out


def test_multiply_adds_are_counted_per_window_with_groups_and_a_symbolic_batch(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from acula.benchmarks.student_compute import count_macs

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, padding=1, groups=4),
                              torch.nn.Conv2d(4, 8, 1), torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 5))
    path = tmp_path / "net.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(1, 1, 8, 8),), str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}}, opset_version=17, dynamo=False)
    # 64 positions: 4 x 9 (full 3x3), 4 x 9 (depthwise: one input channel each), 8 x 4 (1x1); then 5 x 512
    assert count_macs(path.read_bytes()) == 64 * (4 * 9 + 4 * 9 + 8 * 4) + 5 * 512


RASPBERRY_PI_5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid asimdhp asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b

processor\t: 1
Features\t: fp asimd evtstrm crc32 cpuid asimdhp asimddp

Model\t: Raspberry Pi 5 Model B Rev 1.0
"""
MASKED_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16
"""


def test_fingerprint_names_the_cpu_model_and_its_vector_extensions():
    from acula.sdk.bench import cpu_description, fingerprint, machine_line

    assert cpu_description(RASPBERRY_PI_5) == ("Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76)",
                                              ["neon", "fp16", "dotprod"])
    cpu, extensions = cpu_description(MASKED_EPYC)
    assert cpu == "AMD EPYC (family 25 model 17 stepping 1)"
    assert extensions == ["sse4.2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    here = fingerprint(1)
    assert here["cpu"] and isinstance(here["vector_extensions"], list)
    assert machine_line().startswith(here["cpu"] + " [")


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_a_baseline_checkout_is_timed_in_fresh_processes_beside_this_one():
    """``sdk_latency --baseline DIR``: one fresh process per checkout a round; against itself the ratio is ~1."""
    import argparse

    from acula.benchmarks.sdk_latency import ROOT, child_ms_per_audio_s

    args = argparse.Namespace(bundle="default", backend="onnxruntime", precision="fp32", seconds=3.0)
    a, b = (child_ms_per_audio_s(str(ROOT), args) for _ in range(2))
    assert a > 0 and b > 0 and 0.2 < a / b < 5.0


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_measure_keeps_each_hops_wall_and_thread_cpu_time():
    """Per-hop CPU time of the thread sits beside the wall time: never above it by more than the clocks'
    resolution, and one value per hop."""
    import time

    from acula.sdk.bench import LAST_CPU_MS, LAST_LATENCIES_MS, measure

    if time.get_clock_info("thread_time").resolution > 1e-5:
        pytest.skip("this system's thread CPU clock is too coarse to time a hop")
    res = measure("default", "onnxruntime", "fp32", 1, 3.0)
    wall, cpu = LAST_LATENCIES_MS[("onnxruntime", "fp32")], LAST_CPU_MS[("onnxruntime", "fp32")]
    assert wall.shape == cpu.shape and wall.size == -(-48000 // (res["hop_audio_ms"] * 16))
    assert np.all(cpu > 0) and np.all(cpu <= wall + 0.05)


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_hop_parts_times_every_stage_of_a_hop():
    from acula.benchmarks.hop_parts import FLOOR, STAGES, measure

    parts = measure("default", "onnxruntime", "fp32", 4.0)
    assert set(parts) == {*STAGES, "total", *FLOOR}
    assert all(parts[k] > 0 for k in (*STAGES, *FLOOR))
    assert parts["total"] == pytest.approx(sum(parts[k] for k in STAGES))
    assert parts["runtime"] > parts["windows"]  # a model call costs more than handing out a window view
    # the FFT is one part of the log-mel stage, and the model alone is timed on the same model the hop calls
    assert parts["fft"] < parts["log-mel"] and parts["model only"] < parts["total"]
    yamnet = Path(os.environ.get("ACULA_WEIGHTS", "../shared/weights")) / "yamnet.tflite"
    if yamnet.is_file():  # YAMNet timed on the same audio in the same process, per hop
        with_peer = measure("default", "onnxruntime", "fp32", 4.0, str(yamnet))
        assert with_peer["yamnet"] > with_peer["runtime"] > 0


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_stream_pool_measures_each_chunk_size_against_the_same_windows_alone(tmp_path: Path, monkeypatch):
    """``benchmarks.stream_pool --chunk-hops``: one row per streams x chunk; a stream fed two hops a step yields two
    windows a step, and model-only times the same windows (one per call for a lone stream, as its ``accept`` runs
    them; the pool's batches for many)."""
    import json

    import acula.benchmarks.stream_pool as sp

    from acula import sdk

    calls: list[int] = []
    model = sdk.load("default", "onnxruntime", "fp32")
    real = type(model).run_batch
    monkeypatch.setattr(type(model), "run_batch", lambda self, w: (calls.append(w.shape[0]), real(self, w))[1])
    sp.model_only_ms_per_audio_s(model, 1, 0.48, 32, repeats=1, chunk_hops=2)
    assert calls == [1, 1, 1]  # one warm-up per batch size, then the two windows one at a time
    calls.clear()
    sp.model_only_ms_per_audio_s(model, 3, 0.48, 4, repeats=1, chunk_hops=2)
    assert calls == [4, 2, 4, 2]  # warm-up, then six windows in the pool's batches of at most 4
    monkeypatch.undo()
    from acula.benchmarks._util import THREAD_VARS

    for var in THREAD_VARS:  # else the command re-executes itself single-threaded, in place of this test process
        monkeypatch.setenv(var, "1")
    out = tmp_path / "sp.json"
    assert sp.main(["--streams", "1", "2", "--chunk-hops", "1", "2", "--steps", "1", "--repeats", "1",
                    "--precision", "fp32", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [(r["streams"], r["chunk_hops"]) for r in res["rows"]] == [(1, 1), (2, 1), (1, 2), (2, 2)]
    for r in res["rows"]:
        assert r["steps"] * r["streams"] * r["chunk_hops"] >= sp.MIN_STREAM_HOPS
        assert r["pool"]["over_model_only"] > 1 and r["separate"]["cpu_ms_per_audio_s"] > 0


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_capture_cpu_times_both_ways_of_feeding_and_checks_they_agree(tmp_path: Path, monkeypatch):
    """``benchmarks.capture_cpu``: per rate, the consumer's CPU fed block by block and coalesced, the hop-chunk
    reference, and whether both ways gave the same windows (the command fails if they did not)."""
    import json

    import acula.benchmarks.capture_cpu as cc
    from acula.benchmarks._util import THREAD_VARS

    for var in THREAD_VARS:  # else the command re-executes itself single-threaded, in place of this test process
        monkeypatch.setenv(var, "1")
    out = tmp_path / "cc.json"
    root = Path(cc.__file__).resolve().parents[1]
    assert cc.main(["--seconds", "4", "--rounds", "1", "--rates", "16000", "22050", "--precision", "fp32",
                    "--baseline", str(root), "--baseline-name", "itself", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["rate_hz"] for r in res["rows"]] == [16000, 22050] and res["baseline"] == "itself"
    assert all(v > 0 for r in res["rows"] for v in r["checkouts_ms_per_audio_s"].values())
    for r in res["rows"]:
        t = r["cpu_ms_per_audio_s"]
        assert r["same_windows"] and r["windows"] > 0 and t["per block"] > 0 and t["coalesced"] > 0
        assert t["per block, process"] >= 0.99 * t["per block"]  # the process includes the consumer thread


def test_resampler_benchmark_times_a_baseline_and_checks_identical_outputs(tmp_path: Path, monkeypatch):
    """``benchmarks.resampler --baseline``: both resamplers timed on the same chunks, and the command fails unless
    their outputs are identical (here the baseline is this checkout itself)."""
    import json

    import acula.benchmarks.resampler as rs
    from acula.benchmarks._util import THREAD_VARS

    for var in THREAD_VARS:  # else the command re-executes itself single-threaded, in place of this test process
        monkeypatch.setenv(var, "1")
    root = Path(rs.__file__).resolve().parents[1]
    out = tmp_path / "rs.json"
    assert rs.main(["--rates", "8000", "44100", "--chunks-s", "0.1", "--seconds", "1", "--rounds", "1",
                    "--baseline", str(root), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["rate_hz"], r["chunk_s"], r["identical"]) for r in rows] == [(8000, 0.1, True), (44100, 0.1, True)]
    assert all(r["ms_per_audio_s"]["baseline"] > 0 and r["ms_per_audio_s"]["this checkout"] > 0 for r in rows)
