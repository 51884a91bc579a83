"""Temperature calibration: labels from the label-set table, the SDK's own scoring, a fitted temperature."""

from __future__ import annotations

import numpy as np
import pytest
from acula.export.calibration import ValOutputs, calibrate_temperatures, ece, nll, sdk_label_logits
from acula.sdk.label_sets import label_sets, record_label

SETS = {"lung": {"normal": [0, 1], "crackles": [2], "wheezes": [3]}}


def row(modality: str, **meta: object) -> dict[str, object]:
    return {"modality": modality, "metadata": dict(meta)}


def test_records_map_to_labels_as_the_table_says():
    assert record_label(row("heart", outcome="abnormal"), "heart") == "abnormal"
    assert record_label(row("heart", outcome="unknown"), "heart") is None
    assert record_label(row("lung", outcome="abnormal"), "heart") is None
    assert record_label(row("lung", crackles=1, wheezes=0), "lung") == "crackles"
    assert record_label(row("lung", crackles="0", wheezes="1"), "lung") == "wheezes"
    assert record_label(row("lung"), "lung") == "normal"  # a missing finding counts as absent
    assert record_label(row("lung", crackles=1, wheezes=1), "lung") is None  # both: neither label
    assert record_label(row("environment"), "sound") == "other"
    assert record_label(row("heart"), "sound") is None


def test_a_label_set_without_a_calibration_rule_is_an_error():
    val = ValOutputs([row("lung")], [10], [np.ones((3, 4), np.float32)], [np.zeros(3)])
    with pytest.raises(KeyError, match="record_label"):
        calibrate_temperatures(val, np.eye(4, dtype=np.float32), 10.0, {"mystery": {"a": [0], "b": [1]}})


def test_every_shipped_label_set_can_be_calibrated():
    for name in label_sets():
        record_label(row("lung"), name)  # raises for a set without a rule


def test_scoring_is_the_sdks_own():
    rng = np.random.default_rng(0)
    prompts = rng.normal(size=(4, 8)).astype(np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    emb = rng.normal(size=(5, 8)).astype(np.float32)
    got = sdk_label_logits(emb, prompts, 14.3, SETS)["lung"]
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = e @ prompts.T * 14.3
    expected = np.stack([sims[:, [0, 1]].mean(1), sims[:, 2], sims[:, 3]], 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_fitted_temperature_undoes_an_overconfident_scale():
    rng = np.random.default_rng(1)
    n, labels = 2000, ["normal", "crackles", "wheezes"]
    z = rng.normal(size=(n, 3)) * 1.5  # calibrated logits: each label is drawn from softmax(z)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=q) for q in p])
    # unit embeddings whose similarity to prompt k is z_k / 20: at logit_scale 60 the logits are 3 z, three
    # times too sharp, so the fitted temperature should be near 3
    sims = z / 10.0
    emb = np.concatenate([sims, np.sqrt(4 - (sims ** 2).sum(1))[:, None]], 1).astype(np.float32) / 2.0
    rows = [row("lung", crackles=int(labels[k] == "crackles"), wheezes=int(labels[k] == "wheezes")) for k in y]
    val = ValOutputs(rows, [10] * n, [e[None] for e in emb], [np.zeros(1)] * n)
    out = calibrate_temperatures(val, np.eye(3, 4, dtype=np.float32), 60.0,
                                 {"lung": {"normal": [0], "crackles": [1], "wheezes": [2]}})
    assert 2.5 < out["temperature"]["lung"] < 3.6
    rep = out["report"]["lung"]
    assert rep["n_val_clips"] == n and rep["nll_after"] < rep["nll_before"] and rep["ece_after"] < rep["ece_before"]


def test_nll_and_ece_of_a_perfect_confident_classifier_are_near_zero():
    logits = np.array([[20.0, 0.0], [0.0, 20.0]])
    y = np.array([0, 1])
    assert nll(logits, y, 1.0) < 1e-6 and ece(logits, y, 1.0) < 1e-6


def skewed_lung_val(n: int = 1500, seed: int = 0) -> ValOutputs:
    """Clips whose labels are mostly 'normal' (prior 0.8 / 0.12 / 0.08) while the zero-shot logits carry a
    weak, prior-free signal: a temperature alone cannot put the mass where the labels are."""
    rng = np.random.default_rng(seed)
    labels = ["normal", "crackles", "wheezes"]
    y = rng.choice(3, size=n, p=[0.8, 0.12, 0.08])
    sims = rng.normal(size=(n, 3)) * 0.05
    sims[np.arange(n), y] += 0.08
    emb = np.concatenate([sims, np.sqrt(1 - (sims ** 2).sum(1))[:, None]], 1).astype(np.float32)
    rows = [row("lung", crackles=int(labels[k] == "crackles"), wheezes=int(labels[k] == "wheezes")) for k in y]
    return ValOutputs(rows, [10] * n, [e[None] for e in emb], [np.zeros(1)] * n)


def test_a_bias_per_label_calibrates_a_skewed_prior_that_a_temperature_cannot():
    out = calibrate_temperatures(skewed_lung_val(), np.eye(3, 4, dtype=np.float32), 10.0,
                                 {"lung": {"normal": [0], "crackles": [1], "wheezes": [2]}})
    rep = out["report"]["lung"]
    assert rep["bias_kept"] and len(out["bias"]["lung"]) == 3 and out["bias"]["lung"][0] == 0.0
    assert rep["out_of_fold_nll"]["temperature_and_bias"] < rep["out_of_fold_nll"]["temperature"]
    assert rep["ece_after"] < 0.05 and rep["nll_after"] < rep["nll_temperature_only"]
    low, high = rep["spread_p5_p95"]["normal"]
    assert 0.0 <= low < high <= 1.0


def test_no_bias_is_kept_where_the_labels_are_balanced_and_the_scores_uninformative():
    rng = np.random.default_rng(3)
    n = 600
    y = rng.integers(0, 2, n)
    emb = np.concatenate([rng.normal(size=(n, 2)) * 0.01, np.ones((n, 1))], 1).astype(np.float32)
    rows = [row("heart", outcome=["normal", "abnormal"][k]) for k in y]
    val = ValOutputs(rows, [10] * n, [e[None] for e in emb], [np.zeros(1)] * n)
    out = calibrate_temperatures(val, np.eye(2, 3, dtype=np.float32), 10.0, {"heart": {"normal": [0], "abnormal": [1]}})
    assert "heart" not in out["bias"] and not out["report"]["heart"]["bias_kept"]


def test_the_sdk_adds_the_fitted_bias_after_the_temperature():
    from acula.sdk.scoring import LabelScorer

    prompts = np.eye(3, 4, dtype=np.float32)
    groups = {"lung": [np.array([0]), np.array([1]), np.array([2])]}
    emb = np.array([[0.6, 0.3, 0.1, 0.7]], np.float32)
    plain = LabelScorer(prompts, groups, 10.0, {"lung": 2.0})(emb)["lung"]
    biased = LabelScorer(prompts, groups, 10.0, {"lung": 2.0}, {"lung": [0.0, 1.5, -0.5]})(emb)["lung"]
    np.testing.assert_allclose(biased - plain, [[0.0, 1.5, -0.5]], atol=1e-6)


def test_export_fits_each_bias_in_the_label_order_the_manifest_stores():
    """The manifest is written with sorted keys and the SDK applies a set's biases in that order; export fitted
    them in the label-set table's order until 2026-12-03 (heart's bias landed on the other label)."""
    import json

    from acula.export.cli import manifest_label_sets

    texts = sorted({p for labels in label_sets().values() for prompts in labels.values() for p in prompts})
    sets = manifest_label_sets(texts)
    stored = json.loads(json.dumps(sets, sort_keys=True))
    assert [(name, list(labels)) for name, labels in sets.items()] == \
        [(name, list(labels)) for name, labels in stored.items()]
    assert all(texts[i] in label_sets()[name][label] for name, labels in sets.items()
               for label, idx in labels.items() for i in idx)


def test_export_calibrates_on_the_front_end_the_student_was_trained_on(tiny_corpus, tiny_student):
    """calibration_sets and validation_outputs read the features of the front end they are given (the export
    passes the checkpoint's): another normalisation shifts every calibration window by its offset."""
    import dataclasses

    torch = pytest.importorskip("torch")
    from acula.export.cli import calibration_sets, load_student, validation_outputs
    from acula.sdk.frontend_config import FrontendConfig

    base = FrontendConfig()
    shifted = dataclasses.replace(base, norm_mean_db=base.norm_mean_db - base.norm_std_db)  # +1 normalised unit
    student, _ = load_student(tiny_student)
    n = student.cfg.window_frames
    a = calibration_sets(tiny_corpus, n, (8,))[8]
    b = calibration_sets(tiny_corpus, n, (8,), front=shifted)[8]
    np.testing.assert_allclose(b - a, 1.0, atol=2e-2)  # the feature bank is float16
    with torch.no_grad():
        plain = validation_outputs(student, tiny_corpus)
        other = validation_outputs(student, tiny_corpus, front=shifted)
    assert len(plain.embeddings) == len(other.embeddings) > 0
    assert not np.allclose(plain.embeddings[0], other.embeddings[0])
