"""The evaluation harness' linear probe: C chosen on records that are never scored, AUROC out of fold.

Logistic regression on standardised features.  ``probe_auroc`` returns everything a caller reports (mean,
spread, interval, the C of every fold, the per-value folds of a leave-one-value-out scheme, the out-of-fold
scores for ROC plots) in one :class:`ProbeResult`; nothing is kept between calls.  AUROC and the group
bootstrap come from ``aligner.protocol``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from acula.aligner.protocol import auroc, group_bootstrap
from acula.aligner.protocol import choose_c as choose_c_on
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

N_SEEDS = 5
#: inverse regularisation strengths the probe chooses from; chosen per fold on its training side only.  Six decades:
#: on the earlier four (1e-4 to 1e-1) a third of the choices fell on an edge of the grid
PROBE_C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
INNER_FOLDS = 3
#: group-bootstrap resamples behind every interval of the evaluation tables
N_BOOT = 200

#: (features, labels, metadata, groups) of records added to every fold's training side and never scored
Extra = tuple[np.ndarray, np.ndarray, list[dict[str, Any]], np.ndarray]


def bootstrap_ci(y: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """95 % interval of AUROC from resampling whole groups (participants / patients) with replacement."""
    return group_bootstrap(y, scores, groups, n=N_BOOT, seed=0)


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
    return choose_c_on(x, y, groups, grid, INNER_FOLDS, values=values, warm_start=True, max_iter=3000)


@dataclass
class ProbeResult:
    """One probe's figures.  ``c``: the C of each outer fold (seed 0 for k-fold schemes); ``folds``: per held-out
    value of a leave-one-value-out scheme (empty otherwise): value, records, positives, AUROC, C (the mean of
    these AUROCs is the task's figure, so a fold of six records weighs as much as one of 133); ``y, scores``:
    the out-of-fold predictions (seed 0), for ROC plots."""

    auroc: float
    std: float
    ci95: tuple[float, float]
    c: list[float] = field(default_factory=list)
    folds: list[dict[str, Any]] = field(default_factory=list)
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def probe_auroc(x: np.ndarray, y: np.ndarray, groups: np.ndarray, scheme: str, meta: list[dict[str, Any]],
                extra: Extra | None = None) -> ProbeResult:
    """Linear-probe AUROC (mean, std, 95 % group-bootstrap interval) under the task's split scheme.

    ``x, y`` are the evaluated records; every one of them is scored out of fold.  ``extra`` (features,
    labels, metadata, groups) are further records added to the training side of every fold and never
    scored: the task's training-split records, from groups disjoint from ``groups``.  Under
    leave-one-value-out the extra records that share the held-out value are left out too.

    C comes from ``choose_c`` on records that are never scored: with ``extra``, on the extra records alone
    (once per held-out value: the usual choose-on-the-training-split protocol); without, by an inner
    cross-validation inside each fold's training side."""
    field_ = scheme.split(":", 1)[1] if scheme.startswith("leave_one_out:") else None
    values = None if field_ is None else np.asarray([str(m.get(field_)) for m in meta])
    extra_values = None if extra is None or field_ is None else np.asarray([str(m.get(field_)) for m in extra[2]])
    chosen: dict[str, float] = {}  # with extra records: one C per held-out value, chosen on them alone
    cs: list[float] = []

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
        cs.append(c)
        return make_pipeline(StandardScaler(), _logreg(c)).fit(xt, yt).predict_proba(x[test])[:, 1]

    if values is not None:
        folds, sel, pooled = [], [], []
        for v in sorted(set(values)):
            test = values == v
            if len(set(y[test])) < 2 or len(set(y[~test])) < 2:
                continue
            p = fit_predict(np.flatnonzero(~test), np.flatnonzero(test), v)
            folds.append({"value": v, "n": int(test.sum()), "n_pos": int(y[test].sum()), "auroc": auroc(y[test], p),
                          "c": cs[-1]})
            sel.append(np.flatnonzero(test))
            pooled.append(p)
        idx, scores = np.concatenate(sel), np.concatenate(pooled)
        aucs = [f["auroc"] for f in folds]
        return ProbeResult(float(np.mean(aucs)), float(np.std(aucs)), bootstrap_ci(y[idx], scores, groups[idx]),
                           cs, folds, y[idx], scores)
    aucs, first, first_c = [], None, []
    for seed in range(N_SEEDS):
        pred = np.zeros(len(y))
        for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(x, y, groups):
            pred[test] = fit_predict(train, test)
        aucs.append(auroc(y, pred))
        if first is None:
            first, first_c = pred, list(cs)
    assert first is not None
    return ProbeResult(float(np.mean(aucs)), float(np.std(aucs)), bootstrap_ci(y, first, groups), first_c, [], y,
                       first)
