"""``acula demo``: screen a real cough and a synthetic heart-and-breathing recording with the default bundle.

Needs no data, no network and no plotting library.  The cough is one recording
shipped with the package (``sdk/data/cough_smith2006_p05.flac``, Smith et al.
2006, CC BY 2.0: see ``sdk/data/ATTRIBUTION.md``); the heart and breathing come
from :mod:`sdk.synth` and should raise no cough event.  Prints the events with
the detector's on threshold, clip scores for each label set and the latency per
hop, and draws both recordings (waveform, spectrogram, cough probability,
threshold, events) to one PNG.  Without a bundle it runs the front end only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from acula.sdk.cli import HelpFormatter
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.synth import synth_recording

if TYPE_CHECKING:
    from acula.sdk.model import Model, ScreenResult


def frontend_only(samples: np.ndarray, duration_s: float) -> None:
    frontend = LogMelFrontend()
    t0 = time.perf_counter()
    whole = frontend(samples)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    whole = frontend(samples)
    t_whole = time.perf_counter() - t0
    stream = frontend.stream()
    t0 = time.perf_counter()
    parts = [stream.accept(samples[i : i + 512]) for i in range(0, samples.size, 512)]
    t_stream = time.perf_counter() - t0
    streamed = np.concatenate(parts)
    print(f"log-mel: {whole.shape[0]} frames x {whole.shape[1]} mels "
          f"(first call {t_first * 1e3:.1f} ms incl. compile/cache load)")
    print(f"whole clip: {t_whole * 1e3:.2f} ms; streaming in 512-sample chunks: {t_stream * 1e3:.2f} ms "
          f"({duration_s / t_stream:.0f}x real time)")
    print(f"stream vs whole clip: max abs difference {float(np.max(np.abs(streamed - whole))):.2e}")


CC_BY_COUGH = "cough_smith2006_p05.flac"


def shipped_cough() -> str:
    """Path of the real cough shipped as package data (CC BY 2.0, Smith et al. 2006)."""
    from importlib import resources

    return str(resources.files("acula.sdk").joinpath("data", CC_BY_COUGH))


def _report(model: Model, result: ScreenResult) -> None:
    from acula.sdk.screen_cli import _describe

    peak = result.peak_window()
    detail = f"on threshold {model.screening.on:.2f}"
    if peak is not None:
        detail += f"; highest window cough probability {peak.cough_probability:.2f} at {peak.start_s:.2f} s"
    print(f"  cough events: {len(result.events)} ({detail})")
    for e in result.events:
        print(f"    {e.start_s:6.2f}-{e.end_s:6.2f} s  confidence {e.confidence:.2f}")
    if result.problems:
        print(f"  note: {_describe(result.problems)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula demo", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--duration-s", type=float, default=10.0, help="length of the synthetic recording")
    parser.add_argument("--seed", type=int, default=0, help="generator seed of the synthetic recording")
    parser.add_argument("--bundle", default="default", help="bundle to screen with")
    parser.add_argument("--threads", type=int, default=1, help="inference threads")
    parser.add_argument("--out", "--plot", dest="out", default="acula_demo.png",
                        help="PNG to write ('' for none)")
    args = parser.parse_args(argv)
    if not args.duration_s > 0:
        parser.error(f"--duration-s must be positive, got {args.duration_s}")
    samples, events = synth_recording(duration_s=args.duration_s, seed=args.seed, cough_onsets_s=())
    from acula.sdk.bundle import BundleError
    from acula.sdk.model import load

    try:
        t0 = time.perf_counter()
        model = load(args.bundle, n_threads=args.threads)
        t_load = time.perf_counter() - t0
    except BundleError as exc:
        print(f"synthesised {args.duration_s:.1f} s at 16 kHz: {len(events)} heartbeats and breathing, no cough")
        print(f"no model bundle ({exc}); running the front end only")
        frontend_only(samples, args.duration_s)
        return 0
    print(f"bundle {model.bundle.source} ({model.backend_name} {model.precision}), loaded in {t_load * 1e3:.0f} ms")
    from acula.sdk.audio import iter_audio_blocks
    from acula.sdk.figure import SignalSketch, screening_figure, stack
    from acula.sdk.screen_cli import screen_result, stream_file

    path = shipped_cough()
    blocks = iter_audio_blocks(path)
    cough_sketch = SignalSketch(blocks.sample_rate_hz, blocks.n_frames)
    stream, windows = stream_file(model, blocks, cough_sketch.add)
    cough = screen_result(model, stream, windows, blocks)
    print(f"real cough ({CC_BY_COUGH}: Smith et al., Cough 2006, CC BY 2.0), {cough.duration_s:.2f} s:")
    _report(model, cough)
    print(f"synthetic heart and breathing (sdk/synth.py), {args.duration_s:.1f} s, "
          f"{sum(e.kind == 'heartbeat' for e in events)} heartbeats, no cough:")
    synth = model.screen(samples, 16000)
    _report(model, synth)
    for label_set in sorted(model.label_sets):
        probs = model.score(samples, 16000, label_set).probabilities or {}
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        print(f"  {label_set:6s}: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked))
    from acula.sdk.bench import time_hops

    hop, warm_up_ms, lat = time_hops(model, samples)
    print(f"latency per hop ({hop / 16000 * 1e3:.0f} ms of audio): p50 {np.percentile(lat, 50):.2f} ms, "
          f"p99 {np.percentile(lat, 99):.2f} ms (first inference {warm_up_ms:.0f} ms)")
    if args.out:
        synth_sketch = SignalSketch(16000, samples.size)
        synth_sketch.add(samples)
        figure = stack(screening_figure(cough_sketch, cough, model.screening.on, f"real cough: {CC_BY_COUGH}"),
                       screening_figure(synth_sketch, synth, model.screening.on,
                                        "synthetic heart and breathing (sdk/synth.py)"))
        try:
            figure.save(args.out)
        except OSError as exc:
            print(f"acula demo: cannot write {args.out}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {os.path.abspath(args.out)} (red: detected cough events; dashed: the on threshold)")
    return 0
