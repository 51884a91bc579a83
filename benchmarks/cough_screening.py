"""Cough screening at the bundle's operating point on held-out real recordings (SDK only).

    python -m acula.benchmarks.cough_screening --bundle default --corpus runs/corpus [--splits test]
                                               [--phone 8k|mulaw8k] [--grid] [--json OUT]

Reports, per group of recordings: the fraction with at least one cough event,
false alarms per hour on non-cough audio, and recall on cough recordings.  The
corpus manifest only supplies paths, labels and splits; audio goes through
``sdk.load_audio`` and ``Model.screen`` as on a device.

With YAMNet present (``--yamnet``, default ../shared/weights/yamnet.tflite), the
same recordings also go through YAMNet's own Cough class as a reference
detector in the same run (a recording counts when any 0.975 s patch scores at
least ``--yamnet-threshold``, a fixed 0.5 never tuned here), and the table says
how many of the recordings our detector flags are flagged by YAMNet too: on a
non-cough recording, a hint (not proof) that it holds a cough after all.

``--phone 8k`` / ``--phone mulaw8k`` give every recording to the SDK as a phone call delivers it: resampled to
8 kHz (anti-aliased polyphase, ``aligner.invariance.phone_call_8k``), 8-bit mu-law (mu 255, the invariance
suite's coder, which has no zero code: digital silence decodes to +-8.6e-5) coded and decoded for ``mulaw8k``,
and handed over at 8000 Hz, so the SDK's own resampler brings it to the model's rate.  Recordings at 8 kHz or
below keep their rate.  The operating point stays the bundle's (chosen on clean val audio); nothing
is tuned to the phone channel.  YAMNet scores the same 8 kHz audio, resampled to its 16 kHz by ``sdk.audio.resample``.

``--grid`` also replays every recording's window cough probabilities through the SDK's event logic at other 'on'
thresholds (``export.calibration.events_at`` with the bundle's own settings, 'off' scaled with 'on') and reports,
per threshold, the recordings of each group that raise an event, and the lowest threshold that meets the
operating point's targets (<= 3 % phone non-cough, <= 1 % stethoscope recordings): what moving the threshold
would buy on this split and channel.  Read it on val; a threshold is never chosen on test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.aligner.protocol import _resamples, auroc, group_bootstrap
from acula.sdk.runtimes import BACKENDS

GROUPS = {"cough (phone)": lambda r: r["modality"] == "cough",
          "breathing + speech (phone)": lambda r: r["modality"] in ("breathing", "speech"),
          "heart (stethoscope)": lambda r: r["modality"] == "heart",
          "lung (stethoscope)": lambda r: r["modality"] == "lung",
          "environment (ESC-10)": lambda r: r["modality"] == "environment"}


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n (sound at k = 0 and k = n, unlike the normal one)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def flagged_cell(k: int, n: int) -> str:
    """A table cell for k of n recordings flagged: the share, the counts and the 95 % Wilson interval."""
    lo, hi = wilson(k, n)
    return f"{k / n:.1%} ({k}/{n}; {lo:.1%}-{hi:.1%})"


#: draws and seed of every interval here (the model card quotes them)
BOOTSTRAP_DRAWS, BOOTSTRAP_SEED = 2000, 0


def participant(row: dict[str, Any]) -> str:
    """The participant a corpus recording belongs to (``group_id``, else its path): the unit every interval here
    resamples."""
    return str(row.get("group_id", row["path"]))


def participant_bootstrap(trials: list[tuple[str, bool]], n: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                          ) -> tuple[float, float]:
    """95 % interval of the fraction of flagged recordings from resampling whole participants with replacement
    (``aligner.protocol``'s resampler): the recordings of one participant are correlated, which widens it where
    the flagged recordings cluster in a few participants.  ``trials``: (participant, flagged) per recording."""
    if not trials:
        return float("nan"), float("nan")
    people = np.asarray([person for person, _ in trials])
    flagged = np.asarray([bool(v) for _, v in trials], dtype=float)
    draws = [float(flagged[i].mean()) for i in _resamples(people, n, seed)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


#: non-cough groups each AUROC row scores against the cough recordings: the task table's cough_vs_noncough
#: population (phone recordings and ESC-10), then every non-cough recording
AUROC_NEGATIVES = {"phone + ESC-10 (the task table's population)": ("breathing + speech (phone)",
                                                                    "environment (ESC-10)"),
                   "every non-cough recording": tuple(g for g in GROUPS if g != "cough (phone)")}


def table(data: dict[str, Any]) -> list[str]:
    """Markdown rows of a saved result (the README and the model card render it).  Each fraction flagged
    comes with its count and 95 % Wilson interval: with some twenty coughs and forty phone recordings a
    split, one recording moves a rate by 2.5 to 5 points."""
    yam = data.get("yamnet")
    head = f" | YAMNet Cough >= {yam['threshold']} | flagged by both |" if yam else " |"
    who = any("participants" in g for g in data["groups"].values())
    lines = [f"| recordings | n | with >= 1 event (95 % CI) |{' participants flagged |' if who else ''} "
             f"events per hour{head}", "|---|---|---|---|" + ("---|" if who else "") + ("---|---|" if yam else "")]
    for name, g in data["groups"].items():
        extra = (f" | {g['yamnet_flagged'] / g['n']:.1%} | {g['both_flagged']} |" if yam and "yamnet_flagged" in g
                 else " |")
        k = int(g.get("flagged", round(g["fraction_flagged"] * g["n"])))
        people = (f" {g.get('participants_flagged', '?')}/{g.get('participants', '?')} |" if who else "")
        lines.append(f"| {name} | {g['n']} | {flagged_cell(k, g['n'])} |{people} "
                     f"{g['events_per_hour']:.1f}{extra}")
    if data.get("auroc"):
        lines += ["", "Recording-level AUROC, cough against non-cough (score: a recording's highest window cough "
                  "probability; YAMNet: its highest Cough class score; 95 % participant-bootstrap interval):", "",
                  "| cough against | scorer | coughs / non-coughs | AUROC (95 % CI) |", "|---|---|---|---|"]
        lines += [f"| {r['population']} | {r['scorer']} | {r['n_cough']} / {r['n_noncough']} | {r['auroc']:.3f} "
                  f"({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}) |" for r in data["auroc"]]
    return lines


def auroc_rows(scores: dict[str, list[tuple[str, str, float]]]) -> list[dict[str, Any]]:
    """Recording-level AUROC of cough against each ``AUROC_NEGATIVES`` population, per scorer, with a 95 %
    participant-bootstrap interval (``aligner.protocol``'s AUROC and group bootstrap).  ``scores``: scorer ->
    (group, participant, score) per recording."""
    rows = []
    for population, negatives in AUROC_NEGATIVES.items():
        for scorer, recs in scores.items():
            trials = [(person, (group == "cough (phone)", score)) for group, person, score in recs
                      if group == "cough (phone)" or group in negatives]
            y = np.asarray([positive for _, (positive, _) in trials])
            score = np.asarray([sc for _, (_, sc) in trials])
            if len(set(y.tolist())) < 2:
                continue
            people = np.asarray([person for person, _ in trials])
            rows.append({"population": population, "scorer": scorer, "n_cough": int(y.sum()),
                         "n_noncough": int((~y).sum()), "auroc": auroc(y, score),
                         "ci95": list(group_bootstrap(y, score, people, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED))})
    return rows


#: the 'on' thresholds ``--grid`` replays
GRID = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
#: the stethoscope groups, pooled for the operating point's <= 1 % target
STETHOSCOPE = ("heart (stethoscope)", "lung (stethoscope)")


def threshold_grid(sequences: dict[str, list[np.ndarray]], model: Any) -> dict[str, Any]:
    """Per 'on' threshold of ``GRID`` (and the bundle's own), each group's recordings that raise an event when
    their window cough probabilities (NaN: gated out) are replayed through the SDK's event logic with the bundle's
    own settings ('off' scaled with 'on'), and the lowest threshold meeting ``export.calibration.SCREENING_TARGETS``
    (``meets_targets`` None where the split lacks phone non-cough or stethoscope recordings).  A 2 s window is
    longer than the minimum event, so a recording is flagged when its (smoothed) window probability reaches 'on'
    outside a refractory gap; at the bundle's own threshold the counts must equal the screening run's."""
    from acula.export.calibration import SCREENING_TARGETS, events_at

    cfg = model.frontend.config
    window_s = ((model.window_frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate_hz  # a window's span
    hop_s = model.hop_frames * cfg.hop_s
    own = float(model.screening.on)
    rows = []
    for on in sorted({*GRID, own}):
        flagged = {g: int(sum(events_at(q, on, window_s, hop_s, model.screening) > 0 for q in seqs))
                   for g, seqs in sequences.items()}
        n = {g: len(seqs) for g, seqs in sequences.items()}
        steth = sum(flagged[g] for g in STETHOSCOPE), sum(n[g] for g in STETHOSCOPE)
        phone = flagged["breathing + speech (phone)"], n["breathing + speech (phone)"]
        # None: a group the split does not hold, so the targets cannot be judged here
        meets = (None if not phone[1] or not steth[1] else
                 phone[0] / phone[1] <= SCREENING_TARGETS["phone non-cough"]
                 and steth[0] / steth[1] <= SCREENING_TARGETS["stethoscope"])
        rows.append({"on": on, "flagged": flagged, "n": n, "meets_targets": meets})
    lowest = next((r["on"] for r in rows if r["meets_targets"]), None)
    return {"rows": rows, "bundle_on": own, "lowest_meeting_targets": lowest, "targets": dict(SCREENING_TARGETS)}


def grid_table(grid: dict[str, Any]) -> list[str]:
    """Markdown rows of :func:`threshold_grid`'s result."""
    names = list(grid["rows"][0]["n"])
    lines = ["| on | " + " | ".join(names) + " | meets the targets |", "|---" * (len(names) + 2) + "|"]
    for r in grid["rows"]:
        mark = " (the bundle's)" if r["on"] == grid["bundle_on"] else ""
        meets = {True: "yes", False: "no", None: "n/a"}[r["meets_targets"]]
        lines.append(f"| {r['on']:g}{mark} | " + " | ".join(f"{r['flagged'][g]}/{r['n'][g]}" for g in names)
                     + f" | {meets} |")
    lines.append(f"Lowest threshold meeting the targets here: {grid['lowest_meeting_targets']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.cough_screening", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--backend", default="onnxruntime", choices=sorted(BACKENDS), help="(default onnxruntime)")
    parser.add_argument("--precision", default="int8", help="int8 (what the operating point was chosen on) or fp32")
    parser.add_argument("--corpus", required=True, help="corpus directory (manifest.jsonl) naming the recordings")
    parser.add_argument("--data", help="data root (default: the corpus' own)")
    parser.add_argument("--splits", nargs="*", default=["test"])
    parser.add_argument("--json")
    parser.add_argument("--yamnet", default="../shared/weights/yamnet.tflite",
                        help="YAMNet TFLite for the reference column ('' or a missing file: no reference)")
    parser.add_argument("--yamnet-threshold", type=float, default=0.5)
    parser.add_argument("--grid", action="store_true",
                        help="the recordings flagged per group at other 'on' thresholds (replayed event logic)")
    parser.add_argument("--phone", choices=("8k", "mulaw8k"),
                        help="give each recording to the SDK as a phone call delivers it: at 8 kHz (mu-law coded with "
                             "mulaw8k)")
    args = parser.parse_args(argv)

    from acula import sdk

    yamnet = None
    if args.yamnet and Path(args.yamnet).is_file():
        from acula.sdk.yamnet import YAMNET_CLASSES, YAMNet

        yamnet = YAMNet(args.yamnet, max_patches=None)

    model = sdk.load(args.bundle, args.backend, args.precision)
    manifest = Path(args.corpus) / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    root = Path(args.data or json.loads((Path(args.corpus) / "corpus.json").read_text())["data_root"])
    rows = [r for r in rows if r["split"] in args.splits]
    stats = {name: {"n": 0, "flagged": 0, "events": 0, "hours": 0.0, **({"yamnet_flagged": 0, "both_flagged": 0}
                                                                        if yamnet else {})} for name in GROUPS}
    # recordings of one participant are not independent trials: count participants too, and keep the flagged paths
    flagged_paths: dict[str, list[str]] = {name: [] for name in GROUPS}
    trials: dict[str, list[tuple[str, bool]]] = {name: [] for name in GROUPS}
    scores: dict[str, list[tuple[str, str, float]]] = {"detector": [], **({"YAMNet Cough": []} if yamnet else {})}
    sequences: dict[str, list[np.ndarray]] = {name: [] for name in GROUPS}  # window cough probabilities, for --grid
    from acula.export.operating_point import screened, window_probabilities

    for r, result, samples, rate in screened(model, rows, root, args.phone):
        group = next((g for g, pick in GROUPS.items() if pick(r)), None)
        if group is None:
            continue
        s = stats[group]
        s["n"] += 1
        s["flagged"] += bool(result.events)
        s["events"] += len(result.events)
        person = participant(r)
        trials[group].append((person, bool(result.events)))
        if result.events:
            flagged_paths[group].append(r["path"])
        s["hours"] += result.duration_s / 3600
        sequences[group].append(window_probabilities(result))
        # the recording's score for the AUROC rows: its highest window cough probability (0 when the
        # signal-quality gate left no window scored: the detector cannot fire there)
        peak = result.peak_window()
        scores["detector"].append((group, person, float(peak.cough_probability or 0.0) if peak else 0.0))
        if yamnet is not None:
            from acula.sdk.audio import resample

            yam_in = samples if rate == 16000 else resample(samples, rate, 16000)
            yam_score = float(yamnet.run(yam_in)[1][YAMNET_CLASSES["cough"]])
            scores["YAMNet Cough"].append((group, person, yam_score))
            yam = yam_score >= args.yamnet_threshold
            s["yamnet_flagged"] += yam
            s["both_flagged"] += yam and bool(result.events)
    screening = model.bundle.manifest.get("screening", {})
    print(f"cough screening, bundle {model.bundle.source} ({args.backend} {args.precision}), operating point "
          f"on={screening.get('cough_on')}, splits {', '.join(args.splits)}"
          + (f", as a phone call delivers it ({args.phone})" if args.phone else ""))
    out = {}
    for name, s in stats.items():
        if s["n"]:
            out[name] = {**s, "fraction_flagged": s["flagged"] / s["n"],
                         "events_per_hour": s["events"] / s["hours"] if s["hours"] else 0.0,
                         "participants": len({p for p, _ in trials[name]}),
                         "participants_flagged": len({p for p, f in trials[name] if f}),
                         "flagged_paths": flagged_paths[name],
                         "participant_bootstrap_ci95": list(participant_bootstrap(trials[name]))}
    reference = ({"yamnet": {"path": args.yamnet, "class": "Cough", "threshold": args.yamnet_threshold}}
                 if yamnet else {})
    rocs = auroc_rows(scores)
    print("\n".join(table({"groups": out, **reference, "auroc": rocs})))
    neg = [v for k, v in out.items() if not k.startswith("cough")]
    hours = sum(v["hours"] for v in neg)
    summary = {"recall_on_cough_recordings": out.get("cough (phone)", {}).get("fraction_flagged"),
               "false_alarms_per_hour_noncough": sum(v["events"] for v in neg) / hours if hours else None}
    print(json.dumps(summary))
    grid = threshold_grid(sequences, model) if args.grid else None
    if grid is not None:
        own = next(r for r in grid["rows"] if r["on"] == grid["bundle_on"])
        grid["matches_run"] = all(own["flagged"][g] == stats[g]["flagged"] for g in GROUPS)
        if not grid["matches_run"]:
            print("error: the replayed event logic disagrees with the screening run at the bundle's own threshold; "
                  "the grid would not be the SDK's", file=sys.stderr)
            return 1
        print("\n".join(grid_table(grid)))
    if args.json:
        Path(args.json).write_text(json.dumps({"groups": out, **summary, "operating_point": screening, "splits":
                                               args.splits, "phone": args.phone, "backend": args.backend,
                                               "precision": args.precision, "auroc": rocs, **reference,
                                               **({"grid": grid} if grid is not None else {})}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
