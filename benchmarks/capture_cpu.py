"""Live capture's CPU per second of audio: blocks fed one by one against blocks buffered to the next window.

    python -m acula.benchmarks.capture_cpu [--seconds 120] [--block-s 0.1] [--rates 16000 44100 48000] [--rounds 3]
                                           [--precision auto] [--baseline DIR [--baseline-name NAME]] [--json [OUT]]

A synthetic recording (:mod:`sdk.synth`) is written as a 16-bit WAV at each rate and replayed through
:class:`sdk.capture.LiveCapture` as fast as the consumer takes it (``speed=None``: the live code path, the queue
and the replay thread, nothing dropped), in ``--block-s`` blocks, the way a microphone delivers them: once with
``coalesce=False`` (every block into ``Stream.accept`` as it comes, as before 2026-12-06) and once with
``coalesce=True`` (blocks held until the next window can complete, then fed in one call), alternating, one
thread.  The reference in the same process is the recording fed to one stream in chunks of one hop (0.48 s).
Reported: CPU ms per second of audio of the consumer thread (the stream's work and the queue: what a device pays
beyond its audio callback; the median of ``--rounds``), the ratio of the two capture ways, the whole process's
CPU (the replay thread's file reading too, a stand-in a device does not run), and whether both ways gave the same
windows (they must: a stream does not depend on its chunking).  ``--baseline DIR`` (another checkout, e.g. ``git
archive COMMIT | tar -x -C DIR``) replays the same files through that checkout's ``LiveCapture`` with its own
defaults and through this one's, each in a fresh process, alternating: the consumer's CPU before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import add_model_options, command_parser, emit_json, machine_line


def capture_ms_per_audio_s(model: Any, path: str, block_s: float, coalesce: bool
                           ) -> tuple[float, float, list[Any]]:
    """One replay of ``path`` through live capture: CPU ms per audio second of the consumer (the thread that runs
    the stream: what a device pays beyond its audio callback) and of the whole process (the replay thread reading
    the file too), and the windows it gave."""
    from acula.sdk.capture import LiveCapture

    got: list[Any] = []
    cap = LiveCapture(model, block_s=block_s, queue_blocks=64, replay=path, speed=None, coalesce=coalesce)
    c0, p0 = time.thread_time(), time.process_time()
    stats = cap.run(on_window=got.append)
    cpu, process = time.thread_time() - c0, time.process_time() - p0
    if stats.blocks_dropped:
        raise RuntimeError("a replay at speed None dropped blocks")
    audio_s = cap._blocks.duration_s
    return cpu / audio_s * 1e3, process / audio_s * 1e3, got


#: one replay of a file through a checkout's LiveCapture at its defaults, in a fresh process: the consumer's CPU
_CHILD = ("import sys, time; from acula.sdk.model import load; from acula.sdk.capture import LiveCapture; "
          "m = load(sys.argv[2], 'onnxruntime', sys.argv[3]); cap = LiveCapture(m, block_s=float(sys.argv[4]), "
          "queue_blocks=64, replay=sys.argv[1], speed=None); c0 = time.thread_time(); cap.run(); "
          "print((time.thread_time() - c0) / cap._blocks.duration_s * 1e3)")


def checkout_ms_per_audio_s(root: str, path: str, bundle: str, precision: str, block_s: float) -> float:
    """The consumer's CPU ms per audio second of ``root``'s LiveCapture (its own defaults) replaying ``path``."""
    env = dict(os.environ, PYTHONPATH=root, **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                  "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-c", _CHILD, path, bundle, precision, str(block_s)], cwd=root, env=env,
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def hop_chunks_ms_per_audio_s(model: Any, x: np.ndarray, rate: int) -> float:
    """The same recording fed to one stream in chunks of one hop (at its own rate)."""
    hop = model.hop_frames * model.frontend.config.hop_length * rate // model.sample_rate_hz
    stream = model.stream()
    c0 = time.process_time()
    for i in range(0, x.size, hop):
        stream.accept(x[i : i + hop], rate)
    stream.flush()
    return (time.process_time() - c0) / (x.size / rate) * 1e3


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.capture_cpu", __doc__, argv)
    add_model_options(parser, backend=False)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--block-s", type=float, default=0.1, help="capture block, seconds (LiveCapture's default)")
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 44100, 48000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="another checkout: its LiveCapture against this one's, fresh processes")
    parser.add_argument("--baseline-name", help="what the baseline is, for the tables (default: its path)")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.block_s <= 0 or args.rounds < 1 or min(args.rates) < 8000:
        parser.error("--seconds and --block-s must be positive, --rounds at least 1, --rates at least 8000")
    import soundfile as sf
    from acula.sdk.model import load
    from acula.sdk.synth import synth_recording

    model = load(args.bundle, "onnxruntime", args.precision)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            x, _ = synth_recording(args.seconds, sample_rate_hz=rate, seed=4)
            path = str(Path(tmp) / f"r{rate}.wav")
            sf.write(path, np.clip(x, -1, 1), rate, subtype="PCM_16")
            x = sf.read(path, dtype="float32")[0]  # what the replay reads: the 16-bit samples
            times: dict[str, list[float]] = {"per block": [], "coalesced": [], "hop chunks": [],
                                             "per block, process": [], "coalesced, process": []}
            same = True
            for _ in range(args.rounds):
                per_block, per_block_process, a = capture_ms_per_audio_s(model, path, args.block_s, coalesce=False)
                coalesced, coalesced_process, b = capture_ms_per_audio_s(model, path, args.block_s, coalesce=True)
                same = same and [(w.start_s, w.cough_probability, w.problems) for w in a] == [
                    (w.start_s, w.cough_probability, w.problems) for w in b]
                times["per block"].append(per_block)
                times["coalesced"].append(coalesced)
                times["per block, process"].append(per_block_process)
                times["coalesced, process"].append(coalesced_process)
                times["hop chunks"].append(hop_chunks_ms_per_audio_s(model, x, rate))
            med = {k: float(np.median(v)) for k, v in times.items()}
            row = {"rate_hz": rate, "cpu_ms_per_audio_s": med, "per_block_over_coalesced":
                   float(np.median(np.array(times["per block"]) / np.array(times["coalesced"]))),
                   "same_windows": same, "windows": len(b)}
            if args.baseline:
                root = str(Path(__file__).resolve().parents[1])
                pair: dict[str, list[float]] = {"baseline": [], "this checkout": []}
                for _ in range(args.rounds):
                    for who, where in (("baseline", args.baseline), ("this checkout", root)):
                        pair[who].append(checkout_ms_per_audio_s(where, path, args.bundle, model.precision,
                                                                 args.block_s))
                row["checkouts_ms_per_audio_s"] = {k: float(np.median(v)) for k, v in pair.items()}
            rows.append(row)
    res = {"machine": machine_line(), "bundle": args.bundle, "precision": model.precision, "seconds": args.seconds,
           "block_s": args.block_s, "rounds": args.rounds, "baseline": args.baseline_name or args.baseline,
           "rows": rows}
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"live capture, CPU ms per second of audio (median of {args.rounds}), {res['machine']}; onnxruntime "
          f"{model.precision}, {args.block_s:g} s blocks", file=out)
    print("| rate | per block | coalesced | per block / coalesced | hop chunks (reference) | whole process: per "
          "block / coalesced | same windows |", file=out)
    print("|---|---|---|---|---|---|---|", file=out)
    for r in rows:
        t = r["cpu_ms_per_audio_s"]
        print(f"| {r['rate_hz']} | {t['per block']:.3f} | {t['coalesced']:.3f} | {r['per_block_over_coalesced']:.2f}x "
              f"| {t['hop chunks']:.3f} | {t['per block, process']:.3f} / {t['coalesced, process']:.3f} | "
              f"{r['same_windows']} |", file=out)
    if args.baseline:
        print(f"LiveCapture at its defaults, consumer CPU ms per audio second, baseline {res['baseline']} -> this "
              "checkout: " + "; ".join(f"{r['rate_hz']} Hz {r['checkouts_ms_per_audio_s']['baseline']:.3f} -> "
                                       f"{r['checkouts_ms_per_audio_s']['this checkout']:.3f}" for r in rows), file=out)
    emit_json(res, args.json)
    return 0 if all(r["same_windows"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
