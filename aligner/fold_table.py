"""Markdown of per-fold AUROCs of a leave-one-value-out probe (torch-free: the model card renders it too)."""

from __future__ import annotations

from typing import Any


def fold_table(rows: list[dict[str, Any]], task: str, key: str, title: str) -> list[str]:
    """Lines of a table, one row per system, one column per held-out value (records, positives), from the
    ``{key}_folds`` entries of evaluation rows of ``task``; [] when the rows hold no folds."""
    rows = [r for r in rows if r["task"] == task and r.get(f"{key}_folds")]
    if not rows:
        return []
    folds = rows[0][f"{key}_folds"]
    lines = ["", title, "", "| system | " + " | ".join(f"{f['value']} ({f['n']}, {f['n_pos']})" for f in folds) + " |",
             "|---" * (len(folds) + 1) + "|"]
    for r in rows:
        cells = {f["value"]: f["auroc"] for f in r[f"{key}_folds"]}
        lines.append(f"| {r['system']} | " + " | ".join(f"{cells[f['value']]:.3f}" if f["value"] in cells else "n/a"
                                                         for f in folds) + " |")
    return lines
