"""What ``acula export`` fits on the validation split (never trained on) and writes into the manifest.

* The cough operating point (``calibrate_screening``): the lowest 'on' threshold at which each recording
  group's share of validation recordings with a cough event stays within ``SCREENING_TARGETS``, run through
  the SDK's own event logic.
* A temperature and a per-label bias per label set (``calibrate_temperatures``, vector scaling): the negative
  log-likelihood of the clip-level softmax the SDK computes (``sdk.model.Model``'s label logits, mean over
  windows), with ECE before, with the temperature alone, and after.
  A record's label comes from ``sdk/label_sets.json``'s ``record_label``; a label set without one is an error.

Torch-free: the student's outputs arrive as a :class:`ValOutputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from acula.sdk.label_sets import record_label, record_label_rule

#: seconds per feature frame (hop 512 at 16 kHz)
FRAME_S = 0.032
#: windows of a record that the temperature fit scores (the first ones: the SDK's clip call on a short clip)
TEMPERATURE_WINDOWS = 40
#: temperatures searched, log-spaced
TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.05), np.log(200.0), 161))


@dataclass
class ValOutputs:
    """The student's outputs on every validation record, computed once for both calibrations."""

    rows: list[dict[str, Any]]  # corpus manifest rows of the validation records
    n_frames: list[int]
    embeddings: list[np.ndarray]  # per record (n_windows, embed_dim)
    cough_probs: list[np.ndarray]  # per record (n_windows,)


# ------------------------------------------------------------------------------------------ operating point

#: recording groups of the cough operating point, and the most of each group's validation recordings that may
#: carry a cough event (the shipped detector's targets: <= 3 % of non-cough phone recordings, <= 1 % of
#: stethoscope recordings)
SCREENING_TARGETS: dict[str, float] = {"phone non-cough": 0.03, "stethoscope": 0.01}


def screening_group(row: dict[str, Any]) -> str:
    modality = row["modality"]
    if modality == "cough":
        return "cough"
    if modality in ("breathing", "speech"):
        return "phone non-cough"
    return "stethoscope" if modality in ("heart", "lung") else "other"


def events_at(probabilities: np.ndarray, on: float, window_s: float, hop_s: float, config: Any = None) -> int:
    """Window-level cough events of the SDK's event logic (``sdk.screening.EventDetector``, fed no samples, so no
    event is split into single coughs: use the count as flagged or not) on one recording's per-window cough
    probabilities (NaN: gated out) at 'on' threshold ``on``.  ``config``: a ``ScreeningConfig`` whose other settings
    are kept, its 'off' scaled with 'on' (a bundle's own); None: the operating point's rule (off = 0.8 on, minimum
    duration 0.25 s, refractory 1 s, no smoothing)."""
    from acula.sdk.screening import EventDetector, ScreeningConfig

    cfg = (ScreeningConfig(on=on, off=round(0.8 * on, 4), min_duration_s=0.25, refractory_s=1.0) if config is None
           else config.with_on(on))
    det = EventDetector(cfg)
    n = sum(len(det.update(k * hop_s, k * hop_s + window_s, None if np.isnan(p) else float(p)))
            for k, p in enumerate(probabilities))
    return n + len(det.flush())


def choose_operating_point(sequences: dict[str, list[np.ndarray]], noncough_hours: float, window_s: float,
                           hop_s: float, targets: dict[str, float] | None = None,
                           candidates: Sequence[float] | None = None) -> dict[str, Any]:
    """The lowest 'on' threshold at which, for every group in ``targets``, at most that fraction of its
    recordings carries a cough event, with the SDK's own event logic (hysteresis off = 0.8 on, minimum
    duration 0.25 s, refractory 1 s).  ``sequences``: per group, each recording's per-window cough
    probabilities (NaN: gated out).  The lowest such threshold keeps the most recall.  When no candidate
    meets the targets, the highest is taken and ``targets_met`` says so."""
    targets = SCREENING_TARGETS if targets is None else targets
    grid = sorted({round(float(t), 4) for t in (candidates if candidates is not None
                                                 else np.linspace(0.5, 0.995, 100))})

    def n_events(seq: np.ndarray, on: float) -> int:
        return events_at(seq, on, window_s, hop_s)

    def flagged(group: str, on: float) -> float:
        seqs = sequences.get(group, [])
        return float(np.mean([n_events(q, on) > 0 for q in seqs])) if seqs else 0.0

    chosen, met = grid[-1], False
    for on in grid:
        if all(flagged(g, on) <= limit for g, limit in targets.items()):
            chosen, met = on, True
            break
    events = sum(n_events(q, chosen) for g, seqs in sequences.items() if g != "cough" for q in seqs)
    return {"cough_on": chosen, "cough_off": round(0.8 * chosen, 4), "min_duration_s": 0.25, "refractory_s": 1.0,
            "smoothing_windows": 1, "calibrated_on": "val split", "targets": dict(targets), "targets_met": met,
            "val_fraction_flagged": {g: flagged(g, chosen) for g in sorted(sequences)},
            "val_cough_recording_recall": flagged("cough", chosen) if sequences.get("cough") else None,
            "val_false_alarms_per_hour": events / max(noncough_hours, 1e-9),
            "val_noncough_hours": round(noncough_hours, 3),
            "n_val_recordings": {g: len(v) for g, v in sorted(sequences.items())}}


def calibrate_screening(window_frames: int, hop_frames: int, val: ValOutputs) -> dict[str, Any]:
    """Cough operating point from the validation split (never trained on); see ``choose_operating_point``."""
    sequences: dict[str, list[np.ndarray]] = {}
    hours = 0.0
    for row, n_frames, probs in zip(val.rows, val.n_frames, val.cough_probs, strict=True):
        group = screening_group(row)
        sequences.setdefault(group, []).append(probs)
        if group != "cough":
            hours += n_frames * FRAME_S / 3600
    return choose_operating_point(sequences, hours, window_frames * FRAME_S, hop_frames * FRAME_S)


# ------------------------------------------------------------------------------------------ temperatures


def sdk_label_logits(embeddings: np.ndarray, prompts: np.ndarray, logit_scale: float,
                     sets: dict[str, dict[str, list[int]]]) -> dict[str, np.ndarray]:
    """{label set: (n_windows, n_labels)} window logits at temperature 1, by the SDK's own scoring
    (``sdk.scoring.LabelScorer`` on the bundle's prompt bank), labels in ``sets`` order."""
    from acula.sdk.scoring import LabelScorer

    scorer = LabelScorer(np.asarray(prompts, dtype=np.float32),
                         {k: [np.asarray(v) for v in labels.values()] for k, labels in sets.items()},
                         float(logit_scale), dict.fromkeys(sets, 1.0))
    return scorer(np.asarray(embeddings, dtype=np.float32))


def nll(logits: np.ndarray, y: np.ndarray, t: float, bias: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of labels ``y`` under softmax(logits / t + bias); logits (n, n_labels)."""
    z = logits / t + (0.0 if bias is None else bias)
    z = z - z.max(1, keepdims=True)
    return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())


def softmax_probs(logits: np.ndarray, t: float, bias: np.ndarray | None = None) -> np.ndarray:
    z = logits / t + (0.0 if bias is None else bias)
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def ece(logits: np.ndarray, y: np.ndarray, t: float, n_bins: int = 10, bias: np.ndarray | None = None) -> float:
    """Expected calibration error of softmax(logits / t + bias): confidence bins of width 1 / n_bins, weighted."""
    prob = softmax_probs(logits, t, bias)
    conf, pred = prob.max(1), prob.argmax(1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return float(sum(abs(np.mean(pred[bins == b] == y[bins == b]) - conf[bins == b].mean()) * np.mean(bins == b)
                     for b in range(n_bins) if np.any(bins == b)))


def fit_vector_scaling(logits: np.ndarray, y: np.ndarray, t0: float) -> tuple[float, np.ndarray]:
    """Temperature and per-label bias (the first label's fixed at 0) minimising the NLL of
    softmax(logits / t + bias), from (t0, 0).  A temperature alone cannot move probability mass between labels,
    so a set whose validation labels are far from uniform (lung: mostly normal cycles) stays miscalibrated with
    it; the bias is the labels' log prior ratio the scores do not already carry."""
    from scipy.optimize import minimize

    n_labels = logits.shape[1]

    def loss(theta: np.ndarray) -> float:
        return nll(logits, y, float(np.exp(theta[0])), np.concatenate([[0.0], theta[1:]]))

    start = np.concatenate([[np.log(t0)], np.zeros(n_labels - 1)])
    bounds = [(np.log(TEMPERATURE_GRID[0]), np.log(TEMPERATURE_GRID[-1]))] + [(-20.0, 20.0)] * (n_labels - 1)
    res = minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    theta = res.x if res.fun <= loss(start) else start
    return float(np.exp(theta[0])), np.concatenate([[0.0], theta[1:]])


#: folds of the out-of-fold comparison that decides whether a label set gets a bias
BIAS_FOLDS = 5


def out_of_fold_nll(logits: np.ndarray, y: np.ndarray, with_bias: bool, seed: int = 0) -> float:
    """Mean NLL of each validation clip under a calibration fitted on the other folds (temperature grid, then
    vector scaling when ``with_bias``): an honest comparison of the two, since in-sample the bias never loses.
    Infinite (never chosen) with fewer than two clips a fold."""
    if len(y) < 2 * BIAS_FOLDS:
        return float("inf")
    folds = np.random.default_rng(seed).permutation(len(y)) % BIAS_FOLDS
    total = 0.0
    for f in range(BIAS_FOLDS):
        fit, held = folds != f, folds == f
        t = float(min(TEMPERATURE_GRID, key=lambda t: nll(logits[fit], y[fit], t)))
        bias = None
        if with_bias:
            t, bias = fit_vector_scaling(logits[fit], y[fit], t)
        total += nll(logits[held], y[held], t, bias) * held.sum()
    return total / len(y)


def clip_logits_and_labels(val: ValOutputs, prompts: np.ndarray, logit_scale: float,
                           sets: dict[str, dict[str, list[int]]]
                           ) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Per label set: the clip-level logits at temperature 1 (mean of the first ``TEMPERATURE_WINDOWS`` window
    logits, as the SDK scores a clip), the label index of each record that has one, and the label order."""
    for name in sets:
        record_label_rule(name)  # KeyError before any work when a set cannot be calibrated
    clip_logits = [sdk_label_logits(e[:TEMPERATURE_WINDOWS], prompts, logit_scale, sets) for e in val.embeddings]
    out = {}
    for name, labels in sets.items():
        order = list(labels)
        xs, ys = [], []
        for row, logits_of in zip(val.rows, clip_logits, strict=True):
            lab = record_label(row, name)
            if lab is None or lab not in labels:
                continue
            xs.append(logits_of[name].mean(0))
            ys.append(order.index(lab))
        out[name] = (np.stack(xs).astype(np.float64) if xs else np.zeros((0, len(order))), np.asarray(ys, int), order)
    return out


def calibrate_temperatures(val: ValOutputs, prompts: np.ndarray, logit_scale: float,
                           sets: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """Per label set, a temperature and a per-label bias (vector scaling), fitted on the validation split by the
    negative log-likelihood of the clip-level softmax (mean of window logits, first ``TEMPERATURE_WINDOWS``
    windows of a record), as the SDK computes it.  Reports NLL and ECE before, with the temperature alone and
    with the bias, and the spread of each label's calibrated probability (5th to 95th percentile over the
    validation clips: a set whose probabilities do not move says so).  The bias is kept only where it lowers the
    out-of-fold NLL on the validation split (``out_of_fold_nll``), decided there, before any test score.  A set
    with fewer than two labels among the validation records keeps temperature 1 (absent from the result); a set
    without a ``record_label`` rule raises KeyError."""
    temps, biases, report = {}, {}, {}
    for name, (logits, y, order) in clip_logits_and_labels(val, prompts, logit_scale, sets).items():
        if len(set(y.tolist())) < 2:
            continue
        grid_t = float(min(TEMPERATURE_GRID, key=lambda t: nll(logits, y, t)))
        oof = {"temperature": out_of_fold_nll(logits, y, False),
               "temperature_and_bias": out_of_fold_nll(logits, y, True)}
        if np.isfinite(oof["temperature_and_bias"]) and oof["temperature_and_bias"] < oof["temperature"]:
            t, bias = fit_vector_scaling(logits, y, grid_t)
            t, bias = round(t, 4), np.round(bias, 4)
            biases[name] = [float(b) for b in bias]
        else:
            t, bias = round(grid_t, 4), np.zeros(len(order))
        temps[name] = t
        prob = softmax_probs(logits, t, bias)
        report[name] = {"n_val_clips": len(y), "nll_before": nll(logits, y, 1.0),
                        "nll_temperature_only": nll(logits, y, grid_t), "nll_after": nll(logits, y, t, bias),
                        "ece_before": ece(logits, y, 1.0), "ece_temperature_only": ece(logits, y, grid_t),
                        "temperature_only": round(grid_t, 4), "ece_after": ece(logits, y, t, bias=bias),
                        "out_of_fold_nll": {k: (v if np.isfinite(v) else None) for k, v in oof.items()},
                        "bias_kept": name in biases,
                        "spread_p5_p95": {lab: [float(np.percentile(prob[:, j], 5)),
                                                float(np.percentile(prob[:, j], 95))]
                                          for j, lab in enumerate(order)}}
    return {"temperature": temps, "bias": biases, "fitted_on": "val split", "report": report}
