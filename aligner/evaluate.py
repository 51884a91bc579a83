"""Evaluation harness: one function over a task table (``tasks.json``), no per-data-set code.

    python -m aligner.evaluate --corpus runs/corpus --run aligned=runs/align-default --peers mfcc yamnet mn04

Population: the corpus records in ``--splits`` (default val + test), which the
aligner never trained on.  Linear probe: standardised features, logistic
regression, out-of-fold AUROC with group-aware folds (5 seeds, mean and std), or
leave-one-value-out (PhysioNet databases; mean and std over held-out values).
Its C is chosen from ``PROBE_C_GRID`` on records that are never scored (``choose_c``).
With ``--probe-train-splits train`` a second probe table is added: the same
records scored the same way, but every fold's probe is also fit on the task's
training-split records (other participants; the aligner's own training records,
with the labels its reports were written from), as in the usual
train-on-train-split, score-on-held-out protocol.
Zero-shot: cosine of the audio joint embedding with the projected prompt bank,
positive minus negative prompts.  Writes markdown and JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from aligner.corpus import Corpus, load_corpus
from aligner.data import FeatureBank, windows
from aligner.fold_table import fold_table

N_SEEDS = 5
#: out-of-fold predictions of the latest probe (seed 0), kept for the ROC plots
LAST_PREDICTIONS: dict[str, np.ndarray] = {}
#: per held-out value of the latest probe when its scheme is leave-one-value-out (empty otherwise): value, records,
#: positives, AUROC (the mean of these is the task's figure, so a fold of six records weighs as much as one of 133)
LAST_FOLDS: list[dict[str, Any]] = []
MAX_WINDOWS = 24


def spread(n: int, most: int = MAX_WINDOWS) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` windows, evenly spread from the first to the last, so a long
    recording is represented over its whole length (the same rule for teacher and bundle systems)."""
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(int)


@lru_cache(maxsize=1)
def task_table() -> dict[str, Any]:
    return json.loads(resources.files("aligner").joinpath("tasks.json").read_text())


def build_prompt_bank(name: str, table: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Label names x templates -> {"positive": [...], "negative": [...]} (open_clip style).  ``table``: a
    prompt table laid out as tasks.json's "prompts" entry (``--prompts FILE``); default that entry."""
    table = task_table()["prompts"] if table is None else table
    return {side: [t.format(label) for label in table[name][side] for t in table["templates"]]
            for side in ("positive", "negative")}


def task_rows(corpus: Corpus, task: dict[str, Any], splits: Sequence[str]) -> tuple[list[int], np.ndarray]:
    idx, labels = [], []
    for i, row in enumerate(corpus.rows):
        if row["dataset"] in task["datasets"] and row["split"] in splits:
            value = row[task["field"]] if task["field"] in row else row["metadata"].get(task["field"])
            idx.append(i)
            labels.append(str(value) in task["positive"])
    return idx, np.asarray(labels, dtype=int)


def bootstrap_ci(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, n: int = 200, seed: int = 0
                 ) -> tuple[float, float]:
    """95 % interval of AUROC from resampling whole groups (participants / patients) with replacement."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in uniq}
    vals = []
    for _ in range(n):
        idx = np.concatenate([members[g] for g in rng.choice(uniq, size=uniq.size)])
        if len(set(y[idx])) == 2:
            vals.append(roc_auc_score(y[idx], scores[idx]))
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if vals else (float("nan"),) * 2


#: inverse regularisation strengths the probe chooses from; chosen per fold on its training side only.  Six decades:
#: on the earlier four (1e-4 to 1e-1) a third of the choices fell on an edge of the grid
PROBE_C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: the C chosen in each outer fold of the latest probe (seed 0 for k-fold schemes)
LAST_C: list[float] = []
INNER_FOLDS = 3


def _logreg(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced", warm_start=True)


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, values: np.ndarray | None = None,
             grid: Sequence[float] = PROBE_C_GRID) -> float:
    """The probe's C by inner cross-validation on a fold's training side (never its scored records).

    The inner split mirrors the outer scheme: leave-one-value-out over ``values`` when given (so C is chosen
    for transfer to an unseen database), else grouped ``INNER_FOLDS``-fold.  Each inner fold standardises
    once and walks the grid from the strongest regularisation up with warm starts.  The score is the mean
    inner-fold AUROC, and the choice is the strongest regularisation within one standard error (over inner
    folds) of the best score: the one-standard-error rule.  Plain argmax jumped between the grid's ends on
    near-flat curves (C = 1e-5 for one embedding and 1.0 for its int8 copy, cosine >= 0.999, on the same task).
    Too few groups or values to split: the middle of the grid."""
    grid = sorted(grid)
    if values is not None:
        splits = [(np.flatnonzero(values != v), np.flatnonzero(values == v)) for v in sorted(set(values))]
    elif len(np.unique(groups)) >= INNER_FOLDS and min(np.bincount(y, minlength=2)) >= INNER_FOLDS:
        splits = list(StratifiedGroupKFold(INNER_FOLDS, shuffle=True, random_state=0).split(x, y, groups))
    else:
        splits = []
    splits = [(tr, te) for tr, te in splits if len(set(y[tr])) == 2 and len(set(y[te])) == 2]
    if not splits:
        return float(grid[len(grid) // 2])
    scores = np.zeros((len(splits), len(grid)))
    for f, (tr, te) in enumerate(splits):
        scaler = StandardScaler().fit(x[tr])
        xtr, xte = scaler.transform(x[tr]), scaler.transform(x[te])
        clf = _logreg(grid[0])
        for k, c in enumerate(grid):
            clf.set_params(C=c)
            scores[f, k] = roc_auc_score(y[te], clf.fit(xtr, y[tr]).decision_function(xte))
    return float(grid[one_se_choice(scores)])


def one_se_choice(scores: np.ndarray) -> int:
    """Index of the first column (strongest regularisation) of an inner-fold x grid score table whose mean is
    within one standard error of the best mean (the best column's fold spread; no spread from one fold)."""
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    se = scores[:, best].std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else 0.0
    return int(np.flatnonzero(mean >= mean[best] - se)[0])


def probe_auroc(x: np.ndarray, y: np.ndarray, groups: np.ndarray, scheme: str, meta: list[dict[str, Any]],
                extra: tuple[np.ndarray, np.ndarray, list[dict[str, Any]], np.ndarray] | None = None
                ) -> tuple[float, float, tuple[float, float]]:
    """Linear-probe AUROC (mean, std, 95 % group-bootstrap interval) under the task's split scheme.

    ``x, y`` are the evaluated records; every one of them is scored out of fold.  ``extra`` (features,
    labels, metadata, groups) are further records added to the training side of every fold and never
    scored: the task's training-split records, from groups disjoint from ``groups``.  Under
    leave-one-value-out the extra records that share the held-out value are left out too.

    C comes from ``choose_c`` on records that are never scored: with ``extra``, on the extra records alone
    (once per held-out value: the usual choose-on-the-training-split protocol); without, by an inner
    cross-validation inside each fold's training side.  ``LAST_C`` lists the C of each fold."""
    field = scheme.split(":", 1)[1] if scheme.startswith("leave_one_out:") else None
    values = None if field is None else np.asarray([str(m.get(field)) for m in meta])
    extra_values = None if extra is None or field is None else np.asarray([str(m.get(field)) for m in extra[2]])

    chosen: dict[str, float] = {}  # with extra records: one C per held-out value, chosen on them alone

    def fit_predict(train: np.ndarray, test: np.ndarray, held_out: str = "") -> np.ndarray:
        xt, yt = x[train], y[train]
        if extra is None:
            c = choose_c(xt, yt, groups[train], None if values is None else values[train])
        else:
            keep = np.ones(len(extra[1]), bool) if extra_values is None else extra_values != held_out
            if held_out not in chosen:
                chosen[held_out] = choose_c(extra[0][keep], extra[1][keep], np.asarray(extra[3])[keep],
                                            None if extra_values is None else extra_values[keep])
            c = chosen[held_out]
            xt, yt = np.concatenate([xt, extra[0][keep]]), np.concatenate([yt, extra[1][keep]])
        LAST_C.append(c)
        return make_pipeline(StandardScaler(), _logreg(c)).fit(xt, yt).predict_proba(x[test])[:, 1]

    LAST_FOLDS.clear()  # filled only by a leave-one-value-out scheme
    LAST_C.clear()
    if values is not None:
        aucs, sel, pooled = [], [], []
        for v in sorted(set(values)):
            test = values == v
            if len(set(y[test])) < 2 or len(set(y[~test])) < 2:
                continue
            p = fit_predict(np.flatnonzero(~test), np.flatnonzero(test), v)
            aucs.append(roc_auc_score(y[test], p))
            LAST_FOLDS.append({"value": v, "n": int(test.sum()), "n_pos": int(y[test].sum()), "auroc": aucs[-1],
                               "c": LAST_C[-1]})
            sel.append(np.flatnonzero(test))
            pooled.append(p)
        idx = np.concatenate(sel)
        LAST_PREDICTIONS.update(y=y[idx], scores=np.concatenate(pooled))
        return float(np.mean(aucs)), float(np.std(aucs)), bootstrap_ci(y[idx], np.concatenate(pooled), groups[idx])
    aucs, first, first_c = [], None, []
    for seed in range(N_SEEDS):
        pred = np.zeros(len(y))
        for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(x, y, groups):
            pred[test] = fit_predict(train, test)
        aucs.append(roc_auc_score(y, pred))
        if first is None:
            first, first_c = pred, list(LAST_C)
    assert first is not None
    LAST_C[:] = first_c
    LAST_PREDICTIONS.update(y=y, scores=first)
    return float(np.mean(aucs)), float(np.std(aucs)), bootstrap_ci(y, first, groups)


class AlignedEncoder:
    """Pooled features and joint embeddings from an ``acula align`` checkpoint (or the unaligned mn04)."""

    def __init__(self, run: str | None, weights_dir: str | None = None, pooling: str = "freq") -> None:
        import dataclasses

        from aligner.checkpoint import load_checkpoint
        from aligner.config import AlignConfig
        from aligner.model import AcuLaModel
        from aligner.train import default_weights_dir

        if run is None:  # the AudioSet encoder without alignment
            cfg = dataclasses.replace(AlignConfig(), pooling=pooling)
            self.model = AcuLaModel(cfg, 384, weights_dir=weights_dir or default_weights_dir())
            self.aligned = False
        else:
            state, meta = load_checkpoint(run)
            cfg = AlignConfig.from_dict(meta["align_config"])
            self.model = AcuLaModel(dataclasses.replace(cfg, encoder_weights=None), meta["text_dim"])
            self.model.load_state_dict(state)
            self.aligned = True
        self.model.eval()
        self.cfg = cfg

    @torch.no_grad()
    def __call__(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = windows(feats, self.cfg.crop_frames, self.cfg.crop_frames // 2)
        w = w[spread(w.shape[0])]
        pooled = self.model.pooled(torch.from_numpy(np.ascontiguousarray(w)))
        joint = torch.nn.functional.normalize(self.model.audio_proj(pooled), dim=-1).mean(0)
        return pooled.mean(0).numpy(), joint.numpy()

    @torch.no_grad()
    def text(self, embeddings: np.ndarray) -> np.ndarray:
        z = self.model.text_proj(torch.from_numpy(embeddings))
        return torch.nn.functional.normalize(z, dim=-1).numpy()


def zero_shot_scores(joint: np.ndarray, prompts: dict[str, np.ndarray]) -> np.ndarray:
    joint = np.stack(joint)
    j = joint / np.linalg.norm(joint, axis=1, keepdims=True)
    return (j @ prompts["positive"].T).mean(1) - (j @ prompts["negative"].T).mean(1)


def evaluate(corpus: Corpus, systems: dict[str, Callable[[int], tuple[np.ndarray, Any]]],
             zero_shot: dict[str, Callable[[np.ndarray, str], np.ndarray]], splits: Sequence[str],
             probe_train_splits: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Run every task for every system; ``zero_shot[name](second outputs, prompt set) -> scores``.

    With ``probe_train_splits`` a second linear probe (``probe_train_*`` keys) is also fit on those splits'
    records in every fold; only the ``splits`` records are ever scored."""
    tasks = task_table()["tasks"]
    if set(splits) & set(probe_train_splits):
        raise ValueError(f"probe training splits {list(probe_train_splits)} overlap the scored splits {list(splits)}")
    needed = sorted({i for t in tasks for sp in (splits, probe_train_splits) for i in task_rows(corpus, t, sp)[0]})
    results = []
    for name, fn in systems.items():
        t0 = time.perf_counter()
        cache = {i: fn(i) for i in tqdm(needed, desc=f"embedding ({name})", unit="clip")}
        embed_s = time.perf_counter() - t0
        for task in tasks:
            idx, y = task_rows(corpus, task, splits)
            x = np.stack([cache[i][0] for i in idx])
            groups = np.asarray([corpus.rows[i]["group_id"] for i in idx])
            split_of = np.asarray([corpus.rows[i]["split"] for i in idx])
            meta = [corpus.rows[i]["metadata"] for i in idx]
            row: dict[str, Any] = {"system": name, "task": task["name"], "n": len(idx), "n_pos": int(y.sum()),
                                   "embed_s": embed_s}
            if probe_train_splits:
                tidx, ty = task_rows(corpus, task, probe_train_splits)
                extra = (np.stack([cache[i][0] for i in tidx]), ty, [corpus.rows[i]["metadata"] for i in tidx],
                         np.asarray([corpus.rows[i]["group_id"] for i in tidx]))
                if set(groups) & {corpus.rows[i]["group_id"] for i in tidx}:
                    raise ValueError(f"{task['name']}: a participant is in both the probe training and scored splits")
                mean, std, (lo, hi) = probe_auroc(x, y, groups, task["scheme"], meta, extra)
                row.update(probe_train_auroc=mean, probe_train_std=std, probe_train_ci95=[lo, hi],
                           probe_train_n=len(tidx), probe_train_splits=list(probe_train_splits))
                row["probe_train_c"] = list(LAST_C)
                if LAST_FOLDS:
                    row["probe_train_folds"] = list(LAST_FOLDS)
            mean, std, (lo, hi) = probe_auroc(x, y, groups, task["scheme"], meta)
            row.update(probe_auroc=mean, probe_std=std, probe_ci95=[lo, hi], probe_c=list(LAST_C))
            if LAST_FOLDS:
                row["probe_folds"] = list(LAST_FOLDS)
            if name in zero_shot:
                scores = zero_shot[name]([cache[i][1] for i in idx], task)
                variants = scores if isinstance(scores, dict) else {"zero_shot": scores}
                for key, sc in variants.items():
                    if sc is not None:
                        row[f"{key}_auroc"] = float(roc_auc_score(y, sc))
                        row[f"{key}_ci95"] = list(bootstrap_ci(y, np.asarray(sc), groups))
                        if len(splits) > 1:  # each scored split alone: a choice made on one split shows here
                            masks = {sp: split_of == sp for sp in splits}
                            row[f"{key}_by_split"] = {sp: float(roc_auc_score(y[m], np.asarray(sc)[m]))
                                                      for sp, m in masks.items() if len(set(y[m])) == 2}
            row["_roc"] = (LAST_PREDICTIONS["y"], LAST_PREDICTIONS["scores"])
            results.append(row)
    return results


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
    probes = [("probe", "Linear probe AUROC (mean ± std), fit on the scored records only (out of fold):")]
    if "probe_train_auroc" in first:
        probes.append(("probe_train", f"Linear probe AUROC (mean ± std), fit also on the "
                       f"{' + '.join(first['probe_train_splits'])} records in every fold (disjoint participants; "
                       "the same records are scored):"))
    lines += ["", f"Logistic regression on standardised features; its C is chosen from {list(PROBE_C_GRID)} on records "
              "that are never scored: by an inner cross-validation inside each fold's training side for the first "
              "probe, on the training-split records alone for the second (the inner split mirrors the task's: "
              "grouped folds, or leave one database out), as the strongest regularisation within one standard "
              "error of the best inner AUROC.  `probe_c` / `probe_train_c` in the JSON list the choices."]
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


#: task -> (bundle label set, positive label) for zero-shot scoring with a bundle's prompt bank
BUNDLE_ZERO_SHOT = {"cough_vs_noncough": ("sound", "cough"), "heart_abnormal_lodo": ("heart", "abnormal"),
                    "crackles": ("lung", "crackles"), "wheezes": ("lung", "wheezes")}


def bundle_system(spec: str, corpus: Corpus, task_prompts: Callable[[dict[str, Any]], dict[str, np.ndarray]]
                  | None = None) -> tuple[str, Callable[[int], tuple[np.ndarray, Any]], Callable[[Any, Any], Any]]:
    """NAME=PATH[:backend:precision] -> (name, embedding fn, zero-shot fn) through the SDK only.

    Zero-shot: the SDK's label-set probability (``zero_shot_sdk``); with ``task_prompts`` (task -> projected
    prompt embeddings of the teacher the bundle was distilled from) also the teacher's own rule on the
    bundle's embeddings (``zero_shot``), so teacher and student are compared with identical scoring."""
    from sdk.audio import load_audio
    from sdk.model import load

    name, _, rest = spec.partition("=")
    path, backend, precision = (rest.split(":") + ["onnxruntime", "int8"])[:3]
    model = load(path, backend, precision)

    def embed(i: int) -> tuple[np.ndarray, Any]:
        r = corpus.records[i]
        clip = load_audio(corpus.audio_path(i), model.sample_rate_hz, r.start_s, r.end_s)
        stream = model.stream()  # flush() adds the tiled window of a clip shorter than one window
        windows = stream.accept(clip.samples, clip.sample_rate_hz) + stream.flush()
        windows = [windows[k] for k in spread(len(windows))]
        emb = np.stack([w.embedding for w in windows])
        clip_emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).mean(0)
        logits = {k: np.mean([w.label_logits[k] for w in windows], 0) for k in model.label_sets}
        return clip_emb, (clip_emb, logits)

    def zero(outputs: list[tuple[np.ndarray, dict[str, np.ndarray]]], task: dict[str, Any]) -> dict[str, Any]:
        label_set, positive = BUNDLE_ZERO_SHOT[task["name"]]
        j = model.label_sets[label_set].index(positive)
        z = np.stack([lg[label_set] for _, lg in outputs])
        p = np.exp(z - z.max(1, keepdims=True))
        scores: dict[str, Any] = {"zero_shot_sdk": np.asarray(p[:, j] / p.sum(1))}
        if task_prompts is not None:
            scores["zero_shot"] = zero_shot_scores([e for e, _ in outputs], task_prompts(task))
        return scores

    return name, embed, zero


YAMNET_TASK_CLASSES = {"cough_vs_noncough": ["cough"], "heart_abnormal_lodo": ["heart_murmur"],
                       "wheezes": ["wheeze"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="corpus directory from 'acula corpus build'")
    parser.add_argument("--data", help="data root: build (once) a corpus under --work when --corpus is not given")
    parser.add_argument("--work", default="runs/eval", help="where --data builds its corpus")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of an acula align run")
    parser.add_argument("--bundle", action="append", default=[],
                        help="NAME=BUNDLE[:backend:precision] evaluated through the SDK (default onnxruntime int8)")
    parser.add_argument("--prompt-run", help="acula align run whose text projection also scores the bundles' "
                        "zero-shot with the task prompts, the rule used for --run systems (retention tables)")
    parser.add_argument("--peers", nargs="*", default=["mfcc", "yamnet", "mn04"], choices=["mfcc", "yamnet", "mn04"])
    parser.add_argument("--weights", default=None, help="weights folder (default $ACULA_WEIGHTS or ../shared/weights)")
    parser.add_argument("--splits", nargs="*", default=["val", "test"], help="the records that are scored")
    parser.add_argument("--probe-train-splits", nargs="*", default=[],
                        help="also report a linear probe fit on these splits' records too (e.g. train: the "
                        "aligner's training records) in every fold; they are never scored")
    parser.add_argument("--out", default="benchmarks/results", help="folder for align_eval.md / .json")
    parser.add_argument("--name", default="align_eval", help="file stem of the results")
    parser.add_argument("--prompts", help="JSON prompt table used for zero-shot instead of tasks.json's 'prompts' "
                        "(e.g. configs/prompts/negated-findings.json, the table before negations were dropped)")
    args = parser.parse_args(argv)
    prompt_table = None
    if args.prompts:
        table = json.loads(Path(args.prompts).read_text())
        missing = sorted({t["prompts"] for t in task_table()["tasks"]} - set(table)) + (
            [] if "templates" in table else ["templates"])
        if missing:
            parser.error(f"{args.prompts} lacks prompt entries for {missing}")
        prompt_table = {k: v for k, v in table.items() if not k.startswith("_")}
    torch.set_num_threads(2)
    from aligner.teacher import TextTeacher
    from aligner.train import default_weights_dir
    from sdk.audio import load_audio

    if args.corpus is None:
        if args.data is None:
            parser.error("give --corpus DIR or --data DIR")
        from aligner.corpus import build_corpus

        args.corpus = str(Path(args.work) / "corpus")
        if not (Path(args.corpus) / "manifest.jsonl").is_file():
            build_corpus(Path(args.data), Path(args.corpus))
    corpus = load_corpus(args.corpus)
    bank = FeatureBank.for_corpus(corpus)
    weights = Path(args.weights or default_weights_dir())
    systems: dict[str, Callable[[int], tuple[np.ndarray, Any]]] = {}
    zero: dict[str, Callable[[np.ndarray, Any], Any]] = {}
    teacher = TextTeacher() if args.run or args.prompt_run else None

    def prompts_of(enc: AlignedEncoder) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
        """task -> its prompt bank through the text teacher and ``enc``'s text projection."""
        def prompts(task: dict[str, Any]) -> dict[str, np.ndarray]:
            assert teacher is not None
            bank = build_prompt_bank(task["prompts"], prompt_table)
            return {k: enc.text(teacher.encode(v)) for k, v in bank.items()}
        return prompts

    task_prompts = prompts_of(AlignedEncoder(args.prompt_run)) if args.prompt_run else None
    for spec in args.bundle:
        name, embed_fn, zero_fn = bundle_system(spec, corpus, task_prompts)
        systems[name], zero[name] = embed_fn, zero_fn
    if "mfcc" in args.peers:
        from aligner.peers import MFCCStats

        mfcc = MFCCStats()
        systems["MFCC stats"] = lambda i: (mfcc(load_audio(corpus.audio_path(i), 16000, corpus.records[i].start_s,
                                                           corpus.records[i].end_s).samples), None)
    if "yamnet" in args.peers and (weights / "yamnet.tflite").is_file():
        from aligner.peers import YAMNET_CLASSES, YAMNet

        yam = YAMNet(weights / "yamnet.tflite")
        systems["YAMNet"] = lambda i: yam.run(load_audio(corpus.audio_path(i), 16000, corpus.records[i].start_s,
                                                         corpus.records[i].end_s).samples)

        def yam_zero(scores: np.ndarray, task: dict[str, Any]) -> np.ndarray | None:
            names = YAMNET_TASK_CLASSES.get(task["name"])
            return None if names is None else np.stack(scores)[:, [YAMNET_CLASSES[n] for n in names]].max(1)

        zero["YAMNet"] = yam_zero
    if "mn04" in args.peers:
        mn = AlignedEncoder(None, str(weights))
        systems["mn04 AudioSet (unaligned)"] = lambda i: mn(bank.get(i))
    for spec in args.run:
        name, _, path = spec.partition("=")
        enc = AlignedEncoder(path)
        systems[name] = lambda i, enc=enc: enc(bank.get(i))

        prompts = prompts_of(enc)

        def zs(joint: np.ndarray, task: dict[str, Any],
               prompts: Callable[[dict[str, Any]], dict[str, np.ndarray]] = prompts) -> np.ndarray:
            return zero_shot_scores(joint, prompts(task))

        zero[name] = zs
    results = evaluate(corpus, systems, zero, args.splits, args.probe_train_splits)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# Alignment evaluation ({', '.join(args.splits)} records of {args.corpus}, never seen in alignment)"
              f"\n\nCommand: `python -m aligner.evaluate {' '.join(argv if argv is not None else sys.argv[1:])}`")
    md = to_markdown(results, header)
    plots = plot_rocs(results, out, args.name)
    if plots:
        md += "\nROC curves: " + ", ".join(f"`{p.name}`" for p in plots) + "\n"
    (out / f"{args.name}.md").write_text(md)
    (out / f"{args.name}.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "_roc"}
                                                       for r in results], indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
