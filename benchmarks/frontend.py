"""Front-end benchmark, one thread: whole-clip log-mel vs librosa, streaming real-time factor.

    python -m acula.benchmarks.frontend [--seconds 10] [--json OUT.json]

Targets (issue 2): whole clip not slower than librosa.feature.melspectrogram with
the same settings; streaming in 512-sample chunks >= 1000x real time.  Whole clips
use the numpy engine (batched pocketfft, the SDK default); small chunks the numba
engine (its own FFT, no per-call array overhead).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from acula.benchmarks._util import command_parser, machine_line, median_ms, time_call

STREAM_TARGET_X = 1000.0


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.frontend", __doc__, argv)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--repeats", type=int, default=50, help="timed repeats (default 50)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)


    from acula.sdk.frontend import LogMelFrontend, logmel_reference
    from acula.sdk.synth import synth_recording

    x, _ = synth_recording(duration_s=args.seconds, seed=0)
    frontend = LogMelFrontend(engine="numpy")
    numba_frontend = LogMelFrontend(engine="numba")
    cfg = frontend.config
    ours_ms = median_ms(time_call(lambda: frontend(x), args.repeats))
    numba_ms = median_ms(time_call(lambda: numba_frontend(x), args.repeats))
    numpy_ms = median_ms(time_call(lambda: logmel_reference(x, cfg), args.repeats))
    results: dict[str, float | str] = {"machine": machine_line(), "clip_s": args.seconds,
                                       "whole_clip_ms": ours_ms, "numba_whole_clip_ms": numba_ms,
                                       "numpy_reference_ms": numpy_ms}
    try:
        import librosa
    except ImportError:
        librosa = None
    if librosa is not None:
        def run_librosa() -> object:
            power = librosa.feature.melspectrogram(
                y=x, sr=cfg.sample_rate_hz, n_fft=cfg.n_fft, hop_length=cfg.hop_length, center=False,
                n_mels=cfg.n_mels, fmin=cfg.f_min_hz, fmax=cfg.f_max_hz, htk=True, norm=None, power=2.0)
            return librosa.power_to_db(power, ref=1.0, amin=cfg.amin_power, top_db=None)
        results["librosa_ms"] = median_ms(time_call(run_librosa, args.repeats))

    n_stream_s = 60.0
    long_x, _ = synth_recording(duration_s=n_stream_s, seed=1)

    def run_stream(fe: LogMelFrontend) -> float:
        stream = fe.stream()
        t0 = time.perf_counter()
        for i in range(0, long_x.size, 512):
            stream.accept(long_x[i : i + 512])
        return time.perf_counter() - t0

    run_stream(numba_frontend)
    stream_s = min(run_stream(numba_frontend) for _ in range(3))
    results["stream_512_x_realtime"] = n_stream_s / stream_s
    results["stream_per_chunk_us"] = stream_s / (long_x.size / 512) * 1e6
    results["stream_512_numpy_engine_x_realtime"] = n_stream_s / min(run_stream(frontend) for _ in range(3))

    print(f"front end, one thread, {results['machine']}")
    print(f"  whole clip {args.seconds:.0f} s   numpy engine {ours_ms:6.2f} ms   numba engine {numba_ms:6.2f} ms   "
          f"numpy reference {numpy_ms:6.2f} ms", end="")
    ok = True
    if "librosa_ms" in results:
        ratio = ours_ms / float(results["librosa_ms"])
        ok &= ratio <= 1.0
        print(f"   librosa {float(results['librosa_ms']):7.2f} ms   ours/librosa {ratio:.2f} "
              f"[{'PASS' if ratio <= 1.0 else 'FAIL'}: target <= 1.00]")
    else:
        print("   (librosa not installed: pip install librosa to compare)")
    x_rt = float(results["stream_512_x_realtime"])
    ok &= x_rt >= STREAM_TARGET_X
    print(f"  streaming 512-sample chunks (numba engine): {x_rt:7.0f}x real time, "
          f"{float(results['stream_per_chunk_us']):.1f} us a chunk "
          f"[{'PASS' if x_rt >= STREAM_TARGET_X else 'FAIL'}: target >= {STREAM_TARGET_X:.0f}x]; numpy engine "
          f"{float(results['stream_512_numpy_engine_x_realtime']):.0f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
