"""Bridge decoder throughput: frames per second and multiple of one 16 kHz stream's real time.

    python -m acula.benchmarks.bridge_decoder [--seconds 60] [--codec adpcm] [--repeats 3]

One untimed warm-up pass (imports, first-call costs), then ``--repeats`` timed passes
with a fresh decoder each; the figures are the median pass (the cold pass is reported
alongside, as ``cold_frames_per_s``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from acula.benchmarks._util import ensure_single_thread, machine_line


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ensure_single_thread("acula.benchmarks.bridge_decoder", argv)
    from acula.firmware_bridge.codecs import AUDIO_CODECS  # numpy after the re-run: its thread pools read the variables
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.bridge_decoder", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--codec", default="adpcm", choices=sorted(AUDIO_CODECS))
    parser.add_argument("--piece", type=int, default=244, help="bytes per read (a BLE notification is ~244)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after the warm-up; the median is reported")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    from acula.firmware_bridge.decoder import FrameDecoder
    from acula.firmware_bridge.simulate import stethoscope_frames
    from acula.sdk.synth import synth_recording

    x, _ = synth_recording(args.seconds, seed=0)
    frames, _ = stethoscope_frames(x, 16000, AUDIO_CODECS[args.codec].codec)
    data = b"".join(frames)

    def one_pass() -> tuple[float, FrameDecoder, int]:
        dec = FrameDecoder()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(data), args.piece):
            n += len(dec.feed(data[i : i + args.piece]))
        n += len(dec.flush())
        return time.perf_counter() - t0, dec, n

    cold_s, _, _ = one_pass()
    passes = [one_pass() for _ in range(args.repeats)]
    dt, dec, n = sorted(passes, key=lambda p: p[0])[len(passes) // 2]
    print(f"bridge decoder, one thread, {machine_line()}: {args.codec}, {len(frames)} frames of 256 samples, "
          f"{args.piece}-byte reads, median of {args.repeats} warm passes")
    print(f"  {len(frames) / dt:,.0f} frames/s, {args.seconds / dt:,.0f}x real time of one 16 kHz stream "
          f"({dec.counters.frames_ok} ok, {dec.counters.frames_lost} lost); cold first pass "
          f"{len(frames) / cold_s:,.0f} frames/s")
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(), "codec": args.codec, "frames_per_s": len(frames) / dt,
                       "x_realtime": args.seconds / dt, "frames": len(frames), "warm_repeats": args.repeats,
                       "cold_frames_per_s": len(frames) / cold_s}, f, indent=2)
    return 0 if n == len(frames) else 2

if __name__ == "__main__":
    sys.exit(main())
