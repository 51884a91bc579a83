"""Cold start: import + load + first hop of the SDK, against YAMNet's import + load + first patch, same run.

    python -m acula.benchmarks.cold_start [--precision auto|int8|fp32] [--rounds 7] [--baseline DIR] [--json [OUT]]

Each measurement is a fresh ``python -c`` process (warm file caches: the first, discarded round fills them).
``in_process_s`` is timed inside the child from before the first import to the first result (the issue's
"import + load + first hop"); ``process_s`` adds the interpreter's own start.  Rounds alternate the
contenders so a slow phase of a shared machine hits all; figures are medians over rounds.  ``--baseline``
times another checkout of the SDK (e.g. ``git worktree add /tmp/perf-base main``) in the same rounds.

Target (issue 26): SDK in-process cold start <= 0.2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from acula.benchmarks._util import add_model_options, command_parser, emit_json, machine_line

TARGET_S = 0.2
ROOT = Path(__file__).resolve().parents[1]

SDK_CODE = """import time; t0 = time.perf_counter()
import numpy as np, acula.sdk as sdk
m = sdk.load({bundle!r}, {backend!r}, {precision!r})
s = m.stream(); s.accept(np.full(m.window_frames * 512 + 512, 0.01, np.float32), 16000)
print(time.perf_counter() - t0)"""

YAMNET_CODE = """import time; t0 = time.perf_counter()
import numpy as np
from acula.sdk.runtimes import _tflite_interpreter
it = _tflite_interpreter()({path!r}, num_threads=1); it.allocate_tensors()
it.set_tensor(it.get_input_details()[0]["index"], np.full(15600, 0.01, np.float32)); it.invoke()
print(time.perf_counter() - t0)"""


def time_child(code: str, pythonpath: str) -> tuple[float, float]:
    """(in-process seconds, whole-process seconds) of one fresh interpreter running ``code``."""
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    # cwd too: "python -c" puts the working directory first on sys.path, ahead of PYTHONPATH
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=pythonpath, check=True, capture_output=True,
                         text=True)
    return float(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.cold_start", __doc__, argv, single_thread=False)
    add_model_options(parser)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--yamnet", default=os.environ.get("ACULA_WEIGHTS", "../shared/weights") + "/yamnet.tflite")
    parser.add_argument("--baseline", help="another checkout of the SDK to time in the same rounds")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    sdk_code = SDK_CODE.format(bundle=args.bundle, backend=args.backend, precision=args.precision)
    if args.precision == "auto":  # timed as users load it ("auto": a cached choice); recorded as what it picks
        from acula.sdk.model import load

        args.precision = f"auto ({load(args.bundle, args.backend, 'auto').precision})"
    contenders = {"sdk": (sdk_code, str(ROOT))}
    if args.baseline:
        contenders["baseline"] = (sdk_code, str(Path(args.baseline).resolve()))
    if Path(args.yamnet).is_file():
        contenders["yamnet"] = (YAMNET_CODE.format(path=str(Path(args.yamnet).resolve())), str(ROOT))
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    for r in range(args.rounds + 1):
        for name, (code, path) in contenders.items():
            t = time_child(code, path)
            if r:  # round 0 warms the file caches
                times[name].append(t)
    res: dict[str, object] = {"machine": machine_line(), "bundle": args.bundle, "backend": args.backend,
                              "precision": args.precision, "rounds": args.rounds, "target_s": TARGET_S}
    for name, ts in times.items():
        res[f"{name}_in_process_s"] = float(np.median([t[0] for t in ts]))
        res[f"{name}_process_s"] = float(np.median([t[1] for t in ts]))
    for name in ("sdk", "baseline"):
        if name in times and "yamnet" in times:
            res[f"{name}_ratio_to_yamnet"] = float(np.median([a[0] / b[0] for a, b in
                                                              zip(times[name], times["yamnet"], strict=True)]))
    if "baseline" in times:
        res["sdk_over_baseline"] = float(np.median([a[0] / b[0] for a, b in
                                                    zip(times["sdk"], times["baseline"], strict=True)]))
    ok = float(res["sdk_in_process_s"]) <= TARGET_S  # type: ignore[arg-type]
    print(f"cold start (import + load + first result), {res['machine']}; {args.backend} {args.precision}",
          file=sys.stderr)
    for name in times:
        print(f"  {name:8s} in process {res[f'{name}_in_process_s']:.3f} s, whole process "
              f"{res[f'{name}_process_s']:.3f} s", file=sys.stderr)
    for key in ("sdk_ratio_to_yamnet", "baseline_ratio_to_yamnet", "sdk_over_baseline"):
        if key in res:
            print(f"  {key} {res[key]:.2f}", file=sys.stderr)
    print(f"  [{'PASS' if ok else 'FAIL'}: target sdk in process <= {TARGET_S} s]", file=sys.stderr)
    emit_json(res, args.json)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
