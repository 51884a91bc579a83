"""The evaluation harness: task table, prompt banks, probe AUROC that can fail."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")

from acula.aligner.evaluate import (  # noqa: E402
    build_prompt_bank,
    evaluate,
    probe_auroc,
    spread,
    task_table,
    to_markdown,
    zero_shot_scores,
)


@pytest.fixture(autouse=True)
def two_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two k-fold seeds instead of the harness's five: a grouped k-fold probe refits its C grid in every inner
    fold of every outer fold of every seed (5 x 5 x 3 x 6 fits), which made these tests minutes long.  Two
    still exercise averaging over seeds and keeping the first seed's folds (test_probe_records_...)."""
    import acula.aligner.probe as probe

    monkeypatch.setattr(probe, "N_SEEDS", 2)


def test_task_table_is_data_with_the_four_tasks():
    names = [t["name"] for t in task_table()["tasks"]]
    assert names == ["cough_vs_noncough", "heart_abnormal_lodo", "crackles", "wheezes"]
    bank = build_prompt_bank("crackles")
    assert "A recording of crackles." in bank["positive"] and "A recording of clear breath sounds." in bank["negative"]
    # no negative prompt negates a finding: the default teacher scores 'no wheezes' like 'wheezes'
    for name in ("cough", "heart", "crackles", "wheezes"):
        assert not any(p.lower().startswith("no ") or " no " in p.lower()
                       for side in build_prompt_bank(name).values() for p in side)


def test_an_other_prompt_table_replaces_the_task_tables_and_is_checked(tmp_path):
    import json
    from pathlib import Path

    import acula.aligner.evaluate as ev

    old = Path(__file__).resolve().parents[1] / "configs" / "prompts" / "negated-findings.json"
    table = {k: v for k, v in json.loads(old.read_text()).items() if not k.startswith("_")}
    assert "A recording of no wheezes." in build_prompt_bank("wheezes", table)["negative"]
    assert "A recording of no wheezes." not in build_prompt_bank("wheezes")["negative"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"templates": ["{}"], "cough": {"positive": ["a cough"], "negative": ["speech"]}}))
    with pytest.raises(SystemExit):
        ev.main(["--corpus", str(tmp_path), "--prompts", str(bad)])


def grouped(n_groups: int = 40, signal: float = 2.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), 5)
    y = (groups % 2).astype(int)
    x = rng.standard_normal((groups.size, 6))
    x[:, 0] += signal * y
    return x, y, groups.astype(str)


def test_probe_separates_a_real_signal_and_not_noise():
    x, y, g = grouped()
    r = probe_auroc(x, y, g, "group_kfold", [{}] * len(y))
    high, (lo, hi) = r.auroc, r.ci95
    noise = probe_auroc(x[:, 1:], y, g, "group_kfold", [{}] * len(y)).auroc
    assert high > 0.9 and 0.3 < noise < 0.7
    assert lo <= high <= hi and hi - lo < 0.2


def test_leave_one_out_scheme_uses_every_held_out_value():
    x, y, g = grouped(signal=3.0)
    meta = [{"database": "abc"[i % 3]} for i in range(len(y))]
    r = probe_auroc(x, y, g, "leave_one_out:database", meta)
    assert r.auroc > 0.9 and r.std >= 0
    assert [f["value"] for f in r.folds] == ["a", "b", "c"]
    assert sum(f["n"] for f in r.folds) == len(y)
    assert np.isclose(np.mean([f["auroc"] for f in r.folds]), r.auroc)
    assert probe_auroc(x, y, g, "group_kfold", meta).folds == []  # folds only under leave-one-value-out


def test_markdown_lists_leave_one_out_folds_per_system():
    folds = [{"value": "a", "n": 100, "n_pos": 40, "auroc": 0.7}, {"value": "c", "n": 6, "n_pos": 4, "auroc": 1.0}]
    rows = [{"system": s, "task": "t", "n": 106, "n_pos": 44, "probe_auroc": 0.85, "probe_std": 0.15,
             "probe_folds": [dict(f, auroc=f["auroc"] - d) for f in folds]} for s, d in (("S", 0.0), ("Q", 0.125))]
    md = to_markdown(rows, "# h")
    assert "| system | a (100, 40) | c (6, 4) |" in md
    assert "| S | 0.700 | 1.000 |" in md and "| Q | 0.575 | 0.875 |" in md


def test_zero_shot_scores_prefer_the_positive_prompts():
    joint = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    scores = zero_shot_scores(joint, {"positive": np.array([[1.0, 0.0]]), "negative": np.array([[0.0, 1.0]])})
    assert scores[0] > scores[1]


def test_markdown_table_lists_systems_and_means():
    rows = [{"system": "A", "task": "t1", "n": 10, "n_pos": 5, "probe_auroc": 0.8, "probe_std": 0.01,
             "zero_shot_auroc": 0.7}, {"system": "A", "task": "t2", "n": 10, "n_pos": 5, "probe_auroc": 0.6,
                                       "probe_std": 0.02}]
    md = to_markdown(rows, "# T")
    assert "| A | 0.800 ± 0.010 | 0.600 ± 0.020 | 0.700 |" in md and "| A | 0.700 | n/a | 0.700 |" in md


def test_markdown_shows_the_sdk_zero_shot_table_only_when_present():
    rows = [{"system": "S", "task": "t", "n": 10, "n_pos": 5, "probe_auroc": 0.6, "probe_std": 0.0,
             "zero_shot_auroc": 0.7}]
    assert "through the SDK" not in to_markdown(rows, "# h")
    rows[0]["zero_shot_sdk_auroc"] = 0.65
    md = to_markdown(rows, "# h")
    assert "through the SDK" in md and "| S | 0.650 | 0.650 |" in md


def test_extra_training_records_are_fit_but_never_scored():
    x, y, g = grouped(signal=3.0)
    alone = probe_auroc(x, y, g, "group_kfold", [{}] * len(y)).auroc
    # more extra records (500) than scored training records in any fold (160), with labels that contradict the
    # scored ones: the probe follows them
    ex, ey, eg = grouped(n_groups=100, signal=3.0, seed=1)
    eg = np.char.add("extra-", eg)
    flipped = probe_auroc(x, y, g, "group_kfold", [{}] * len(y), (ex, 1 - ey, [{}] * len(ey), eg)).auroc
    agreeing = probe_auroc(x, y, g, "group_kfold", [{}] * len(y), (ex, ey, [{}] * len(ey), eg)).auroc
    assert alone > 0.9 and agreeing > 0.9 and flipped < 0.2


def test_leave_one_out_drops_extra_records_of_the_held_out_value():
    x, y, g = grouped(signal=3.0)
    meta = [{"database": "ab"[i % 2]} for i in range(len(y))]
    ex, ey, eg = grouped(n_groups=200, signal=3.0, seed=1)
    eg = np.char.add("extra-", eg)
    # contradicting extra records, all from database "a": they may train the probe for "b" only
    r = probe_auroc(x, y, g, "leave_one_out:database", meta, (ex, 1 - ey, [{"database": "a"}] * len(ey), eg))
    assert r.std > 0.3  # one held-out database scored well (extra dropped), the other inverted


def test_probe_training_splits_must_not_overlap_the_scored_ones():
    with pytest.raises(ValueError, match="overlap"):
        evaluate(None, {}, {}, ["val", "test"], ["train", "test"])  # type: ignore[arg-type]


def test_markdown_adds_the_train_split_probe_table():
    rows = [{"system": "S", "task": "t", "n": 10, "n_pos": 5, "probe_auroc": 0.6, "probe_std": 0.0,
             "probe_train_auroc": 0.75, "probe_train_std": 0.01, "probe_train_splits": ["train"]}]
    md = to_markdown(rows, "# h")
    assert "fit also on the train records" in md and "| S | 0.750 ± 0.010 | 0.750 |" in md


def test_window_selection_spans_the_whole_recording():
    assert spread(5, 24).tolist() == [0, 1, 2, 3, 4]
    for n in (25, 47, 58, 200):
        idx = spread(n, 24)
        assert len(idx) == 24 and idx[0] == 0 and idx[-1] == n - 1 and np.all(np.diff(idx) > 0)


def test_choose_c_follows_the_training_side():
    from acula.aligner.evaluate import PROBE_C_GRID, choose_c

    rng = np.random.default_rng(0)
    # the label lives in the difference of two strongly correlated features: only a weakly regularised
    # probe finds it (a heavily penalised one falls back to the class-mean direction, which is mostly noise)
    n = 400
    y = rng.integers(0, 2, n)
    z = rng.standard_normal(n) * 5
    x = np.stack([z + 0.4 * y + 0.05 * rng.standard_normal(n), z + 0.05 * rng.standard_normal(n)], 1)
    g = np.arange(n).astype(str)
    assert choose_c(x, y, g) == max(PROBE_C_GRID)
    # a label any C separates perfectly: every C ties, and the tie goes to the strongest regularisation
    y2 = np.repeat(np.arange(60) % 2, 2)
    x2 = (y2 + 0.01 * rng.standard_normal(120))[:, None]
    assert choose_c(x2, y2, np.repeat(np.arange(60), 2).astype(str)) == min(PROBE_C_GRID)
    # nothing to split on: the middle of the grid
    middle = sorted(PROBE_C_GRID)[len(PROBE_C_GRID) // 2]
    assert choose_c(x2[:4], np.array([0, 1, 0, 1]), np.array(["a", "a", "a", "a"])) == middle


def test_one_standard_error_rule():
    from acula.aligner.evaluate import one_se_choice

    # best mean 0.92 (column 3) with fold spread 0.02 / sqrt(3): column 2 (0.915) is within it, column 1 is not
    scores = np.array([[0.80, 0.88, 0.90, 0.90], [0.80, 0.88, 0.92, 0.92], [0.80, 0.88, 0.925, 0.94]])
    assert one_se_choice(scores) == 2
    # a clear winner stays the choice; one inner fold has no spread, so it is the plain argmax
    assert one_se_choice(np.array([[0.6, 0.7, 0.9], [0.6, 0.7, 0.9]])) == 2
    assert one_se_choice(np.array([[0.6, 0.75, 0.7]])) == 1


def test_probe_records_the_chosen_c_per_fold():
    from acula.aligner.evaluate import PROBE_C_GRID

    x, y, g = grouped(signal=3.0)
    meta = [{"database": "abc"[i % 3]} for i in range(len(y))]
    r = probe_auroc(x, y, g, "leave_one_out:database", meta)
    assert len(r.c) == 3 and all(c in PROBE_C_GRID for c in r.c)
    assert [f["c"] for f in r.folds] == r.c
    assert len(probe_auroc(x, y, g, "group_kfold", meta).c) == 5  # seed 0's five folds
    # with training-split records, C is chosen on them alone: one choice shared by every fold
    ex, ey, eg = grouped(n_groups=60, signal=3.0, seed=2)
    c = probe_auroc(x, y, g, "group_kfold", meta, (ex, ey, [{}] * len(ey), np.char.add("extra-", eg))).c
    assert len(c) == 5 and len(set(c)) == 1


def test_zero_shot_is_also_scored_on_each_split_alone():
    from types import SimpleNamespace

    kinds = {"coswara": ("modality", "cough", "breathing"), "physionet2016": ("outcome", "abnormal", "normal"),
             "icbhi": ("crackles", "1", "0")}
    rows = []
    for dataset, (field, pos, neg) in kinds.items():
        for split in ("val", "test"):
            for k in range(24):
                label = pos if k % 2 else neg
                meta = {"database": "ab"[k % 4 // 2], "wheezes": label if field == "crackles" else "0"}
                rows.append({"dataset": dataset, "split": split, "group_id": f"{dataset}-{split}-{k // 2}",
                             "metadata": {**meta, field: label} if field == "crackles" else meta, field: label})
    corpus = SimpleNamespace(rows=rows)
    rng = np.random.default_rng(0)

    def system(i: int) -> tuple[np.ndarray, float]:
        r = rows[i]
        positive = str(r.get("crackles", r["metadata"].get("crackles", r.get("modality", r.get("outcome"))))) in (
            "1", "cough", "abnormal")
        # the zero-shot score separates the classes on val and inverts them on test
        return rng.normal(size=4), (1.0 if positive else 0.0) * (1 if r["split"] == "val" else -1)

    results = evaluate(corpus, {"S": system}, {"S": lambda outs, task: np.asarray(outs)}, ["val", "test"],
                       probe=False)  # zero-shot only: the probe is tested above
    crackles = next(r for r in results if r["task"] == "crackles")
    assert crackles["zero_shot_by_split"] == {"val": 1.0, "test": 0.0}
    assert 0.4 < crackles["zero_shot_auroc"] < 0.6  # pooled, the two halves cancel
    md = to_markdown(results, "# h")
    assert "on each scored split alone" in md and "| S | val | 1.000 | 1.000 | 1.000 | 1.000 |" in md
    assert "| S | test | 0.000 |" in md
    single = evaluate(corpus, {"S": system}, {"S": lambda outs, task: np.asarray(outs)}, ["val"], probe=False)
    assert all("zero_shot_by_split" not in r for r in single)
    assert "on each scored split alone" not in to_markdown(single, "# h")


def test_the_default_prompt_banks_come_from_the_label_set_table():
    from acula.sdk.label_sets import expand, label_sets

    lung = label_sets()["lung"]
    assert build_prompt_bank("crackles") == {"positive": lung["crackles"], "negative": lung["normal"]}
    assert build_prompt_bank("heart") == {"positive": label_sets()["heart"]["abnormal"],
                                          "negative": label_sets()["heart"]["normal"]}
    cough = build_prompt_bank("cough")
    assert cough["positive"] == label_sets()["sound"]["cough"]
    assert cough["negative"] == expand(["breathing", "speech", "an environmental sound", "a heart sound",
                                        "counting aloud"])


def test_every_task_names_labels_of_a_label_set():
    from acula.sdk.label_sets import descriptions

    sets = descriptions()
    for task in task_table()["tasks"]:
        zs = task["zero_shot"]
        assert zs["positive"] in sets[zs["label_set"]]
        assert all(label in sets[zs["label_set"]] for label in zs.get("negative", []))


def test_zero_shot_only_rows_have_no_probe_and_render():
    rows = [{"system": "S", "task": "t", "n": 10, "n_pos": 5, "zero_shot_auroc": 0.7}]
    md = to_markdown(rows, "# h")
    assert "Linear probe" not in md and "| S | 0.700 | 0.700 |" in md


def test_threads_and_zero_shot_only_are_options():
    from acula.aligner.evaluate import parse_args

    args, _ = parse_args(["--corpus", "c"])
    assert args.threads == 2 and not args.no_probe
    args, _ = parse_args(["--corpus", "c", "--threads", "8", "--no-probe"])
    assert args.threads == 8 and args.no_probe
