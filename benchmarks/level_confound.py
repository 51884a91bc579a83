"""How much recording level alone tells about the heart label: the confound a level-sensitive model can learn.

    python -m acula.benchmarks.level_confound [--corpus runs/corpus] [--data ../shared/data] [--json OUT]

For every PhysioNet 2016 record of the corpus, the recording's RMS and peak level (dBFS, at its source rate, as
the SDK's quality meter measures them) is taken as a score, quieter = more abnormal, and its AUROC against the
abnormal label is reported per split group (train; val + test) and per database, with a 95 % record bootstrap
interval on the pooled figures.  No model is involved.  An AUROC well above 0.5 means the labels of those
recordings can be told apart by level alone, so a model that reads level gains AUROC there, and a model made
level-invariant gives that gain back: the gain-shift target and the AUROC targets pull against each other on
this data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, write_results

SPLITS = {"train": ("train",), "val + test": ("val", "test")}


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Recording level alone against the heart label (PhysioNet 2016)", "",
             "Command: `python -m acula.benchmarks.level_confound --json benchmarks/results/level_confound.json`", "",
             "Score: quieter = more abnormal (RMS or peak dBFS of the recording at its source rate; no model).  "
             "AUROC above 0.5: the label can be told from the level alone.", "",
             "| records | database | n (abnormal) | AUROC, RMS level | AUROC, peak level |", "|---|---|---|---|---|"]
    for group, out in res["groups"].items():
        r, p = out["rms_dbfs"], out["peak_dbfs"]
        lines.append(f"| {group} | all | {r['n']} ({r['n_pos']}) | {r['auroc']:.3f} [{r['ci95'][0]:.2f}, "
                     f"{r['ci95'][1]:.2f}] | {p['auroc']:.3f} [{p['ci95'][0]:.2f}, {p['ci95'][1]:.2f}] |")
        for db, d in out["by_database"].items():
            lines.append(f"| {group} | {db} | {d['n']} ({d['n_pos']}) | {d['rms_dbfs']:.3f} | {d['peak_dbfs']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.level_confound", __doc__, argv)
    parser.add_argument("--corpus", default="runs/corpus")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--json", help="write the figures here, and the table beside them (.md)")
    args = parser.parse_args(argv)
    from acula.aligner import protocol as P
    from acula.sdk.audio import load_audio
    from tqdm import tqdm

    rows = [json.loads(line) for line in Path(args.corpus, "manifest.jsonl").read_text().splitlines() if line]
    heart = [r for r in rows if r["dataset"] == "physionet2016" and r["metadata"].get("outcome")]
    recs = []
    for r in tqdm(heart, desc="levels", unit="rec"):
        q = load_audio(Path(args.data, r["path"]), None, r["start_s"], r["end_s"]).quality
        recs.append({"split": r["split"], "database": r["metadata"]["database"], "id": r["record_id"],
                     "abnormal": r["metadata"]["outcome"] == "abnormal", "rms_dbfs": q.rms_dbfs,
                     "peak_dbfs": q.peak_dbfs})
    res: dict[str, Any] = {"n_records": len(recs), "groups": {}}
    for group, splits in SPLITS.items():
        sel = [x for x in recs if x["split"] in splits]
        y = np.array([x["abnormal"] for x in sel])
        ids = np.array([x["id"] for x in sel])
        out: dict[str, Any] = {}
        for level in ("rms_dbfs", "peak_dbfs"):
            s = -np.array([x[level] for x in sel])  # quieter = higher score
            lo, hi = P.group_bootstrap(y, s, ids)
            out[level] = {"auroc": P.auroc(y, s), "ci95": [lo, hi], "n": len(sel), "n_pos": int(y.sum())}
        per_db = {}
        for db in sorted({x["database"] for x in sel}):
            m = np.array([x["database"] == db for x in sel])
            if len(set(y[m])) < 2:
                continue
            per_db[db] = {"n": int(m.sum()), "n_pos": int(y[m].sum()),
                          **{level: P.auroc(y[m], -np.array([x[level] for x in sel])[m])
                             for level in ("rms_dbfs", "peak_dbfs")}}
        out["by_database"] = per_db
        res["groups"][group] = out
    print(markdown(res))
    if args.json:
        write_results(args.json, res, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
