"""``acula listen`` (live capture into an event store) and ``acula report DB`` (events over time as a PNG)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sdk.screen_cli import _common, _load
from sdk.store import EventStore


def listen_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula listen", description="Screen live audio from the default input.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to listen")
    parser.add_argument("--db", default="acula_events.sqlite", help="SQLite event store")
    parser.add_argument("--device", default=None, help="sounddevice input device (name or index)")
    parser.add_argument("--rate", type=int, default=16000)
    _common(parser)
    args = parser.parse_args(argv)
    model = _load(args)
    if model is None:
        return 1
    from sdk.capture import LiveCapture

    store = EventStore(args.db)
    try:
        cap = LiveCapture(model, args.rate, device=args.device, store=store)
        stats = cap.run(args.seconds, on_window=lambda w: print(
            f"{w.start_s:7.2f} s  cough p={w.cough_probability if w.cough_probability is not None else 'gated'}"
            f" {' '.join(w.problems)}") if not args.json else None)
    except ImportError as exc:
        print(f"acula listen: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"listened {args.seconds:.0f} s: {stats.windows} windows, {len(stats.events)} cough events, "
          f"{stats.blocks_dropped} blocks dropped ({stats.samples_dropped} samples), "
          f"{stats.input_overflows} input overflows; stored in {args.db}")
    return 0


def report_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula report", description="Events over time and counts per hour, as PNG.")
    parser.add_argument("db")
    parser.add_argument("--out", default="acula_report.png")
    args = parser.parse_args(argv)
    if not Path(args.db).is_file():
        print(f"acula report: no event store at {args.db}", file=sys.stderr)
        return 1
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("acula report: plots need: pip install 'acula-edge[plot]'", file=sys.stderr)
        return 1
    store = EventStore(args.db)
    sessions, events = store.sessions(), store.events()
    store.close()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), constrained_layout=True)
    for i, s in enumerate(sessions):
        evs = [e for e in events if e["session_id"] == s["id"]]
        ax1.broken_barh([(e["start_s"], e["end_s"] - e["start_s"]) for e in evs], (i - 0.4, 0.8), color="tab:red")
        ax1.plot([0, s["duration_s"] or 0], [i, i], color="0.8", lw=1, zorder=0)
    ax1.set_yticks(range(len(sessions)), [f"session {s['id']}" for s in sessions])
    ax1.set_xlabel("time in session (s)")
    ax1.set_title("cough events")
    rates = [len([e for e in events if e["session_id"] == s["id"]]) / max(s["duration_s"] or 1e-9, 1e-9) * 3600
             for s in sessions]
    ax2.bar([f"{s['id']}" for s in sessions], rates, color="tab:blue")
    ax2.set_ylabel("coughs per hour")
    ax2.set_xlabel("session")
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}: {len(sessions)} sessions, {len(events)} events")
    return 0
