"""The primary evaluation protocol's statistics, torch-free and model-free (numpy + scikit-learn).

Every figure of the primary table comes from here, so a reader can check one small module:

* ``auroc`` (rank based, ties averaged) and ``group_bootstrap`` / ``paired_bootstrap``: intervals from
  resampling whole patients / participants with replacement; a comparison of two systems is one paired
  interval of their difference on the same resampled groups, never two separate intervals.
* ``within_group_standardise``: scores z-scored inside each database / recording, so a score that only knows
  *where* a recording came from falls to chance (``prior_baseline`` is exactly such a score).
* ``per_group_auroc``: AUROC inside each database / device, and the worst of them.
* ``aggregate``: window or cycle scores -> recording or patient scores (max or mean).
* ``fit_probe`` / ``nested_group_cv``: the linear probe fit on the training split, and nested grouped
  cross-validation over every patient for encoders that never saw a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: bootstrap resamples behind every interval (percentile interval, 95 %)
N_BOOT = 1000
#: the splits whose records are scored (choices are made on the training split, or on val alone)
SCORED = ("val", "test")
#: inverse regularisation strengths of the probe; chosen on training records only (one-standard-error rule)
PROBE_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) statistic, ties counted half; nan when ``y``
    holds one class only.  Equal to ``sklearn.metrics.roc_auc_score``; about 20x faster for small arrays."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    edges = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(s)]])
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _group_index(groups: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    uniq, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return uniq, [np.flatnonzero(inverse == k) for k in range(len(uniq))]


def _resamples(groups: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """``n`` index arrays, each a resample of whole groups with replacement (seeded)."""
    uniq, members = _group_index(groups)
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[k] for k in rng.integers(0, len(uniq), len(uniq))]) for _ in range(n)]


def group_bootstrap(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, n: int = N_BOOT, seed: int = 0
                    ) -> tuple[float, float]:
    """95 % percentile interval of AUROC over resamples of whole groups (patients / participants)."""
    y, s = np.asarray(y), np.asarray(scores)
    vals = [auroc(y[i], s[i]) for i in _resamples(groups, n, seed)]
    vals = [v for v in vals if v == v]
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if vals else (float("nan"),) * 2


def paired_bootstrap(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, groups: np.ndarray,
                     n: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """AUROC(a) - AUROC(b) on the same records, with a 95 % interval from the same group resamples for both
    (the pairing removes the records' shared difficulty from the interval) and the share of resamples in which
    a wins (``p_a_better``)."""
    y, a, b = np.asarray(y), np.asarray(scores_a), np.asarray(scores_b)
    diffs = []
    for i in _resamples(groups, n, seed):
        d = auroc(y[i], a[i]) - auroc(y[i], b[i])
        if d == d:
            diffs.append(d)
    diff = auroc(y, a) - auroc(y, b)
    if not diffs:
        return {"diff": diff, "lo": float("nan"), "hi": float("nan"), "p_a_better": float("nan")}
    arr = np.asarray(diffs)
    return {"diff": float(diff), "lo": float(np.percentile(arr, 2.5)), "hi": float(np.percentile(arr, 97.5)),
            "p_a_better": float((arr > 0).mean())}


def within_group_standardise(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Scores z-scored inside each group (database, recording).  A score that is constant within every group
    (it only knows the group) becomes all zeros: AUROC 0.5."""
    s = np.asarray(scores, dtype=np.float64)
    out = np.zeros_like(s)
    for members in _group_index(groups)[1]:
        v = s[members]
        sd = v.std()
        out[members] = (v - v.mean()) / sd if sd > 1e-12 else 0.0
    return out


def prior_baseline(train_groups: np.ndarray, train_y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The score that knows only where a record came from: its group's positive rate on the training split
    (the overall rate for a group the training split lacks)."""
    train_groups, train_y = np.asarray(train_groups).astype(str), np.asarray(train_y, dtype=float)
    overall = float(train_y.mean()) if train_y.size else 0.5
    rate = {g: float(train_y[train_groups == g].mean()) for g in np.unique(train_groups)}
    return np.asarray([rate.get(g, overall) for g in np.asarray(groups).astype(str)])


def per_group_auroc(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, min_each: int = 1
                    ) -> dict[str, dict[str, Any]]:
    """{group: {n, n_pos, auroc}} for every group holding at least ``min_each`` of each class."""
    y, s, g = np.asarray(y), np.asarray(scores), np.asarray(groups).astype(str)
    out: dict[str, dict[str, Any]] = {}
    for value in sorted(set(g)):
        m = g == value
        n_pos = int(y[m].sum())
        if n_pos >= min_each and int(m.sum()) - n_pos >= min_each:
            out[value] = {"n": int(m.sum()), "n_pos": n_pos, "auroc": auroc(y[m], s[m])}
    return out


def worst_group(per_group: dict[str, dict[str, Any]]) -> tuple[str | None, float]:
    if not per_group:
        return None, float("nan")
    name = min(per_group, key=lambda k: per_group[k]["auroc"])
    return name, float(per_group[name]["auroc"])


def aggregate(scores: np.ndarray, ids: np.ndarray, y: np.ndarray | None = None, how: str = "max"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Scores of cycles / windows -> one score per id (``max`` or ``mean``); labels -> any positive.
    Returns (unique ids, scores, labels or None), ids in sorted order."""
    if how not in ("max", "mean"):
        raise ValueError(f"how must be 'max' or 'mean', got {how!r}")
    uniq, members = _group_index(ids)
    s = np.asarray(scores, dtype=np.float64)
    red = np.max if how == "max" else np.mean
    agg = np.asarray([red(s[m]) for m in members])
    labels = None if y is None else np.asarray([int(np.asarray(y)[m].max()) for m in members])
    return uniq, agg, labels


# ----------------------------------------------------------------------------------------------------- probes


def _logreg(c: float, max_iter: int = 2000, warm_start: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced", warm_start=warm_start)


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, grid: Sequence[float] = PROBE_C_GRID,
             n_folds: int = 3, values: np.ndarray | None = None, warm_start: bool = False,
             max_iter: int = 2000) -> float:
    """C by inner cross-validation on training records only: the strongest regularisation whose mean inner
    AUROC is within one standard error of the best (``one_se_choice``).

    The inner split is grouped ``n_folds``-fold, or leave-one-value-out over ``values`` when given (C chosen for
    transfer to an unseen database).  Each inner fold standardises once; with ``warm_start`` one classifier
    walks the grid from the strongest regularisation up, each fit starting from the previous one.  Too few
    groups or values to split: the middle of the grid.  The one owner of this choice: ``fit_probe`` here and
    the evaluation harness' probe (``aligner.probe.choose_c``, its own grid and warm starts) both call it."""
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.preprocessing import StandardScaler

    grid = sorted(grid)
    y = np.asarray(y).astype(int)
    if values is not None:
        splits = [(np.flatnonzero(values != v), np.flatnonzero(values == v)) for v in sorted(set(values))]
    elif len(np.unique(groups)) >= n_folds and min(np.bincount(y, minlength=2)) >= n_folds:
        splits = list(StratifiedGroupKFold(n_folds, shuffle=True, random_state=0).split(x, y, groups))
    else:
        splits = []
    splits = [(tr, te) for tr, te in splits if len(set(y[tr])) == 2 and len(set(y[te])) == 2]
    if not splits:
        return float(grid[len(grid) // 2])
    table = np.zeros((len(splits), len(grid)))
    for f, (tr, te) in enumerate(splits):
        scaler = StandardScaler().fit(x[tr])
        xtr, xte = scaler.transform(x[tr]), scaler.transform(x[te])
        clf = _logreg(grid[0], max_iter, warm_start)
        for k, c in enumerate(grid):
            clf.set_params(C=c)
            table[f, k] = auroc(y[te], clf.fit(xtr, y[tr]).decision_function(xte))
    return float(grid[one_se_choice(table)])


def one_se_choice(scores: np.ndarray) -> int:
    """Index of the first column (strongest regularisation) of an inner-fold x grid score table whose mean is
    within one standard error of the best mean (the best column's fold spread; no spread from one fold)."""
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    se = scores[:, best].std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else 0.0
    return int(np.flatnonzero(mean >= mean[best] - se)[0])


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, groups_train: np.ndarray) -> Any:
    """Standardise + logistic regression, C chosen on the training records (``choose_c``); returns the fitted
    pipeline (``decision_function`` scores new records)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = choose_c(x_train, y_train, groups_train)
    pipe = make_pipeline(StandardScaler(), _logreg(c)).fit(x_train, np.asarray(y_train).astype(int))
    pipe.chosen_c_ = c
    return pipe


def nested_group_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int = 5, seed: int = 0
                    ) -> np.ndarray:
    """Out-of-fold probe scores for every record: outer grouped ``n_folds``-fold over all patients, C chosen
    inside each outer training side.  For frozen encoders that never saw a label, so the whole population (not
    one small test split) decides the figure."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y).astype(int)
    out = np.full(len(y), np.nan)
    for tr, te in StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed).split(x, y, groups):
        if len(set(y[tr])) < 2:
            continue
        out[te] = fit_probe(x[tr], y[tr], np.asarray(groups)[tr]).decision_function(x[te])
    return out
