"""``acula check FILE...``: load each file and report what the SDK sees."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from acula.sdk.audio import AudioError, check_sample_rate, iter_audio_blocks
from acula.sdk.audio_files import MAX_BLOCK_SAMPLES
from acula.sdk.quality import QualityFlags


def describe(path: str, target_rate_hz: int) -> tuple[dict[str, Any], QualityFlags]:
    """What :func:`sdk.audio.load_audio` would give for ``path`` at ``target_rate_hz`` (``AudioClip.to_dict``:
    rates, channels, the duration after resampling, the quality flags), read in blocks instead of whole.  The
    quality is :class:`sdk.quality.QualityMeter`'s (flags as ``assess_quality``'s; ``rms_dbfs`` may differ in its
    last bits).  Returns the record and the quality flags it holds."""
    target = check_sample_rate(target_rate_hz, "target rate")
    blocks = iter_audio_blocks(path, 10.0, MAX_BLOCK_SAMPLES)
    resampler = None
    if target != blocks.sample_rate_hz:
        from acula.sdk.resample import StreamingResampler

        resampler = StreamingResampler(blocks.sample_rate_hz, target)
    n_out = 0
    for block in blocks:  # the resampled length, counted: resample() gives as many samples
        n_out += block.shape[0] if resampler is None else resampler.accept(block.astype(np.float64)).shape[0]
    if resampler is not None:
        n_out += resampler.flush().shape[0]
    quality = blocks.quality()
    return {"path": path, "sample_rate_hz": target, "source_rate_hz": blocks.sample_rate_hz,
            "n_source_channels": blocks.n_channels, "duration_s": n_out / target, "quality": quality.to_dict()}, quality


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
            clip, quality = describe(path, args.rate)
        except AudioError as exc:
            n_failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": type(exc).__name__, "message": str(exc)}))
            else:
                print(f"{path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(clip))
        else:
            flags = ",".join(quality.problems) or "ok"
            print(f"{path}: {clip['duration_s']:.2f} s, {clip['source_rate_hz']} Hz x{clip['n_source_channels']} "
                  f"-> {clip['sample_rate_hz']} Hz, peak {quality.peak_dbfs:.1f} dBFS, {flags}")
    return 1 if n_failed else 0
