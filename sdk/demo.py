"""``acula demo``: synthesise a short body-sound recording and screen it with the default bundle.

Needs no data and no network.  Prints the events, clip scores for each label
set and the latency per hop, and writes a plot (with matplotlib installed).
Without a bundle (``--bundle`` or a packaged default) it runs the front end only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from sdk.cli import HelpFormatter
from sdk.frontend import LogMelFrontend
from sdk.synth import synth_recording


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


def plot(path: str, samples: np.ndarray, result: object, truth: list) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = np.arange(samples.size) / 16000
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, constrained_layout=True)
    ax1.plot(t, samples, lw=0.4, color="0.3")
    for e in truth:
        if e.kind == "cough":
            ax1.axvspan(e.start_s, e.end_s, color="tab:orange", alpha=0.3)
    ax1.set_title("synthetic recording (orange: generated coughs)")
    windows = result.windows  # type: ignore[attr-defined]
    centres = [(w.start_s + w.end_s) / 2 for w in windows]
    ax2.plot(centres, [w.cough_probability or 0 for w in windows], marker="o", label="cough probability")
    for e in result.events:  # type: ignore[attr-defined]
        ax2.axvspan(e.start_s, e.end_s, color="tab:red", alpha=0.2)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("time (s)")
    ax2.set_title("screening (red: detected events)")
    fig.savefig(path, dpi=90)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula demo", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--duration-s", type=float, default=10.0, help="length of the generated recording")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--bundle", default="default", help="bundle to screen with")
    parser.add_argument("--plot", default="acula_demo.png", help="where to write the plot ('' for none)")
    args = parser.parse_args(argv)

    samples, events = synth_recording(duration_s=args.duration_s, seed=args.seed)
    print(f"synthesised {args.duration_s:.1f} s at 16 kHz: "
          f"{sum(e.kind == 'heartbeat' for e in events)} heartbeats, {sum(e.kind == 'cough' for e in events)} coughs "
          f"at {', '.join(f'{e.start_s:.1f} s' for e in events if e.kind == 'cough') or '-'}")
    from sdk.bundle import BundleError
    from sdk.model import load

    try:
        t0 = time.perf_counter()
        model = load(args.bundle)
        t_load = time.perf_counter() - t0
    except BundleError as exc:
        print(f"no model bundle ({exc}); running the front end only")
        frontend_only(samples, args.duration_s)
        return 0
    from sdk.bench import time_hops

    hop, warm_up_ms, lat = time_hops(model, samples)
    print(f"first inference (warm-up) {warm_up_ms:.0f} ms")
    result = model.screen(samples, 16000)
    print(f"bundle {model.bundle.source} ({model.backend_name} {model.precision}), loaded in {t_load * 1e3:.0f} ms")
    peak = result.peak_window()
    on = model.bundle.manifest.get("screening", {}).get("cough_on")
    detail = ""
    if peak is not None and on is not None:
        detail = (f" (on threshold {on}; highest window cough probability {peak.cough_probability:.2f} at "
                  f"{peak.start_s:.2f} s)")
        if not result.events:
            detail += "; the synthetic bursts are not real coughs, and the detector was calibrated on real ones"
    print(f"cough events: {len(result.events)}{detail}")
    for e in result.events:
        print(f"  {e.start_s:6.2f}-{e.end_s:6.2f} s  confidence {e.confidence:.2f}")
    for label_set in sorted(model.label_sets):
        probs = model.score(samples, 16000, label_set).probabilities or {}
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        print(f"  {label_set:6s}: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked))
    print(f"latency per hop ({hop / 16000 * 1e3:.0f} ms of audio): p50 {np.percentile(lat, 50):.2f} ms, "
          f"p99 {np.percentile(lat, 99):.2f} ms")
    if args.plot:
        if plot(args.plot, samples, result, events):
            print(f"wrote {args.plot}")
        else:
            print("no plot: matplotlib is not installed (pip install 'acula-edge[plot]')")
    return 0
