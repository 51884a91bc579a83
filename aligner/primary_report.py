"""The primary evaluation's tables: ``primary.json`` -> ``primary.md`` (pure formatting, no model, no torch).

``python -m acula.aligner.primary`` writes both files from one run; ``to_markdown`` renders the stored JSON again to
the same bytes (``tests/test_results_regenerate.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from acula.aligner import protocol as P


def _f(v: Any, nd: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and v != v) else f"{v:.{nd}f}"


def ci_cell(r: dict[str, Any] | None) -> str:
    if not r:
        return "n/a"
    return f"{_f(r['auroc'])} [{_f(r['ci95'][0], 2)}, {_f(r['ci95'][1], 2)}]"


_LOST_SPLIT = ("valid records that lost their score (records the SDK leaves unscored at their own source rate, "
               "e.g. clipping that the 16 kHz copy's resampling hid, are counted apart).\n")


def _split_lost(res: dict[str, Any]) -> bool:
    """Whether the file counts source-clipped records apart (files written before it count every record)."""
    return any("n_lost_source_clipped" in r for per_t in res.get("invariance", {}).values()
               for rows in per_t.values() for r in rows.values())


def to_markdown(res: dict[str, Any]) -> str:
    systems, tasks = res["systems"], res["tasks"]
    by = res["rows"]
    L = [f"# Primary evaluation\n\nCommand: `{res['command']}`\n",
         f"Scored: {' + '.join(res.get('scored', P.SCORED))} records (never trained on); probe fit on the training "
         "split.  Intervals: 95 % "
         f"patient/participant bootstrap ({P.N_BOOT} resamples).  Wall time {res['wall_s'] / 60:.1f} min.\n"]
    L += ["## Linear probe (fit on the training split), AUROC [95 % CI]\n",
          "| system | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for s in systems:
        vals = [by[s][t]["probe"]["auroc"] for t in tasks]
        L.append(f"| {s} | " + " | ".join(ci_cell(by[s][t]["probe"]) for t in tasks) + f" | {_f(np.mean(vals))} |")
    L += ["", "## Native scores (zero-shot for aligned encoders and the student, heads for the supervised control, "
          "class scores for YAMNet), AUROC [95 % CI]\n",
          "| system | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for s in systems:
        if any("native" in by[s][t] for t in tasks):
            L.append(f"| {s} | " + " | ".join(ci_cell(by[s][t].get("native")) for t in tasks) + " |")
    heart = "heart_abnormal"
    if heart in tasks:
        dbs = sorted(next(iter(by.values()))[heart]["probe_by"])
        L += ["", "## Heart: per database, worst database, database prior, within-database standardised\n",
              "Probe fit on the training split of every database (row 1 per system) and leave-one-database-out "
              "(the probe never saw the database it scores; row 2).  `prior`: a score that only knows each "
              "database's training abnormal rate.  `within`: scores z-scored inside each database.\n",
              "| system | score | " + " | ".join(dbs) + " | worst | within | pooled |",
              "|---" * (len(dbs) + 5) + "|"]
        for s in systems:
            r = by[s][heart]
            for label, per, within, pooled in (
                    ("probe", r["probe_by"], r.get("probe_within_by"), r["probe"]["auroc"]),
                    ("probe LODO", r.get("probe_logo", {}), None, None),
                    ("native", r.get("native_by"), r.get("native_within_by"), (r.get("native") or {}).get("auroc"))):
                if not per:
                    continue
                cells = [_f(per[d]["auroc"]) if d in per else "n/a" for d in dbs]
                L.append(f"| {s} | {label} | " + " | ".join(cells) +
                         f" | {_f(P.worst_group(per)[1])} | {_f(within)} | {_f(pooled)} |")
        prior = next(iter(by.values()))[heart].get("prior")
        if prior:
            L.append("| database prior | - | " + " | ".join("0.500" for _ in dbs)
                     + f" | - | 0.500 | {ci_cell(prior)} |")
        n = next(iter(by.values()))[heart]["probe_by"]
        L.append("\nRecords (abnormal) per database: " + ", ".join(f"{d} {n[d]['n']} ({n[d]['n_pos']})" for d in dbs))
    for lung in ("crackles", "wheezes"):
        if lung not in tasks:
            continue
        devs = sorted(next(iter(by.values()))[lung]["probe_by"])
        L += ["", f"## {lung.capitalize()} (cycles): per device, leave-one-device-out, within recording\n",
              "| system | " + " | ".join(f"probe {d}" for d in devs) + " | " +
              " | ".join(f"LODO {d}" for d in devs) + " | probe within rec. | native within rec. |",
              "|---" * (2 * len(devs) + 3) + "|"]
        for s in systems:
            r = by[s][lung]
            L.append(f"| {s} | " + " | ".join(_f(r["probe_by"].get(d, {}).get("auroc")) for d in devs) + " | " +
                     " | ".join(_f(r["probe_logo"].get(d, {}).get("auroc")) for d in devs) +
                     f" | {_f(r.get('probe_within_recording'))} | {_f(r.get('native_within_recording'))} |")
        n = next(iter(by.values()))[lung]["probe_by"]
        L.append("\nCycles (positive) per device: " + ", ".join(f"{d} {n[d]['n']} ({n[d]['n_pos']})" for d in devs))
    frozen = [s for s in systems if any("nested_cv" in by[s][t] for t in tasks)]
    if frozen:
        L += ["", "## Frozen encoders: nested grouped 5-fold CV over every patient (train + val + test), "
              "AUROC [95 % CI]\n", "| system | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
        for s in frozen:
            vals = [by[s][t]["nested_cv"]["auroc"] for t in tasks]
            L.append(f"| {s} | " + " | ".join(ci_cell(by[s][t]["nested_cv"]) for t in tasks) +
                     f" | {_f(np.mean(vals))} |")
    if res.get("paired"):
        L += ["", "## Paired differences (AUROC of A minus B on the same records; 95 % paired bootstrap interval; "
              "P(A>B) over resamples)\n", "| A | B | score | " + " | ".join(tasks) + " |",
              "|---" * (len(tasks) + 3) + "|"]
        for p in res["paired"]:
            cells = []
            for t in tasks:
                d = p["tasks"].get(t)
                cells.append("n/a" if d is None else
                             f"{d['diff']:+.3f} [{d['lo']:+.2f}, {d['hi']:+.2f}] ({d['p_a_better']:.2f})")
            L.append(f"| {p['a']} | {p['b']} | {p['score']} | " + " | ".join(cells) + " |")
    if res.get("invariance"):
        from acula.aligner.invariance import TRANSFORMS

        inv_tasks = [t for t in tasks if any(t in v for v in res["invariance"].values())]
        L += ["", "## Invariance: each transform applied to the scored records; the clean-trained probe and the "
              "system's native score on them\n",
              "Cells: native AUROC (probe AUROC) / mean | max shift of the user-facing probability against the "
              "clean record (the SDK's calibrated probability for the student; the probe's for encoders without "
              "one) / " + (_LOST_SPLIT if _split_lost(res) else "records that lost their score.\n")]
        for s, per_t in res["invariance"].items():
            L += [f"### {s}\n", "| transform | " + " | ".join(inv_tasks) + " |", "|---" * (len(inv_tasks) + 1) + "|"]
            for name in dict.fromkeys(n for t in inv_tasks for n in per_t[t]):
                cells = []
                for t in inv_tasks:
                    r = per_t[t].get(name)
                    if r is None:
                        cells.append("-")
                        continue
                    shift = ((r["native_shift_mean"], r["native_shift_max"]) if "native_shift_mean" in r
                             else (r["probe_shift_mean"], r["probe_shift_max"]))
                    nat = _f(r.get("native_auroc")) + " " if "native_auroc" in r else ""
                    clipped = r.get("n_lost_source_clipped", 0)
                    # the max over the records not clipped at source, where it differs (files since the fresh long
                    # rule; older ones lack it)
                    unclipped = r.get("native_shift_max_unclipped")
                    apart = ("" if unclipped is None or unclipped != unclipped or "native_shift_mean" not in r
                             or abs(unclipped - shift[1]) < 5e-4 else f" ({_f(unclipped)} unclipped)")
                    cells.append(f"{nat}({_f(r['probe_auroc'])}) / {_f(shift[0])} \\| {_f(shift[1])}{apart} / "
                                 f"{r.get('n_lost', 0)}" + (f" (+{clipped} unscored at source)" if clipped else ""))
                L.append(f"| {name} | " + " | ".join(cells) + " |")
            L.append("")
        L += ["Transforms: " + "; ".join(f"`{k}`: {v.spec}" for k, v in TRANSFORMS.items())]
    return "\n".join(L) + "\n"
