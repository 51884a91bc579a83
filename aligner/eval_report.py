"""The evaluation harness' report: the markdown tables and the linear-probe ROC plots of ``aligner.evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from acula.aligner.fold_table import fold_table
from acula.aligner.probe import PROBE_C_GRID


def plot_rocs(results: list[dict[str, Any]], out: Path, stem: str) -> list[Path]:
    """One PNG per task: linear-probe ROC curves (seed 0, out of fold) of every system."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from sklearn.metrics import roc_curve

    paths = []
    for task in dict.fromkeys(r["task"] for r in results):
        fig, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
        for r in (r for r in results if r["task"] == task and "_roc" in r):
            fpr, tpr, _ = roc_curve(*r["_roc"])
            ax.plot(fpr, tpr, lw=1.2, label=f"{r['system']} ({r['probe_auroc']:.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{task} (linear probe)")
        ax.legend(fontsize=6, loc="lower right")
        path = out / f"{stem}_roc_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def to_markdown(results: list[dict[str, Any]], header: str) -> str:
    tasks = list(dict.fromkeys(r["task"] for r in results))
    systems = list(dict.fromkeys(r["system"] for r in results))
    by = {(r["system"], r["task"]): r for r in results}
    lines = [header]
    first = by[(systems[0], tasks[0])]
    probes = ([("probe", "Linear probe AUROC (mean ± std), fit on the scored records only (out of fold):")]
              if "probe_auroc" in first else [])  # none under --no-probe
    if "probe_train_auroc" in first:
        probes.append(("probe_train", f"Linear probe AUROC (mean ± std), fit also on the "
                       f"{' + '.join(first['probe_train_splits'])} records in every fold (disjoint participants; "
                       "the same records are scored):"))
    if probes:
        lines += ["", f"Logistic regression on standardised features; its C is chosen from {list(PROBE_C_GRID)} on "
                  "records that are never scored: by an inner cross-validation inside each fold's training side for "
                  "the first probe, on the training-split records alone for the second (the inner split mirrors the "
                  "task's: grouped folds, or leave one database out), as the strongest regularisation within one "
                  "standard error of the best inner AUROC.  `probe_c` / `probe_train_c` in the JSON list the choices."]
    for key, title in probes:
        lines += ["", title, "", "| system | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
        for s in systems:
            vals = [by[(s, t)][f"{key}_auroc"] for t in tasks]
            cells = [f"{by[(s, t)][f'{key}_auroc']:.3f} ± {by[(s, t)][f'{key}_std']:.3f}" for t in tasks]
            lines.append(f"| {s} | " + " | ".join(cells) + f" | {np.mean(vals):.3f} |")
    tables = [("zero_shot_auroc", "Zero-shot AUROC (the task table's text prompts, positive minus negative "
                                  "cosine; YAMNet: its own class score):"),
              ("zero_shot_sdk_auroc", "Zero-shot AUROC through the SDK (the bundle's label sets and calibrated "
                                      "temperature, softmax probability of the positive label):")]
    for key, title in tables:
        rows = []
        for s in systems:
            vals = [by[(s, t)].get(key) for t in tasks]
            if all(v is None for v in vals):
                continue
            cells = [f"{v:.3f}" if v is not None else "n/a" for v in vals]
            known = [v for v in vals if v is not None]
            rows.append(f"| {s} | " + " | ".join(cells) + f" | {np.mean(known):.3f} |")
        if rows:
            lines += ["", title, "", "| system | " + " | ".join(tasks) + " | mean |",
                      "|---" * (len(tasks) + 2) + "|", *rows]
    split_rows = [f"| {s} | {sp} | " + " | ".join(f"{by[(s, t)]['zero_shot_by_split'][sp]:.3f}"
                                                   if sp in by[(s, t)].get("zero_shot_by_split", {}) else "n/a"
                                                   for t in tasks) + " |"
                  for s in systems if any("zero_shot_by_split" in by[(s, t)] for t in tasks)
                  for sp in dict.fromkeys(sp for t in tasks for sp in by[(s, t)].get("zero_shot_by_split", {}))]
    if split_rows:
        lines += ["", "Zero-shot AUROC (task prompts) on each scored split alone:", "",
                  "| system | split | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 2) + "|", *split_rows]
    for t in tasks:
        for key, which in (("probe", "fit on the scored records only"),
                           ("probe_train", "fit also on the training records")):
            lines += fold_table(results, t, key, f"{t}, linear probe {which}, per held-out fold (records, "
                                "positives); the task's figure is the unweighted mean of these:")
    n = {t: (by[(systems[0], t)]["n"], by[(systems[0], t)]["n_pos"]) for t in tasks}
    lines += ["", "Records (positives): " + ", ".join(f"{t} {a} ({b})" for t, (a, b) in n.items())]
    return "\n".join(lines) + "\n"
