"""Where a hop's time goes: one stream, one thread, each stage of ``Stream.accept`` timed on its own.

    python -m acula.benchmarks.hop_parts [--bundle default] [--precision fp32] [--seconds 60] [--rounds 5]
                                         [--baseline DIR] [--yamnet PATH] [--json [OUT]]

The stages are the ones :class:`sdk.stream.Stream` runs for a hop, called in the same order on the same
state: validation with the quality statistics, the cough envelope and the front end's staging (one pass for a
hop on the block grid), the log-mel frames, the windower, the runtime, the label scorer, and the rest of
``_complete`` (gate verdicts, results, events).  Figures are microseconds per hop (wall time, the median over
rounds); their sum is a little above a plain ``accept`` (the timer calls).  ``--baseline DIR`` times another
checkout of the SDK the same way, in a fresh process each round, alternating with this one, for a before /
after table on a noisy machine.  YAMNet TFLite is timed on the same audio in each round's process: the
whole hop and the essential work alone (log-mel, runtime, scorer: what any streaming scorer with this front
end and model must do) as fractions of YAMNet's time, the floor under the issue's ratio target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("validate + quality + envelope", "log-mel", "windows", "runtime", "scorer", "complete")
#: the work no streaming scorer can skip: features, the model, the label scores
ESSENTIAL = ("log-mel", "runtime", "scorer")
#: timed apart, after the hops: the model alone (one window a call, cache-hot) and the front end's FFT alone
FLOOR = ("model only", "fft")


def _us_per_call(fn: Any, calls: int) -> float:
    """Microseconds per call of ``fn`` (the median of 5 blocks of ``calls``, after one block of warm-up)."""
    clock = time.perf_counter
    times = []
    for _ in range(6):
        t0 = clock()
        for _ in range(calls):
            fn()
        times.append((clock() - t0) / calls * 1e6)
    return float(np.median(times[1:]))


def floor_parts(model: Any, frames_per_hop: int, calls: int = 200) -> dict[str, float]:
    """Microseconds per hop of the model alone (``Model.run_batch`` on one zero window a call, as
    ``benchmarks.stream_pool``'s model-only for one stream) and of the FFT alone on a hop's frames (the front end's
    own ``_rfft``, into a separate buffer, random frames: its time does not depend on the values); 0 for the FFT in
    a checkout without ``_rfft``."""
    import acula.sdk.frontend as frontend

    window = np.zeros((1, model.window_frames, model.frontend.config.n_mels), np.float32)
    out = {"model only": _us_per_call(lambda: model.run_batch(window), calls), "fft": 0.0}
    rfft = getattr(frontend, "_rfft", None)
    if rfft is not None:
        n_fft = model.frontend.config.n_fft
        frames = np.random.default_rng(0).standard_normal((frames_per_hop, n_fft))
        spectrum = np.empty((frames_per_hop, n_fft // 2 + 1), np.complex128)
        out["fft"] = _us_per_call(lambda: rfft(frames, spectrum), calls)
    return out


def _take(stream: Any, chunk: np.ndarray) -> int:
    """A hop's samples validated, measured and staged for the front end, as ``Stream.accept`` does it
    (``Stream._take_and_stage``; a baseline checkout without it takes its general path)."""
    take_and_stage = getattr(stream, "_take_and_stage", None)
    if take_and_stage is not None:
        return int(take_and_stage(chunk, 16000))
    return int(stream._stage(stream._take(chunk, 16000)))


def measure(bundle: str, backend: str, precision: str, seconds: float, yamnet: str | None = None
            ) -> dict[str, float]:
    """Microseconds per hop of each stage, streaming ``seconds`` of the synthetic recording hop by hop; with
    ``yamnet`` (a YAMNet TFLite file), also YAMNet's time for the same audio per hop, in the same process."""
    from acula.sdk.model import load
    from acula.sdk.synth import synth_recording

    model = load(bundle, backend, precision, n_threads=1)
    x, _ = synth_recording(seconds, seed=4)
    hop = model.hop_frames * model.frontend.config.hop_length
    stream = model.stream()
    stream.accept(np.zeros(3 * 16000, np.float32), 16000)  # first inference, caches
    stream.reset()
    acc = dict.fromkeys(STAGES, 0.0)
    n = 0
    clock = time.perf_counter
    for i in range(0, x.size - hop + 1, hop):
        with stream._exclusive():
            t0 = clock()
            n_frames = _take(stream, x[i : i + hop])
            t1 = clock()
            logmel = stream._fe.compute(n_frames)
            t2 = clock()
            stream._add_frames(logmel, n_frames)
            pending = stream._pending()
            # the model's input (shifted by the running level in a level bundle; before 2026-12-05 _pending did it)
            inputs = stream._inputs(pending) if hasattr(stream, "_inputs") else pending.windows
            t3 = clock()
            if pending.windows:
                emb, heads = model.run_windows(inputs)
                t4 = clock()
                logits = model.scorer(emb)
                t5 = clock()
                stream._complete(pending, emb, heads, logits)
                t6 = clock()
            else:
                t4 = t5 = t6 = t3
        for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            acc[stage] += dt
        n += 1
    out = {k: v / n * 1e6 for k, v in acc.items()}
    out["total"] = sum(out.values())
    out.update(floor_parts(model, model.hop_frames))
    if yamnet:
        from acula.sdk.bench import yamnet_ms_per_audio_s

        ms = yamnet_ms_per_audio_s(yamnet, seconds, 1)
        if ms is not None:
            out["yamnet"] = ms * 1e3 * hop / 16000
    return out


def child(root: str, args: Any) -> dict[str, float]:
    """:func:`measure` in a fresh single-threaded process importing the SDK of the checkout at ``root``."""
    code = ("import json, runpy, sys; m = runpy.run_path(sys.argv[1]); print(json.dumps(m['measure']("
            f"{args.bundle!r}, {args.backend!r}, {args.precision!r}, {args.seconds!r}, {args.yamnet!r})))")
    env = dict(os.environ, PYTHONPATH=root, **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                  "MKL_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-c", code, __file__], env=env, cwd=root, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    from acula.benchmarks._util import add_model_options, command_parser, emit_json, machine_line

    parser, argv = command_parser("acula.benchmarks.hop_parts", __doc__, argv)
    add_model_options(parser)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio streamed per round (default 60 s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="another checkout of the SDK, timed alternately in fresh processes")
    parser.add_argument("--yamnet", default=os.environ.get("ACULA_WEIGHTS", "../shared/weights") + "/yamnet.tflite",
                        help="YAMNet TFLite, timed on the same audio in each round's process (skipped if absent)")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    if args.precision == "auto":
        from acula.sdk.model import load

        args.precision = load(args.bundle, args.backend, "auto").precision
    root = str(Path(__file__).resolve().parents[1])
    runs: dict[str, list[dict[str, float]]] = {"this checkout": []}
    if args.baseline:
        runs["baseline"] = []
    for _ in range(args.rounds):
        runs["this checkout"].append(child(root, args))
        if args.baseline:
            runs["baseline"].append(child(args.baseline, args))
    keys = (*STAGES, "total", *(k for k in FLOOR if all(k in r for rs in runs.values() for r in rs)))
    table = {who: {k: float(np.median([r[k] for r in rs])) for k in keys} for who, rs in runs.items()}
    res: dict[str, Any] = {"machine": machine_line(), "bundle": args.bundle, "backend": args.backend,
                           "precision": args.precision, "seconds": args.seconds, "rounds": args.rounds,
                           "baseline": args.baseline, "us_per_hop": table}
    mine = runs["this checkout"]
    if all("yamnet" in r for r in mine):
        # each round's ratios in its own process, then the median: the machine's speed cancels within a round
        res["yamnet_us_per_hop"] = float(np.median([r["yamnet"] for r in mine]))
        res["over_yamnet"] = {"total": float(np.median([r["total"] / r["yamnet"] for r in mine])),
                              "essential": float(np.median([sum(r[k] for k in ESSENTIAL) / r["yamnet"]
                                                            for r in mine]))}
    if all(r.get("model only") for r in mine):
        # each round's ratios in its own process, then the median, as for YAMNet
        res["over_model_only"] = {
            name: float(np.median([sum(r[k] for k in ks) / r["model only"] for r in mine]))
            for name, ks in (("total", ("total",)), ("essential", ESSENTIAL), ("fft", ("fft",)))}
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"microseconds per hop (median of {args.rounds} rounds), {res['machine']}; {args.backend} "
          f"{args.precision}", file=out)
    who = list(table)
    print("| stage | " + " | ".join(who) + " |", file=out)
    print("|---" * (len(who) + 1) + "|", file=out)
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{table[w][k]:.1f}" for w in who) + " |", file=out)
    if "over_yamnet" in res:
        r = res["over_yamnet"]
        print(f"YAMNet TFLite on the same audio: {res['yamnet_us_per_hop']:.0f} us per hop.  This checkout / YAMNet: "
              f"{r['total']:.3f} for the whole hop, {r['essential']:.3f} for {' + '.join(ESSENTIAL)} alone (the "
              "floor of any streaming pipeline with this front end and model; median of the rounds' ratios)",
              file=out)
    if "over_model_only" in res:
        r = res["over_model_only"]
        print(f"Against the model alone (one window a call, cache-hot, in the same processes): the whole hop "
              f"{r['total']:.2f}x, {' + '.join(ESSENTIAL)} alone {r['essential']:.2f}x, the FFT alone {r['fft']:.2f}x "
              "(median of the rounds' ratios)", file=out)
    emit_json(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
