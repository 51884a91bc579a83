"""The streaming resampler's CPU per second of audio, by source rate and chunk length, against a baseline.

    python -m acula.benchmarks.resampler [--rates 8000 22050 44100 48000 96000] [--chunks-s 0.1 0.48]
                                         [--seconds 30] [--rounds 5] [--baseline DIR] [--json [OUT]]

A phone records at 44.1 or 48 kHz and a stream resamples it to the model's 16 kHz before anything else
(:class:`sdk.resample.StreamingResampler`), so for such input the resampler is a large share of the SDK's work.
Per source rate and chunk length: CPU ms per second of audio (process time, one thread, the median of
``--rounds``) of this checkout's resampler fed white noise chunk by chunk.  ``--baseline DIR`` loads
``DIR/sdk/resample.py`` (another checkout, e.g. ``git archive HEAD~1 sdk | tar -x -C /tmp/base``) in the same
process and times it alternately on the same input; the outputs must be identical (the resampler's contract: each
output the same direct-form sum whatever the chunking and the layout), else the command fails.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, emit_json, machine_line


def _module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ms_per_audio_s(module: Any, x: np.ndarray, rate: int, chunk: int) -> tuple[float, np.ndarray]:
    """One pass of ``x`` through ``module``'s resampler in chunks: CPU ms per audio second and the output."""
    r = module.StreamingResampler(rate, 16000)
    parts = []
    c0 = time.process_time()
    for i in range(0, x.size, chunk):
        parts.append(r.accept(x[i : i + chunk]))
    parts.append(r.flush())
    return (time.process_time() - c0) / (x.size / rate) * 1e3, np.concatenate(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.resampler", __doc__, argv)
    parser.add_argument("--rates", type=int, nargs="+", default=[8000, 22050, 44100, 48000, 96000])
    parser.add_argument("--chunks-s", type=float, nargs="+", default=[0.1, 0.48])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="another checkout whose sdk/resample.py is timed alternately")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or min(args.chunks_s) <= 0 or min(args.rates) < 1000:
        parser.error("--seconds and --chunks-s must be positive, --rounds at least 1, --rates at least 1000")
    mods = {"this checkout": _module(Path(__file__).resolve().parents[1] / "sdk" / "resample.py", "_rs_this")}
    if args.baseline:
        mods["baseline"] = _module(Path(args.baseline) / "sdk" / "resample.py", "_rs_baseline")
    rows = []
    for rate in args.rates:
        x = np.random.default_rng(rate).standard_normal(int(args.seconds * rate)).astype(np.float32)
        for chunk_s in args.chunks_s:
            chunk = max(1, int(chunk_s * rate))
            times: dict[str, list[float]] = {who: [] for who in mods}
            outs: dict[str, np.ndarray] = {}
            for _ in range(args.rounds):
                for who, module in mods.items():
                    t, outs[who] = ms_per_audio_s(module, x, rate, chunk)
                    times[who].append(t)
            row: dict[str, Any] = {"rate_hz": rate, "chunk_s": chunk_s,
                                   "ms_per_audio_s": {who: float(np.median(v)) for who, v in times.items()}}
            if args.baseline:
                row["identical"] = bool(np.array_equal(outs["this checkout"], outs["baseline"]))
                row["baseline_over_this"] = float(np.median(np.array(times["baseline"]) /
                                                            np.array(times["this checkout"])))
            rows.append(row)
    res = {"machine": machine_line(), "seconds": args.seconds, "rounds": args.rounds, "baseline": args.baseline,
           "rows": rows}
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"resampling to 16 kHz, CPU ms per second of audio (median of {args.rounds}), {res['machine']}", file=out)
    who = list(mods)
    extra = " | baseline / this | identical |" if args.baseline else " |"
    print("| source rate | chunk s | " + " | ".join(who) + extra, file=out)
    print("|---" * (2 + len(who) + (2 if args.baseline else 0)) + "|", file=out)
    for r in rows:
        cells = " | ".join(f"{r['ms_per_audio_s'][w]:.3f}" for w in who)
        tail = f" | {r['baseline_over_this']:.2f}x | {r['identical']} |" if args.baseline else " |"
        print(f"| {r['rate_hz']} | {r['chunk_s']:g} | {cells}{tail}", file=out)
    emit_json(res, args.json)
    return 0 if all(r.get("identical", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
