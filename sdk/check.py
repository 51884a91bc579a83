"""``acula check FILE...``: load each file and report what the SDK sees."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from acula.sdk.audio import AudioError, load_audio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula check", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, ...)")
    parser.add_argument("--rate", type=int, default=16000, help="target sample rate in Hz")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    n_failed = 0
    for path in args.files:
        try:
            clip = load_audio(path, target_rate_hz=args.rate)
        except AudioError as exc:
            n_failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": type(exc).__name__, "message": str(exc)}))
            else:
                print(f"{path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(clip.to_dict()))
        else:
            flags = ",".join(clip.quality.problems) or "ok"
            print(f"{path}: {clip.duration_s:.2f} s, {clip.source_rate_hz} Hz x{clip.n_source_channels} "
                  f"-> {clip.sample_rate_hz} Hz, peak {clip.quality.peak_dbfs:.1f} dBFS, {flags}")
    return 1 if n_failed else 0
