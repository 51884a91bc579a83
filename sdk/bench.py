"""``acula bench``: latency, real-time factor, cold start, memory and sizes on this device.

    acula bench [--bundle default] [--threads 1] [--pin-cpu 0] [--seconds 30] [--yamnet PATH] [--json] [--out FILE]
    acula bench compare A.json B.json

Measures every installed backend and precision of the bundle (onnxruntime and
TFLite, fp32 and int8), prints a device fingerprint and a markdown table, and
writes JSON.  To approximate a phone-class core use ``--threads 1 --pin-cpu 0``.
On a Raspberry Pi or in Termux: ``pip install acula-edge[tflite]`` then ``acula bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: per-hop latencies of the latest measurement per (backend, precision), for histograms
LAST_LATENCIES_MS: dict[tuple[str, str], np.ndarray] = {}
#: the same hops' CPU time of this thread (what a hop costs without the time a shared machine takes the core away)
LAST_CPU_MS: dict[tuple[str, str], np.ndarray] = {}


#: /proc/cpuinfo flags (x86 "flags", Arm "Features") that decide which kernels a runtime can use -> the name
#: reported; Arm's "asimd" is NEON
VECTOR_FLAGS = {"sse4_2": "sse4.2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "avx512f": "avx512f",
                "avx512bw": "avx512bw", "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni",
                "avx512_bf16": "avx512_bf16", "amx_tile": "amx", "amx_int8": "amx_int8", "amx_bf16": "amx_bf16",
                "neon": "neon", "asimd": "neon", "asimdhp": "fp16", "asimddp": "dotprod", "i8mm": "i8mm",
                "bf16": "bf16", "sve": "sve", "sve2": "sve2", "sme": "sme"}
#: Arm "CPU part" of implementer 0x41 -> core name (the kernel gives Arm cores no model name)
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd49": "Neoverse-N2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3", "0xd4f": "Neoverse-V2"}


def _sysctl(*names: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", *names], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_description(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """(CPU model, vector extensions present), from ``/proc/cpuinfo`` (or the text given), sysctl on macOS.

    Virtual machines often mask the model name ("AMD EPYC"), so the x86 family / model / stepping, which name
    the generation, follow it; Arm cores are named from their part number.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    first: dict[str, str] = {}
    for line in cpuinfo.splitlines():  # the first processor's values; Arm puts "Hardware" after the last one
        key, _, value = line.partition(":")
        first.setdefault(key.strip().lower(), value.strip())
    words = (first.get("flags") or first.get("features") or "").split()
    if not words and platform.system() == "Darwin":
        words = _sysctl("machdep.cpu.features", "machdep.cpu.leaf7_features").lower().replace(".", "_").split()
        if platform.machine() == "arm64":
            words += ["asimd", *(f for f in ("asimddp", "i8mm", "bf16", "sme") if _sysctl(
                f"hw.optional.arm.FEAT_{f.upper().replace('ASIMDDP', 'DotProd')}").strip() == "1")]
    extensions = list(dict.fromkeys(VECTOR_FLAGS[w] for w in words if w in VECTOR_FLAGS))
    model = first.get("model name") or first.get("cpu model") or _sysctl("machdep.cpu.brand_string").strip()
    if first.get("cpu family") and first.get("model"):
        detail = f"family {first['cpu family']} model {first['model']}" + (
            f" stepping {first['stepping']}" if first.get("stepping") else "")
        model = f"{model} ({detail})" if model else detail
    elif first.get("cpu part"):
        part = first["cpu part"]
        core = ARM_PARTS.get(part, f"part {part}") if first.get("cpu implementer") == "0x41" else f"part {part}"
        model = f"{model or first.get('model') or first.get('hardware') or 'Arm'} ({core})"
    return model or platform.processor() or platform.machine(), extensions


def fingerprint(threads: int) -> dict[str, Any]:
    cpu, extensions = cpu_description()
    versions = {}
    for mod in ("numpy", "numba", "onnxruntime", "ai_edge_litert", "tflite_runtime"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            continue
    return {"cpu": cpu, "vector_extensions": extensions, "cores": os.cpu_count(), "arch": platform.machine(),
            "os": platform.platform(), "python": platform.python_version(), "threads": threads, "runtimes": versions}


def machine_line() -> str:
    """One line naming the CPU model, its vector extensions, core count and Python, for benchmark reports."""
    cpu, extensions = cpu_description()
    return (f"{cpu} [{' '.join(extensions) or 'no vector extensions found'}], {os.cpu_count()} cores "
            f"({platform.machine()}), Python {platform.python_version()}")


def time_hops(model: Any, samples: np.ndarray, cpu_ms: list[float] | None = None) -> tuple[int, float, np.ndarray]:
    """Stream 16 kHz ``samples`` into a fresh stream of ``model`` one hop at a time, after a warm-up on 3 s of
    silence (first inference, caches; then reset).  Returns (hop in samples, warm-up ms, per-hop ms of wall
    time); ``cpu_ms``, when given, receives each hop's CPU time of this thread in ms."""
    stream = model.stream()
    hop = model.hop_frames * model.frontend.config.hop_length
    t0 = time.perf_counter()
    stream.accept(np.zeros(16000 * 3, dtype=np.float32), 16000)
    warm_up_ms = (time.perf_counter() - t0) * 1e3
    stream.reset()
    lat = []
    for i in range(0, samples.size, hop):
        c0, t0 = (time.thread_time() if cpu_ms is not None else 0.0), time.perf_counter()
        stream.accept(samples[i : i + hop], 16000)
        lat.append(time.perf_counter() - t0)
        if cpu_ms is not None:
            cpu_ms.append((time.thread_time() - c0) * 1e3)
    return hop, warm_up_ms, np.asarray(lat) * 1e3


def measure(bundle: str, backend: str, precision: str, threads: int, seconds: float) -> dict[str, Any]:
    from acula.sdk.model import load
    from acula.sdk.synth import synth_recording

    model = load(bundle, backend, precision, n_threads=threads)
    name, info = model.bundle.model_file(backend, precision)
    x, _ = synth_recording(seconds, seed=4)
    cpu: list[float] = []
    hop, _, ms = time_hops(model, x, cpu)
    LAST_LATENCIES_MS[(backend, precision)] = ms
    LAST_CPU_MS[(backend, precision)] = np.asarray(cpu)
    return {"backend": backend, "precision": precision, "model_file": name, "model_kb": info["bytes"] / 1024,
            "hop_audio_ms": hop / 16, "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "ms_per_audio_s": float(ms.sum() / seconds), "real_time_factor": float(ms.sum() / 1e3 / seconds)}


def cold_start(bundle: str, backend: str, precision: str) -> tuple[float, float]:
    """(first start, warm-cache start) in seconds: process start to the first screening result."""
    code = (f"import numpy as np, acula.sdk as sdk; m = sdk.load({bundle!r}, {backend!r}, {precision!r}); "
            "m.screen(np.zeros(32000, dtype=np.float32) + 0.01, 16000)")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return times[0], min(times[1:])


def peak_rss_mb(bundle: str) -> float:
    """Peak resident memory of `acula screen` on a 30 s recording."""
    import tempfile

    import soundfile as sf
    from acula.sdk.synth import synth_recording

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "r.wav"
        sf.write(wav, synth_recording(30.0)[0], 16000)
        # VmHWM belongs to this process image; ru_maxrss would carry over the (larger) parent's peak,
        # which Linux keeps across fork and execve
        code = ("import resource, sys; from acula.sdk.cli import main; main(sys.argv[1:]); hwm = [l for l in "
                "open('/proc/self/status').read().splitlines() if l.startswith('VmHWM')] if "
                "sys.platform == 'linux' else []; print(int(hwm[0].split()[1]) if hwm else "
                "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, "screen", "--bundle", bundle, "--json", str(wav)],
                             check=True, capture_output=True, text=True).stdout.splitlines()[-1]
    return int(out) / 1024


def yamnet_ms_per_audio_s(path: str, seconds: float, threads: int) -> float | None:
    from acula.sdk.synth import synth_recording
    from acula.sdk.yamnet import YAMNet

    if not Path(path).is_file():
        return None
    yam = YAMNet(path, max_patches=None, check_sha256=False, n_threads=threads, embedding=False)
    x, _ = synth_recording(seconds, seed=4)
    patches = yam.patches(x)
    yam.invoke(patches[0])
    t0 = time.perf_counter()
    for p in patches:
        yam.invoke(p)
    return (time.perf_counter() - t0) * 1e3 / seconds


def to_markdown(report: dict[str, Any]) -> str:
    fp = report["device"]
    lines = [f"Device: {fp['cpu']} [{' '.join(fp.get('vector_extensions', []))}], {fp['cores']} cores "
             f"({fp['arch']}), {fp['os']}, Python {fp['python']}, "
             f"{fp['threads']} thread(s); runtimes {fp['runtimes']}", "",
             "| backend | precision | model KB | p50 ms | p95 ms | p99 ms | max ms | ms per s audio | vs YAMNet |",
             "|---|---|---|---|---|---|---|---|---|"]
    yam = report.get("yamnet_ms_per_audio_s")
    for r in report["runs"]:
        ratio = f"{r['ms_per_audio_s'] / yam:.3f}x" if yam else "n/a"
        lines.append(f"| {r['backend']} | {r['precision']} | {r['model_kb']:.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['ms_per_audio_s']:.2f} | "
                     f"{ratio} |")
    lines += ["", f"Hop: {report['runs'][0]['hop_audio_ms']:.0f} ms of audio. YAMNet TFLite: "
                  f"{yam:.2f} ms per s of audio." if yam else "", f"Cold start (warm caches): "
              f"{report['cold_start_s']:.2f} s; first start (numba compile): {report['first_start_s']:.2f} s; "
              f"peak RSS of acula screen: {report['peak_rss_mb']:.0f} MB; bundle {report['bundle_kb']:.0f} KB."]
    return "\n".join(lines)


#: per-run keys compared, and what ``python -m acula.benchmarks.sdk_latency`` calls them in its flat report
RUN_KEYS = {"p50_ms": "hop_p50_ms", "p99_ms": "hop_p99_ms", "ms_per_audio_s": "ms_per_audio_s"}
REPORT_KEYS = ("cold_start_s", "peak_rss_mb")


def load_report(path: str) -> dict[str, Any]:
    """A latency report as ``{"runs": [...], "cold_start_s": ..., ...}``: what ``acula bench --out`` writes, or
    the flat one-run report of ``python -m acula.benchmarks.sdk_latency``.  ValueError with a sentence otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON report: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return data
    if isinstance(data, dict) and {"backend", "precision"} <= set(data) and any(k in data for k in RUN_KEYS.values()):
        run = {"backend": data["backend"], "precision": data["precision"],
               **{k: data[flat] for k, flat in RUN_KEYS.items() if flat in data}}
        return {**{k: data[k] for k in REPORT_KEYS if k in data}, "runs": [run]}
    raise ValueError(f"{path} is not a latency report: expected 'runs' (acula bench --out) or 'backend', "
                     "'precision' and hop latencies (python -m acula.benchmarks.sdk_latency)")


def _ratio(b: Any, a: Any) -> str:
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)) and a
    return f"{b / a:.2f}" if ok else "n/a"


def compare(a_path: str, b_path: str) -> int:
    try:
        a, b = load_report(a_path), load_report(b_path)
    except ValueError as exc:
        print(f"acula bench compare: {exc}", file=sys.stderr)
        return 1
    print(f"ratios B/A ({b_path} over {a_path}); < 1 means B is faster")
    matched = 0
    for ra in a["runs"]:
        rb = next((r for r in b["runs"] if (r.get("backend"), r.get("precision")) ==
                   (ra.get("backend"), ra.get("precision"))), None)
        if rb is None:
            continue
        matched += 1
        cells = ", ".join(f"{k} {_ratio(rb.get(k), ra.get(k))}" for k in RUN_KEYS)
        print(f"  {ra.get('backend')} {ra.get('precision')}: {cells}")
    if not matched:
        print("  no backend and precision measured in both", file=sys.stderr)
    for k in REPORT_KEYS:
        print(f"  {k}: {_ratio(b.get(k), a.get(k))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default", help="packaged bundle name, directory or zip")
    parser.add_argument("--threads", type=int, default=1, help="inference threads")
    parser.add_argument("--pin-cpu", type=int, help="pin the process to this CPU (Linux)")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per measurement")
    parser.add_argument("--yamnet", default=os.environ.get("ACULA_WEIGHTS", "../shared/weights") + "/yamnet.tflite",
                        help="YAMNet TFLite file timed in the same run as the reference")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout (no table)")
    parser.add_argument("--out", help="also write the JSON report to this file (for 'acula bench compare')")
    sub = parser.add_subparsers(dest="cmd", metavar="{compare}")
    cmp = sub.add_parser("compare", help="ratios of two reports (B over A): acula bench --json, or "
                                         "python -m acula.benchmarks.sdk_latency --json",
                         description="Ratios B/A of per-hop latency, cost per second of audio, cold start and "
                                     "peak memory of two latency reports.")
    cmp.add_argument("a", help="baseline report (JSON)")
    cmp.add_argument("b", help="report to compare with it (JSON)")
    args = parser.parse_args(argv)
    if args.cmd == "compare":
        return compare(args.a, args.b)
    if args.pin_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.pin_cpu})
    from acula.sdk.bundle import BundleError, read_bundle
    from acula.sdk.model import _resolve
    from acula.sdk.runtimes import BackendUnavailable

    try:
        bundle = read_bundle(_resolve(args.bundle))
    except BundleError as exc:
        print(f"acula bench: {exc}", file=sys.stderr)
        return 1
    runs = []
    for name, info in bundle.manifest["files"].items():
        if info.get("role") != "student":
            continue
        try:
            runs.append(measure(args.bundle, info["backend"], info["precision"], args.threads, args.seconds))
        except BackendUnavailable as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    if not runs:
        print("acula bench: no model file of the bundle can run here (see the skipped files above)", file=sys.stderr)
        return 1
    first, warm = cold_start(args.bundle, runs[0]["backend"], runs[0]["precision"])
    report = {"device": fingerprint(args.threads), "bundle": bundle.source, "runs": runs,
              "bundle_kb": sum(i["bytes"] for i in bundle.manifest["files"].values()) / 1024,
              "cold_start_s": warm, "first_start_s": first, "peak_rss_mb": peak_rss_mb(args.bundle),
              "yamnet_ms_per_audio_s": yamnet_ms_per_audio_s(args.yamnet, args.seconds, args.threads)}
    print(json.dumps(report) if args.json else to_markdown(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0



