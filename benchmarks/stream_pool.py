"""Streams served in real time per core: one thread, N streams fed one hop (or K) each per step.

    python -m acula.benchmarks.stream_pool [--streams 1 8 64 512] [--precision auto|int8|fp32] [--steps 8]
                                           [--repeats 3] [--chunk-hops 1] [--json [OUT]]

For each N (and, with ``--chunk-hops K ...``, each chunk of K hops a stream gets per step: a capture callback's
or a network packet's size, 1 = one hop, 0.48 s, the finest and costliest), two ways in the same run:
``separate`` (each stream's own ``accept``, one runtime call per window) and ``pool``
(:class:`sdk.pool.StreamPool`, one runtime call for the windows of all N).  Reported per N and way: CPU
seconds per second of audio per stream, streams served in real time by one core (= audio seconds / CPU
seconds), the step's wall time p50 / p99 (what a stream waits for its window when the gateway serves all N in
turn: the per-stream latency cost), and the model-only share (the same windows through ``Model.run_batch``
alone, in the pool's batches), for the roofline goal end-to-end <= 4x model-only, and the memory the streams
hold per stream (tracemalloc, after the warm-up and four steps; measured apart).
Each is the median of ``--repeats`` measurements, interleaved.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
from acula.benchmarks._util import add_model_options, command_parser, emit_json, machine_line

#: stream-hops timed at least per N and way (one stream is timed over 512 hops, 4 minutes of audio: 8 hops of it,
#: 2.4 ms of CPU, read 4.7x model-only one run and 4.1x the next)
MIN_STREAM_HOPS = 512


def serve(model, pool, n: int, audio: np.ndarray, chunk: int, warm: int, steps: int, pooled: bool) -> dict:
    """N streams fed ``chunk`` samples each per step, ``warm`` steps untimed, then ``steps`` timed."""
    span = audio.size - chunk * (warm + steps)
    if span <= 0:
        raise ValueError(f"{steps} steps after {warm} warm-up steps need more than {audio.size / 16000:.0f} s of audio")
    streams = [model.stream() for _ in range(n)]
    offsets = (np.arange(n) * 997 * 16) % span
    walls, cpu = [], 0.0
    for k in range(warm + steps):
        chunks = [(s, audio[o + k * chunk : o + (k + 1) * chunk], 16000) for s, o in zip(streams, offsets, strict=True)]
        c0, t0 = time.process_time(), time.perf_counter()
        if pooled:
            pool.accept(chunks)
        else:
            for s, x, rate in chunks:
                s.accept(x, rate)
        if k >= warm:
            walls.append(time.perf_counter() - t0)
            cpu += time.process_time() - c0
    audio_s = n * steps * chunk / 16000
    return {"cpu_ms_per_audio_s": cpu / audio_s * 1e3, "streams_per_core": audio_s / cpu if cpu else float("inf"),
            "step_p50_ms": float(np.percentile(walls, 50)) * 1e3, "step_p99_ms": float(np.percentile(walls, 99)) * 1e3}


def held_kb_per_stream(model, pool, n: int, audio: np.ndarray, hop: int, steps: int) -> float:
    """Memory the N streams hold (tracemalloc: Python objects and numpy buffers), per stream, after ``steps`` pool
    steps: a gateway's memory per stethoscope.  Measured apart from the timed runs (tracing slows every
    allocation)."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        streams = [model.stream() for _ in range(n)]
        for k in range(steps):
            pool.accept([(s, audio[k * hop : (k + 1) * hop], 16000) for s in streams])
        return (tracemalloc.get_traced_memory()[0] - base) / n / 1024
    finally:
        tracemalloc.stop()


def model_only_ms_per_audio_s(model, n: int, hop_s: float, max_batch: int, repeats: int = 5, chunk_hops: int = 1
                              ) -> float:
    """Runtime alone on the N x ``chunk_hops`` windows one step yields, in the pool's batches of at most
    ``max_batch`` (the runtime's fastest batch size here: one batch of 512 costs more per window than 16 batches of
    32; a lone stream, which the pool hands to its own ``accept``, one window a call), per second of audio."""
    windows = n * chunk_hops
    sizes = [1] * windows if n == 1 else [min(max_batch, windows - a) for a in range(0, windows, max_batch)]
    batches = {k: np.zeros((k, model.window_frames, model.frontend.config.n_mels), dtype=np.float32) for k in sizes}
    for b in batches.values():
        model.run_batch(b)
    c0 = time.process_time()
    for _ in range(repeats):
        for k in sizes:
            model.run_batch(batches[k])
    return (time.process_time() - c0) / repeats / (windows * hop_s) * 1e3


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.stream_pool", __doc__, argv)
    add_model_options(parser)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 64, 512])
    parser.add_argument("--steps", type=int, default=8,
                        help="timed steps (hops) per stream (default 8; at least MIN_STREAM_HOPS / N at N streams)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements per N and way, interleaved; the median is reported (default 3: one run on "
                             "this shared machine read 4.0x model-only at 64 streams and 4.8x at 512, the next 4.4x at "
                             "both)")
    parser.add_argument("--chunk-hops", type=int, nargs="+", default=[1],
                        help="hops per stream per step, one table row per value (default 1: a hop of 0.48 s a step)")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    from acula.sdk.pool import StreamPool
    from acula.sdk.synth import synth_recording

    from acula import sdk

    model = sdk.load(args.bundle, args.backend, args.precision)
    pool = StreamPool(model)
    hop = model.hop_frames * model.frontend.config.hop_length
    warm = -(-model.window_frames // model.hop_frames)  # steps until the first window
    if args.steps < 1 or min(args.streams) < 1 or args.repeats < 1 or min(args.chunk_hops) < 1:
        parser.error("--steps, --streams, --repeats and --chunk-hops must be at least 1")
    cases = [(n, k) for k in args.chunk_hops for n in args.streams]
    steps = {(n, k): max(args.steps, -(-MIN_STREAM_HOPS // (n * k))) for n, k in cases}
    warms = {k: -(-warm // k) for k in args.chunk_hops}  # steps until the first window
    # every stream's chunks lie inside the recording: offsets up to 60 s, then the timed and warm-up hops
    audio, _ = synth_recording(60.0 + max((warms[k] + steps[n, k]) * k for n, k in cases) * hop / 16000 + 1.0,
                               seed=4)
    rows = []
    for n, k in cases:
        row: dict[str, object] = {"streams": n, "chunk_hops": k, "steps": steps[n, k], "repeats": args.repeats}
        runs: dict[str, list[dict]] = {"separate": [], "pool": []}
        model_only = []
        for _ in range(args.repeats):  # interleaved, so a slow spell of the machine touches every way alike
            for way in ("separate", "pool"):
                runs[way].append(serve(model, pool, n, audio, hop * k, warms[k], steps[n, k], way == "pool"))
            model_only.append(model_only_ms_per_audio_s(model, n, hop / 16000, pool.max_batch,
                                                        repeats=max(5, -(-MIN_STREAM_HOPS // (n * k))), chunk_hops=k))
        for way in ("separate", "pool"):  # the run with the median CPU time
            row[way] = sorted(runs[way], key=lambda r: r["cpu_ms_per_audio_s"])[(args.repeats - 1) // 2]
        row["model_only_ms_per_audio_s"] = float(np.median(model_only))
        row["held_kb_per_stream"] = held_kb_per_stream(model, pool, n, audio, hop * k, warms[k] + 4)
        for way in ("separate", "pool"):
            row[way]["over_model_only"] = row[way]["cpu_ms_per_audio_s"] / row["model_only_ms_per_audio_s"]  # type: ignore
        rows.append(row)
    res = {"machine": machine_line(), "bundle": args.bundle, "backend": args.backend, "precision": model.precision,
           "max_batch": pool.max_batch, "frontend_rows": pool.frontend_rows,
           "hop_ms": hop / 16, "steps": args.steps, "chunk_hops": args.chunk_hops, "rows": rows}
    print(f"streams in real time per core, {res['machine']}; {args.backend} {model.precision}, hop {hop / 16:.0f} ms",
          file=sys.stderr)
    print("| streams | chunk s | way | CPU ms / audio s | streams per core | step p50 ms | step p99 ms | "
          "x model-only | KB held per stream |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for row in rows:
        for way in ("separate", "pool"):
            r = row[way]
            print(f"| {row['streams']} | {row['chunk_hops'] * hop / 16000:.2f} | {way} | "  # type: ignore
                  f"{r['cpu_ms_per_audio_s']:.2f} | {r['streams_per_core']:.0f} | "  # type: ignore
                  f"{r['step_p50_ms']:.2f} | {r['step_p99_ms']:.2f} | {r['over_model_only']:.1f} | "  # type: ignore
                  f"{row['held_kb_per_stream']:.0f} |", file=sys.stderr)
    emit_json(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
