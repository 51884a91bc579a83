"""Cough events on real recordings, as recorded, over an 8 kHz mu-law phone channel and 24 dB quieter (SDK only).

    python -m acula.benchmarks.cough_events --corpus ../main/runs/corpus [--splits test] [--stethoscope] [--json [OUT]]

``--json OUT`` writes OUT and the tables beside it (OUT with ``.md``).

Per group of recordings and channel: the fraction with at least one cough event (recall on coughs, false flags
elsewhere, 95 % Wilson interval), the fraction the quality gate leaves unscored, and the events per flagged
recording before (one per window-level event) and after the split into single coughs.  Groups: Coswara
``cough-heavy`` / ``cough-shallow`` (several coughs each), the nine Smith 2006 single coughs (one each: the split
must give 1), Coswara breathing / counting / vowel and ESC-10 (non-coughs), optionally ICBHI + PhysioNet
stethoscope recordings.  Channels come from ``aligner.invariance.apply_transform`` (numpy / scipy only).

A sanity check of the split against hand counts: six Coswara ``cough-heavy`` recordings of the validation split
whose coughs were counted on a spectrogram (broadband onsets), compared with the split of the whole recording's
envelope and with the events ``Model.screen`` raises.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import emit_json
from acula.benchmarks.cough_screening import wilson

CHANNELS = {"recorded": "none", "8 kHz mu-law": "mulaw8k", "-24 dB": "gain-24"}

GROUPS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "cough (Coswara, phone)": lambda r: r["dataset"] == "coswara" and r["modality"] == "cough",
    "cough (Smith 2006, single)": lambda r: r["dataset"] == "smith2006",
    "breathing + speech (Coswara, phone)": lambda r: r["modality"] in ("breathing", "speech"),
    "environment (ESC-10)": lambda r: r["modality"] == "environment",
    "heart + lung (stethoscope)": lambda r: r["modality"] in ("heart", "lung"),
}
COUGH_GROUPS = ("cough (Coswara, phone)", "cough (Smith 2006, single)")

#: coughs counted by eye on a spectrogram (a broadband onset each), validation split
HAND_COUNTS = {"1AuoEhB8vAfCtxTFFV0W916yBqA3": 3, "FGRDO4IBbAejR0WHD5YbkXTCasg2": 5,
               "SY4Ekt5W4VZdeIm5r3iLmjxz9pA2": 6, "5ZDF98UQUxcVuS9VhaWxKlVnXvs1": 4,
               "O4BFgxvAgwbwRGZMkMBJRFnGBbd2": 3, "KL32QXSSnLZlRRT2B6rQQQKgpx12": 6}


def smith2006_rows(data: Path) -> list[dict[str, Any]]:
    audio = data / "smith2006_cough" / "audio"
    return [{"dataset": "smith2006", "modality": "cough", "record_id": f"smith2006/{p.stem}", "split": "test",
             "path": str(p.relative_to(data))} for p in sorted(audio.glob("*.flac"))]


def window_events(model: Any, windows: list[Any]) -> int:
    """Window-level events (the detector without the split) on already-scored windows."""
    from acula.sdk.screening import EventDetector

    det = EventDetector(replace(model.screening, split_coughs=False))
    events = []
    for w in windows:
        events += det.update(w.start_s, w.end_s, w.cough_probability)
    return len(events + det.flush())


def measure(model: Any, rows: list[dict[str, Any]], data: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    from acula.aligner.invariance import apply_transform

    from acula import sdk

    out = []
    for i, r in enumerate(rows):
        try:
            clip = sdk.load_audio(data / r["path"], model.sample_rate_hz, r.get("start_s"), r.get("end_s"))
        except sdk.AudioError as e:
            out.append({"record_id": r["record_id"], "unreadable": str(e)})
            continue
        row: dict[str, Any] = {"record_id": r["record_id"]}
        for channel, name in CHANNELS.items():
            x = apply_transform(name, clip.samples, clip.sample_rate_hz)
            res = model.screen(x, clip.sample_rate_hz)
            row[channel] = {"n_events": len(res.events), "n_window_events": window_events(model, res.windows),
                            "not_scored": "not_scored" in res.problems,
                            "events": [(e.start_s, e.end_s) for e in res.events]}
        out.append(row)
        if (i + 1) % 25 == 0:
            log(f"  {i + 1}/{len(rows)}")
    return out


def summarise(rows: list[dict[str, Any]], cough: bool) -> dict[str, Any]:
    scored = [r for r in rows if "unreadable" not in r]
    out: dict[str, Any] = {"n": len(scored), "n_unreadable": len(rows) - len(scored)}
    for channel in CHANNELS:
        k = sum(r[channel]["n_events"] > 0 for r in scored)
        flagged = [r[channel] for r in scored if r[channel]["n_events"] > 0]
        out[channel] = {
            "flagged": k, "fraction_flagged": k / len(scored) if scored else float("nan"),
            "wilson95": wilson(k, len(scored)),
            "not_scored": sum(r[channel]["not_scored"] for r in scored),
            "events_per_flagged_before_split": (float(np.mean([f["n_window_events"] for f in flagged]))
                                                if flagged else None),
            "events_per_flagged_after_split": float(np.mean([f["n_events"] for f in flagged])) if flagged else None,
        }
        if cough:
            out[channel]["n_events_after_split"] = [r[channel]["n_events"] for r in scored]
    return out


def hand_count_check(model: Any, data: Path) -> list[dict[str, Any]]:
    from acula.sdk.screening import envelope_db, split_bursts

    from acula import sdk

    out = []
    for pid, n in HAND_COUNTS.items():
        path = data / "coswara" / "audio" / pid / "cough-heavy.flac"
        if not path.is_file():
            continue
        x = sdk.load_audio(path, model.sample_rate_hz).samples.astype(np.float64)
        hop = round(model.screening.frame_s * model.sample_rate_hz)
        power = np.mean(np.square(x[: x.size // hop * hop].reshape(-1, hop)), axis=1)
        res = model.screen(x.astype(np.float32), model.sample_rate_hz)
        out.append({"participant": pid, "hand_count": n,
                    "split_of_whole_recording": len(split_bursts(envelope_db(power), model.screening)),
                    "events": len(res.events), "window_events": window_events(model, res.windows)})
    return out


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| group | n | channel | flagged (95 % CI) | not scored | events / flagged rec., before -> after split |",
             "|---|---|---|---|---|---|"]
    for name, g in result["groups"].items():
        for channel in CHANNELS:
            c = g[channel]
            lo, hi = c["wilson95"]
            before, after = c["events_per_flagged_before_split"], c["events_per_flagged_after_split"]
            split = "-" if before is None else f"{before:.2f} -> {after:.2f}"
            lines.append(f"| {name} | {g['n']} | {channel} | {c['flagged']} = {c['fraction_flagged']:.3f} "
                         f"({lo:.2f}-{hi:.2f}) | {c['not_scored']} | {split} |")
    lines += ["", "| participant (val) | hand count | split of whole recording | events (window events) |",
              "|---|---|---|---|"]
    lines += [f"| {h['participant'][:8]} | {h['hand_count']} | {h['split_of_whole_recording']} | "
              f"{h['events']} ({h['window_events']}) |" for h in result["hand_counts"]]
    return lines


def markdown(result: dict[str, Any]) -> str:
    """``cough_events.md``: the command that measured it and both tables, from the results file alone."""
    title = (f"# Cough events ({result['command']}, {', '.join(result['splits'])} split; {result['bundle']} bundle "
             f"{result['precision']})")
    return "\n".join([title, "", *table(result)]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.cough_events", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--corpus", required=True, help="corpus directory (manifest.jsonl: paths, labels, splits)")
    parser.add_argument("--data", default=os.environ.get("ACULA_DATA", "../shared/data"))
    parser.add_argument("--splits", default="test", help="comma-separated splits to report on")
    parser.add_argument("--stethoscope", action="store_true", help="also the ICBHI + PhysioNet recordings (slow)")
    parser.add_argument("--json", nargs="?", const="-", help="write the full result as JSON (to OUT, or stdout)")
    args = parser.parse_args(argv)

    from acula import sdk

    data = Path(args.data)
    model = sdk.load(args.bundle, precision=args.precision)
    splits = set(args.splits.split(","))
    manifest = Path(args.corpus) / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] in splits] + smith2006_rows(data)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    groups: dict[str, Any] = {}
    per_record: dict[str, Any] = {}
    for name, member in GROUPS.items():
        if name.startswith("heart") and not args.stethoscope:
            continue
        chosen = [r for r in rows if member(r)]
        log(f"{name}: {len(chosen)} recordings")
        measured = measure(model, chosen, data, log)
        groups[name] = summarise(measured, name in COUGH_GROUPS)
        per_record[name] = measured
    result = {"command": " ".join(["python -m acula.benchmarks.cough_events", *argv]), "bundle": args.bundle,
              "precision": args.precision, "splits": sorted(splits),
              "operating_point": {k: v for k, v in vars(model.screening).items()},
              "groups": groups, "hand_counts": hand_count_check(model, data)}
    print("\n".join(table(result)), file=sys.stderr if args.json == "-" else sys.stdout)
    emit_json({**result, "per_record": per_record}, args.json, indent=1)
    if args.json and args.json != "-":
        Path(args.json).with_suffix(".md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
