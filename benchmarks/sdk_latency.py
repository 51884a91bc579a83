"""SDK latency on one thread: per-hop compute, cost per second of audio against YAMNet, cold start, peak RSS.

    python -m benchmarks.sdk_latency [--bundle default] [--backend onnxruntime] [--precision int8]
                                     [--yamnet ../shared/weights/yamnet.tflite] [--json OUT]

Targets (issue 6): per-hop p99 <= 5 ms; compute per second of audio <= 0.25x YAMNet's
in the same run; cold start (process start to first result, warm caches) <= 1 s;
peak RSS of `acula screen` <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._util import ensure_single_thread, machine_line

TARGETS = {"hop_p99_ms": 5.0, "ratio_to_yamnet": 0.25, "cold_start_s": 1.0, "peak_rss_mb": 150.0}


def yamnet_ms_per_audio_s(path: str, samples: np.ndarray) -> float:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    it = Interpreter(path, num_threads=1)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    patches = [samples[s : s + 15600] for s in range(0, samples.size - 15600 + 1, 7680)]
    it.set_tensor(idx, patches[0])
    it.invoke()
    t0 = time.perf_counter()
    for p in patches:
        it.set_tensor(idx, p)
        it.invoke()
    return (time.perf_counter() - t0) * 1e3 / (samples.size / 16000)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ensure_single_thread("benchmarks.sdk_latency", argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sdk_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--yamnet", default=os.environ.get("ACULA_WEIGHTS", "../shared/weights") + "/yamnet.tflite")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import sdk
    from sdk.synth import synth_recording

    model = sdk.load(args.bundle, args.backend, args.precision, n_threads=1)
    x, _ = synth_recording(args.seconds, seed=4)
    hop = model.hop_frames * model.frontend.config.hop_length
    stream = model.stream()
    stream.accept(x[: 16000 * 3], 16000)
    stream.reset()
    lat = []
    for i in range(0, x.size, hop):
        t0 = time.perf_counter()
        stream.accept(x[i : i + hop], 16000)
        lat.append(time.perf_counter() - t0)
    lat_ms = np.asarray(lat) * 1e3
    ours_ms_per_s = float(lat_ms.sum() / args.seconds)
    res: dict[str, object] = {"machine": machine_line(), "bundle": model.bundle.source, "backend": args.backend,
                              "precision": args.precision, "hop_ms_audio": hop / 16,
                              "hop_p50_ms": float(np.percentile(lat_ms, 50)),
                              "hop_p99_ms": float(np.percentile(lat_ms, 99)),
                              "hop_max_ms": float(lat_ms.max()), "ms_per_audio_s": ours_ms_per_s}
    if Path(args.yamnet).is_file():
        res["yamnet_ms_per_audio_s"] = yamnet_ms_per_audio_s(args.yamnet, x)
        res["ratio_to_yamnet"] = ours_ms_per_s / float(res["yamnet_ms_per_audio_s"])  # type: ignore[arg-type]
    code = (f"import numpy as np, sdk; m = sdk.load({args.bundle!r}, {args.backend!r}, {args.precision!r}); "
            "m.screen(np.zeros(32000, dtype=np.float32) + 0.01, 16000)")
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        starts.append(time.perf_counter() - t0)
    res["cold_start_s"] = min(starts[1:])  # warm caches: the first run may compile numba kernels
    res["first_ever_start_s"] = starts[0]
    with tempfile.TemporaryDirectory() as tmp:
        import soundfile as sf

        wav = Path(tmp) / "r.wav"
        sf.write(wav, x, 16000)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-m", "sdk", "screen", "--bundle", args.bundle, "--json", str(wav)],
                       check=True, stdout=subprocess.DEVNULL)
        res["peak_rss_mb"] = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"SDK latency, one thread, {res['machine']}; {args.backend} {args.precision}, bundle {model.bundle.source}")
    ok = True
    for key, fmt in (("hop_p50_ms", "per-hop p50 {:.2f} ms"), ("hop_p99_ms", "per-hop p99 {:.2f} ms"),
                     ("ms_per_audio_s", "compute per second of audio {:.2f} ms"),
                     ("yamnet_ms_per_audio_s", "YAMNet TFLite per second of audio {:.2f} ms"),
                     ("ratio_to_yamnet", "ours / YAMNet {:.3f}"), ("cold_start_s", "cold start {:.2f} s"),
                     ("first_ever_start_s", "first start (cold caches) {:.2f} s"),
                     ("peak_rss_mb", "peak RSS of acula screen {:.0f} MB")):
        if key not in res:
            continue
        line = "  " + fmt.format(res[key])
        if key in TARGETS:
            passed = float(res[key]) <= TARGETS[key]  # type: ignore[arg-type]
            ok &= passed
            line += f"  [{'PASS' if passed else 'FAIL'}: target <= {TARGETS[key]}]"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
