"""How far the cough operating point moves between builds of one recipe, under two rules (validation split only).

    python -m acula.benchmarks.operating_point_builds --corpus runs/corpus --bundle "NAME=BUNDLE" [--bundle ...] \
        [--splits val] --name OUT_NAME [--out DIR]

``acula export`` chooses the cough detector's 'on' threshold on validation recordings: the lowest at which at most
3 % of phone breathing and speech recordings (39 in val) and 1 % of stethoscope recordings raise an event
(``export.calibration.choose_operating_point``, rule ``clean``).  With 39 recordings the point is set by the one or two
highest non-cough recordings, and builds of one recipe that differ only in seed or CPU rounding land far apart.  Rule
``pooled`` asks the same targets of the phone recordings heard three ways at once, as recorded and as a phone call
delivers them (8 kHz; 8-bit mu-law at 8 kHz: ``benchmarks.cough_screening --phone``), 117 recordings, so that more
recordings set the point and the channels the detector meets in phone apps count; stethoscope recordings as recorded.

For each bundle (int8 ONNX, as the operating point was chosen) and channel, every recording of the split is screened
once by the SDK and its window cough probabilities are replayed through the operating point's event logic at the
grid ``choose_operating_point`` searches.  Per bundle: the manifest's point, the ``clean`` rule's point on the SDK's
windows (it must equal the manifest's on val: the check that the replay is the export's), the ``pooled`` rule's point,
and at each point the recordings flagged per group and channel.  Over all bundles, the paired difference between the
rules (``pooled`` minus ``clean``) in coughs flagged and in phone non-cough recordings flagged, with a 95 %
participant-bootstrap interval (the same participants drawn for both rules and every bundle; ``PAIRED``).  Writes
``OUT_NAME.json`` and ``OUT_NAME.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, write_results
from acula.export.operating_point import CHANNELS, RULES

#: the paired comparisons of the rules: name -> (operating-point group, channels summed over)
PAIRED = {"coughs flagged, three channels": ("cough", CHANNELS),
          "phone non-cough flagged, 8 kHz + mu-law": ("phone non-cough", ("8k", "mulaw8k"))}


def split_rows(corpus: str, splits: Sequence[str]) -> tuple[list[dict[str, Any]], Path]:
    rows = [json.loads(line) for line in (Path(corpus) / "manifest.jsonl").read_text().splitlines() if line.strip()]
    root = Path(json.loads((Path(corpus) / "corpus.json").read_text())["data_root"])
    return [r for r in rows if r["split"] in splits], root


def bundle_sequences(bundle: str, corpus: str, splits: Sequence[str]) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per channel, per operating-point group, each recording's window cough probabilities (int8 ONNX), in the
    order of :func:`group_persons`."""
    from acula.export.operating_point import channel_sequences

    from acula import sdk

    model = sdk.load(bundle, "onnxruntime", "int8")
    rows, root = split_rows(corpus, splits)
    return {c: channel_sequences(model, rows, root, c) for c in CHANNELS}


def group_persons(corpus: str, splits: Sequence[str]) -> dict[str, list[str]]:
    """Per operating-point group, the participant of each recording (``group_id``, else the path), in screening
    order: the unit the paired interval resamples."""
    from acula.benchmarks.cough_screening import participant
    from acula.export.calibration import screening_group

    out: dict[str, list[str]] = {}
    for r in split_rows(corpus, splits)[0]:
        out.setdefault(screening_group(r), []).append(participant(r))
    return out


def paired_difference(result: dict[str, Any], group: str, channels: Sequence[str], draws: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """``pooled`` minus ``clean``: recordings of ``group`` flagged, summed over ``channels`` and every bundle of
    ``result``, with a 95 % interval from resampling whole participants (the same draw for both rules, every
    channel and every bundle: a participant's recordings, and one recording's channels, are not independent)."""
    from acula.aligner.protocol import _resamples

    persons = np.asarray(result["persons"][group])
    diff = np.zeros(persons.shape[0])
    for b in result["bundles"].values():
        for c in channels:
            diff += np.array(list(b["pooled"]["per_recording"][c][group]), dtype=float)
            diff -= np.array(list(b["clean"]["per_recording"][c][group]), dtype=float)
    trials = persons.shape[0] * len(channels) * len(result["bundles"])
    sums = [float(diff[i].sum()) for i in _resamples(persons, draws, seed)]
    return {"difference": float(diff.sum()), "trials": trials,
            "ci95": [float(np.percentile(sums, 2.5)), float(np.percentile(sums, 97.5))],
            "participants": len(set(persons.tolist())), "draws": draws, "seed": seed}


def raises_event(on: float, probabilities: np.ndarray, window_s: float, hop_s: float) -> int:
    """1 where a recording's window cough probabilities raise an event at threshold ``on``, else 0."""
    from acula.export.calibration import events_at

    return int(events_at(probabilities, on, window_s, hop_s) > 0)


def measure(bundles: dict[str, str], corpus: str, splits: Sequence[str],
            points: dict[str, Any] | None = None) -> dict[str, Any]:
    """``points``: another run's result (val), whose points each bundle is held to here instead of choosing its
    own (test is never chosen on)."""
    from acula.export.calibration import FRAME_S, choose_operating_point
    from acula.export.operating_point import rule_sequences

    out: dict[str, Any] = {"bundles": {}, "persons": group_persons(corpus, splits)}
    for name, path in bundles.items():
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        window_s, hop_s = int(manifest["window_frames"]) * FRAME_S, int(manifest["hop_frames"]) * FRAME_S
        if points is not None and (name not in points["bundles"] or points["bundles"][name]["bundle"] != path):
            raise ValueError(f"{name}={path} is not a bundle of the run the points come from")
        by_channel = bundle_sequences(path, corpus, splits)
        row: dict[str, Any] = {"bundle": path, "manifest_on": manifest["screening"]["cough_on"]}
        for rule in RULES:
            if points is None:
                point = choose_operating_point(rule_sequences(rule, by_channel), 1.0, window_s, hop_s)
            else:
                point = {k: points["bundles"][name][rule][k] for k in ("on", "targets_met")}
                point["cough_on"] = point.pop("on")
            on = point["cough_on"]
            # per recording, in screening order, "1" where it raises an event (one string per group: compact JSON)
            flags = {c: {g: "".join(str(raises_event(on, q, window_s, hop_s)) for q in seqs)
                         for g, seqs in sorted(by_channel[c].items())} for c in CHANNELS}
            row[rule] = {"on": on, "targets_met": point["targets_met"], "per_recording": flags,
                         "flagged": {c: {g: [f.count("1"), len(f)] for g, f in flags[c].items()} for c in CHANNELS}}
        out["bundles"][name] = row
        print(f"{name}: manifest {row['manifest_on']}, clean {row['clean']['on']}, pooled {row['pooled']['on']}",
              file=sys.stderr)
    for rule in RULES:
        ons = [b[rule]["on"] for b in out["bundles"].values()]
        out[f"spread_{rule}"] = {"min": min(ons), "max": max(ons), "range": max(ons) - min(ons),
                                 "sd": float(np.std(ons))}
    out["paired"] = {name: paired_difference(out, group, channels) for name, (group, channels) in PAIRED.items()}
    return out


def to_markdown(r: dict[str, Any]) -> str:
    L = ["# The cough operating point across builds of one recipe: the export's rule and the pooled-channel rule\n",
         f"Generated by `{r['command']}`. Splits: {', '.join(r['splits'])}. 'clean': the export's rule (the lowest "
         "'on' with <= 3 % of phone breathing and speech and <= 1 % of stethoscope recordings raising an event, as "
         "recorded); 'pooled': the same targets with the phone recordings heard as recorded, at 8 kHz and 8-bit "
         "mu-law at 8 kHz together. Cells: recordings raising an event at the rule's point, per channel "
         "(clean / 8 kHz / mu-law)."
         + (" The points are the val run's, not chosen here." if r.get("points_from") else "") + "\n",
         "| bundle | manifest on | rule | on | coughs flagged | phone non-cough flagged | stethoscope flagged |",
         "|---|---|---|---|---|---|---|"]
    for name, b in sorted(r["bundles"].items()):
        for rule in RULES:
            f = b[rule]["flagged"]

            def cell(group: str, f: dict[str, Any] = f) -> str:
                return " / ".join(f"{f[c][group][0]}/{f[c][group][1]}" for c in CHANNELS)

            L.append(f"| {name} | {b['manifest_on']} | {rule} | {b[rule]['on']}"
                     + ("" if b[rule]["targets_met"] else " (targets not met)")
                     + f" | {cell('cough')} | {cell('phone non-cough')} | {cell('stethoscope')} |")
    L += ["", "| rule | lowest on | highest on | range | sd |", "|---|---|---|---|---|"]
    for rule in RULES:
        s = r[f"spread_{rule}"]
        L.append(f"| {rule} | {s['min']} | {s['max']} | {s['range']:.3f} | {s['sd']:.3f} |")
    if r.get("paired"):
        some = next(iter(r["paired"].values()))
        L += ["", f"Paired, `pooled` minus `clean`, summed over the {len(r['bundles'])} bundles (recordings x channels"
              f" x bundles; 95 % interval from {some['draws']} resamples of whole participants, seed {some['seed']}, "
              "the same draw for both rules, every channel and every bundle):", "",
              "| comparison | pooled minus clean | 95 % interval | trials | participants |", "|---|---|---|---|---|"]
        for name, d in sorted(r["paired"].items()):
            lo, hi = d["ci95"]
            L.append(f"| {name} | {d['difference']:+.0f} | [{lo:+.0f}, {hi:+.0f}] | {d['trials']} | "
                     f"{d['participants']} |")
    return "\n".join(L) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.operating_point_builds", __doc__, argv)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--splits", nargs="+", default=["val"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--points-from", metavar="JSON",
                        help="hold each bundle to the points of this earlier run (its val run) instead of choosing "
                             "them on these splits: how test is scored")
    args = parser.parse_args(argv)
    bundles = dict(b.split("=", 1) for b in args.bundle)
    points = None if args.points_from is None else json.loads(Path(args.points_from).read_text())
    r = measure(bundles, args.corpus, args.splits, points)
    r["splits"] = list(args.splits)
    if points is not None:
        r["points_from"] = points["command"]
    r["command"] = ("python -m acula.benchmarks.operating_point_builds --corpus runs/corpus "
                    + " ".join(f'--bundle "{k}={v}"' for k, v in bundles.items())
                    + f" --splits {' '.join(args.splits)} --name {args.name}"
                    + (f" --points-from {args.points_from}" if args.points_from else ""))
    write_results(f"{args.out}/{args.name}.json", r, to_markdown)
    print(to_markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
