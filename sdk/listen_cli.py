"""``acula listen`` (live capture into an event store) and ``acula report DB`` (events over time as a PNG)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acula.sdk.cli import HelpFormatter, checked_type
from acula.sdk.screen_cli import _common, _load, add_cough_threshold
from acula.sdk.store import EventStore, StoreError

_speed = checked_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def listen_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula listen", description="Screen live audio from the default input "
                                     "(or a file played through the same live path) into an event store.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--seconds", type=float, default=None,
                        help="how long to listen (default: 30 s from a device, the whole file with --replay)")
    parser.add_argument("--db", default="acula_events.sqlite", help="SQLite event store")
    parser.add_argument("--input-device", default=None, help="sounddevice input device (name or index)")
    parser.add_argument("--device", dest="old_device", default=None, help=argparse.SUPPRESS)  # before 0.2
    parser.add_argument("--rate", type=int, default=16000, help="capture sample rate in Hz (input device)")
    parser.add_argument("--replay", metavar="FILE", help="play this file through the live path instead of a device")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_speed, default=1.0, help="with --replay: times real time")
    pace.add_argument("--fast", action="store_true", help="with --replay: as fast as the model runs, no drops")
    _common(parser, json_help="JSON on stdout: one object per window, then a summary object")
    add_cough_threshold(parser)
    args = parser.parse_args(argv)
    if args.old_device is not None:
        print("acula listen: --device is deprecated, use --input-device", file=sys.stderr)
        args.input_device = args.input_device or args.old_device
    if args.seconds is not None and not args.seconds > 0:
        print(f"acula listen: --seconds must be positive, got {args.seconds}", file=sys.stderr)
        return 1
    if args.replay is None and (args.fast or args.speed != 1.0):
        parser.error("--speed and --fast pace a --replay FILE")
    if args.replay is None:
        problem = input_device_problem(args.input_device, args.rate)
        if problem:  # before the store is opened: a failed start leaves no empty database behind
            print(f"acula listen: {problem}", file=sys.stderr)
            return 1
    model = _load(args)
    if model is None:
        return 1
    from acula.sdk.audio import AudioError
    from acula.sdk.capture import LiveCapture

    try:  # the replayed file's header is checked before the store exists
        cap = LiveCapture(model, args.rate, device=args.input_device, replay=args.replay,
                          speed=None if args.fast else args.speed)
    except (ImportError, AudioError) as exc:
        print(f"acula listen: {exc}", file=sys.stderr)
        return 1
    seconds = args.seconds if args.seconds is not None or args.replay else 30.0
    try:
        cap.store = store = EventStore(args.db)
    except StoreError as exc:
        print(f"acula listen: {exc}", file=sys.stderr)
        return 1

    def show(w: Any) -> None:
        if args.json:
            print(json.dumps(w.to_dict()), flush=True)
        else:
            p = f"{w.cough_probability:.2f}" if w.cough_probability is not None else "gated"
            print(f"{w.start_s:7.2f} s  cough p={p} {' '.join(w.problems)}", flush=True)

    try:
        stats = cap.run(seconds, on_window=show)
    except (ImportError, StoreError, AudioError) as exc:
        print(f"acula listen: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    summary = {"source": cap.source, "db": args.db, "windows": stats.windows,
               "events": [e.to_dict() for e in stats.events], "blocks_dropped": stats.blocks_dropped,
               "samples_dropped": stats.samples_dropped, "input_overflows": stats.input_overflows}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"listened to {cap.source}: {stats.windows} windows, {len(stats.events)} cough events, "
              f"{stats.blocks_dropped} blocks dropped ({stats.samples_dropped} samples), "
              f"{stats.input_overflows} input overflows; stored in {args.db}")
    return 0


def input_device_problem(device: str | None, rate_hz: int) -> str | None:
    """Why live capture cannot start on ``device`` at ``rate_hz`` (no PortAudio, no input device, a rate it
    refuses), or None when it can."""
    try:
        import sounddevice
    except (ImportError, OSError):
        return ("live capture needs: pip install 'acula-edge[audio]' and the system library libportaudio2 "
                "(apt install libportaudio2)")
    dev: str | int | None = int(device) if device is not None and device.isdigit() else device
    try:
        sounddevice.check_input_settings(device=dev, samplerate=rate_hz, channels=1, dtype="int16")
    except (sounddevice.PortAudioError, ValueError) as exc:
        which = f"input device {device!r}" if device is not None else "the default input device"
        return (f"cannot open {which} at {rate_hz} Hz ({exc}); list devices with "
                "python -m sounddevice, then pass --input-device NAME_OR_INDEX, or try the live path on a file "
                "with --replay FILE")
    return None


def report_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula report", description="Events over time and counts per hour, as PNG.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("db", help="event store written by 'acula listen'")
    parser.add_argument("--out", default="acula_report.png", help="image to write (PNG; the suffix picks the format)")
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
    try:
        store = EventStore(args.db, read_only=True)
        summaries, events = store.summaries(), store.events()
        store.close()
    except StoreError as exc:
        print(f"acula report: {exc}", file=sys.stderr)
        return 1
    for s in summaries:
        if not s["closed"]:
            end = (f"its end is taken as its last event or heartbeat, {s['duration_s']:.1f} s" if s["duration_s"]
                   else "it holds no event or heartbeat, so no rate is drawn")
            print(f"acula report: session {s['id']} was never closed (the capture stopped without ending it); "
                  f"{end}", file=sys.stderr)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), constrained_layout=True)
    for i, s in enumerate(summaries):
        evs = [e for e in events if e["session_id"] == s["id"]]
        ax1.broken_barh([(e["start_s"], e["end_s"] - e["start_s"]) for e in evs], (i - 0.4, 0.8), color="tab:red")
        ax1.plot([0, s["duration_s"]], [i, i], color="0.8", lw=1, zorder=0, ls="-" if s["closed"] else ":")
    ax1.set_yticks(range(len(summaries)), [_label(s) for s in summaries])
    ax1.set_xlabel("time in session (s)")
    ax1.set_title("cough events")
    ax2.bar([_label(s) for s in summaries], [s["events_per_hour"] or 0.0 for s in summaries], color="tab:blue")
    ax2.set_ylabel("coughs per hour")
    ax2.set_xlabel("session")
    try:
        fig.savefig(args.out, dpi=100)
    except (OSError, ValueError) as exc:  # a missing folder, no permission, an image format matplotlib lacks
        print(f"acula report: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    n_open = sum(not s["closed"] for s in summaries)
    print(f"wrote {args.out}: {len(summaries)} sessions ({n_open} never closed), {len(events)} events")
    return 0


def _label(summary: dict[str, Any]) -> str:
    return f"session {summary['id']}" + ("" if summary["closed"] else " (unclosed)")
