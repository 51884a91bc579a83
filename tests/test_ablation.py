"""The seed-mean selection rule (benchmarks/results/selection_rule_gain24_bg.md) as ``benchmarks.ablation`` applies
it: each check passes on figures that meet it and fails on figures that miss it by a little."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from acula.benchmarks.ablation import (
    BAND_LIMITS,
    KDENS_MARGINS,
    LEVEL_MARGINS,
    MAIN_TASKS,
    NOISE,
    NULL_MARGINS,
    seed_mean_rule,
    with_stored_seeds,
)

GAINS = ("gain-6", "gain-12", "gain-24", "peak-1")


def _system(native: float, probe: float, shift: float, drop: float, noise: float) -> tuple[dict[str, Any], ...]:
    row = {t: {"native": {"auroc": native}, "probe": {"auroc": probe}} for t in MAIN_TASKS}
    inv: dict[str, dict[str, Any]] = {t: {} for t in MAIN_TASKS}
    for t in MAIN_TASKS:
        for g in GAINS:
            inv[t][g] = {"native_shift_mean": shift, "native_auroc": native}
        for b in BAND_LIMITS[t]:
            inv[t][b] = {"native_auroc": native - drop}
        for n in NOISE:
            inv[t][n] = {"native_auroc": noise}
    return row, inv


def _sel(cand: dict[str, float], base: dict[str, float]) -> dict[str, Any]:
    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for name, figs in [(f"cand seed {k}", cand) for k in (0, 1)] + [(f"base seed {k}", base) for k in (0, 1, 2)]:
        sel["rows"][name], sel["invariance"][name] = _system(**figs)
    return sel


BASE = {"native": 0.78, "probe": 0.79, "shift": 0.05, "drop": 0.03, "noise": 0.65}


def test_a_candidate_that_meets_every_check_passes():
    r = seed_mean_rule(_sel(dict(BASE, noise=0.68), BASE), "cand seed", "base seed")
    assert r["failed"] == [] and r["groups"]["cand"] == ["cand seed 0", "cand seed 1"]
    assert r["figures"]["native under noise20 / noise10"] == pytest.approx({"cand": 0.68, "base": 0.65})


@pytest.mark.parametrize(("change", "rule"), [
    ({"native": 0.769}, 1), ({"probe": 0.779}, 2), ({"shift": 0.061}, 3), ({"drop": 0.041}, 4), ({"noise": 0.669}, 5),
])
def test_each_check_fails_when_missed(change, rule):
    cand = dict(BASE, noise=0.68) | change
    assert seed_mean_rule(_sel(cand, BASE), "cand seed", "base seed")["failed"] == [rule]


@pytest.mark.parametrize(("change", "failed"), [
    ({}, [1]), ({"native": 0.784}, [1]), ({"native": 0.786}, []), ({"native": 0.786, "noise": 0.639}, [5]),
    ({"native": 0.786, "noise": 0.641}, []),
])
def test_the_kd_ensemble_rule_asks_for_a_native_gain_and_no_loss_under_noise(change, failed):
    """selection_rule_gain24_kdens.md: native mean >= baseline + 0.005, noise >= baseline - 0.01."""
    assert seed_mean_rule(_sel(BASE | change, BASE), "cand seed", "base seed", KDENS_MARGINS)["failed"] == failed


@pytest.mark.parametrize(("change", "failed"), [
    ({"native": 0.786, "drop": 0.049}, []), ({"native": 0.786, "drop": 0.051}, [4]), ({"drop": 0.049}, [1]),
])
def test_the_null_calibrated_rule_widens_only_the_band_limit_check(change, failed):
    """selection_rule_gain24_kdens3.md: KDENS_MARGINS with the band-limit drop allowed +0.02."""
    assert {k: v for k, v in NULL_MARGINS.items() if k != 4} == {k: v for k, v in KDENS_MARGINS.items() if k != 4}
    assert seed_mean_rule(_sel(BASE | change, BASE), "cand seed", "base seed", NULL_MARGINS)["failed"] == failed


def test_the_checks_use_the_mean_over_seeds():
    sel = _sel(dict(BASE, noise=0.68), BASE)
    one = copy.deepcopy(sel)
    for t in MAIN_TASKS:  # one candidate seed far below, the other above: the mean is what counts
        one["rows"]["cand seed 0"][t]["native"]["auroc"] = 0.76
        one["rows"]["cand seed 1"][t]["native"]["auroc"] = 0.79
    r = seed_mean_rule(one, "cand seed", "base seed")
    assert r["figures"]["native mean"]["cand"] == pytest.approx(0.775) and 1 not in r["failed"]


def test_a_missing_group_is_named():
    with pytest.raises(ValueError, match="no system starts with"):
        seed_mean_rule(_sel(BASE, BASE), "other seed", "base seed")


def _with(sel: dict[str, Any], name: str, native: float, noise: float) -> None:
    """``name``'s row and invariance figures (``_system``: probe equal to native) into ``sel``."""
    sel["rows"][name], sel["invariance"][name] = _system(native, native, 0.0, 0.0, noise)


def test_background_teachers_needs_both_groups_and_reads_the_clean_cost():
    from acula.benchmarks.ablation import background_teachers

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    _with(sel, "teacher gain24-both seed 0", 0.80, 0.63)
    _with(sel, "teacher gain24-bg seed 0", 0.80, 0.66)
    assert "arises in distillation" in background_teachers(sel)[0]
    _with(sel, "teacher gain24-bg seed 0", 0.79, 0.66)
    assert "already lose 0.010" in background_teachers(sel)[0]
    del sel["invariance"]["teacher gain24-bg seed 0"]
    with pytest.raises(ValueError, match="lacks the teachers"):
        background_teachers(sel)


def test_background_teacher_pilot_reads_one_seed_against_the_seed_mean():
    from acula.benchmarks.ablation import background_teacher_pilot

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    _with(sel, "gain24-bgteach seed 0 int8 ONNX", 0.76, 0.68)
    _with(sel, "gain24-both seed 0 int8 ONNX", 0.78, 0.66)
    _with(sel, "gain24-both seed 1 int8 ONNX", 0.76, 0.64)
    line = background_teacher_pilot(sel)[0]
    assert "native mean 0.760 vs 0.770" in line and "noise10 0.680 vs 0.650" in line and "2-seed mean" in line
    del sel["rows"]["gain24-bgteach seed 0 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks the pilot"):
        background_teacher_pilot(sel)


def test_stored_seeds_join_only_when_the_anchor_scores_the_same_in_both_runs():
    stored = _sel(dict(BASE, noise=0.68), BASE)
    new: dict[str, Any] = {"rows": {}, "invariance": {}}
    for name in ("cand seed 0", "cand seed 1", "base seed 0"):
        new["rows"][name], new["invariance"][name] = copy.deepcopy((stored["rows"][name], stored["invariance"][name]))
    merged = with_stored_seeds(new, stored, "base seed 0", ["base seed 1", "base seed 2"])
    assert sorted(merged["rows"]) == sorted(stored["rows"]) and "base seed 1" not in new["rows"]
    assert seed_mean_rule(merged, "cand seed", "base seed")["failed"] == []
    moved = copy.deepcopy(new)
    moved["invariance"]["base seed 0"]["wheezes"]["lp1k"]["native_auroc"] += 0.001
    with pytest.raises(ValueError, match="scores differently"):
        with_stored_seeds(moved, stored, "base seed 0", ["base seed 1"])
    with pytest.raises(ValueError, match="not scored in this run"):
        with_stored_seeds({"rows": {}, "invariance": {}}, stored, "base seed 0", ["base seed 1"])


def test_the_rebuilt_control_row_reads_the_candidate_against_the_control_of_its_own_teacher():
    from acula.benchmarks.ablation import rebuilt_control

    sel: dict[str, Any] = {"rows": {}, "invariance": {}, "paired": [
        {"a": "gain24-bgdenoise seed 0 int8 ONNX", "b": "gain24-both rebuilt seed 0 int8 ONNX", "score": "probe",
         "tasks": {"crackles": {"diff": -0.08, "lo": -0.18, "hi": -0.03}}}]}
    for name, native, noise in (("gain24-bgdenoise seed 0 int8 ONNX", 0.78, 0.70),
                                ("gain24-both rebuilt seed 0 int8 ONNX", 0.79, 0.65),
                                ("gain24-both seed 0 int8 ONNX", 0.787, 0.66)):
        _with(sel, name, native, noise)
    (row,) = rebuilt_control(sel)
    assert "native mean 0.780 vs 0.790 (shipped 0.787)" in row
    assert "native under noise20 / noise10 0.700 vs 0.650 (shipped 0.660)" in row
    assert "crackles probe minus rebuilt -0.080 [-0.180, -0.030]" in row


def test_the_kd_ensemble_second_look_reads_val_then_test_with_the_null_margins():
    """selection_rule_gain24_kdens3.md: three kdens seeds against three rebuilt seeds; on test native is asked
    only for no loss."""
    from acula.benchmarks.ablation import kd_ensemble_three_seeds

    def sel(cand: dict[str, float]) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": {}, "invariance": {}}
        for k in range(3):
            for name, figs in ((f"gain24-kdens seed {k} int8 ONNX", cand), (f"gain24-both rebuilt seed {k} int8 ONNX",
                                                                             BASE)):
                out["rows"][name], out["invariance"][name] = _system(**figs)
        return out

    gain = BASE | {"native": 0.786, "drop": 0.045}
    row = kd_ensemble_three_seeds(sel(gain))[0]
    assert "| val passes; test not scored yet |" in row and "native mean 0.786 vs 0.780" in row
    assert "| val passes; test passes |" in kd_ensemble_three_seeds(sel(gain), sel(BASE | {"drop": 0.045}))[0]
    assert "| val fails check 1; test not scored |" in kd_ensemble_three_seeds(sel(BASE))[0]
    assert "test fails check 1 |" in kd_ensemble_three_seeds(sel(gain), sel(BASE | {"native": 0.779}))[0]


def test_the_three_teacher_rule_reads_kd3_against_kdens_seed_for_seed():
    """selection_rule_gain24_kd3.md: the same rule, gain24-kd3's seeds against gain24-kdens' seeds."""
    from acula.benchmarks.ablation import kd_three_teachers

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for k in range(3):
        for name, figs in ((f"gain24-kd3 seed {k} int8 ONNX", BASE | {"native": 0.784}),
                           (f"gain24-kdens seed {k} int8 ONNX", BASE), (f"gain24-both rebuilt seed {k} int8 ONNX",
                                                                      BASE | {"native": 0.70})):
            sel["rows"][name], sel["invariance"][name] = _system(**figs)
    row = kd_three_teachers(sel)[0]
    assert "| val fails check 1; test not scored |" in row and "kd3 vs kdens: val: native mean 0.784 vs 0.780" in row


def test_the_three_seed_rule_is_not_judged_without_all_seeds_and_void_when_the_baseline_moved():
    """A verdict needs seeds 0, 1 and 2 of both recipes; with the baseline's stored run, every baseline seed must
    re-score identically there."""
    from acula.benchmarks.ablation import kd_ensemble_three_seeds

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for k in range(3):
        for name, figs in ((f"gain24-kdens seed {k} int8 ONNX", BASE | {"native": 0.786}),
                           (f"gain24-both rebuilt seed {k} int8 ONNX", BASE)):
            sel["rows"][name], sel["invariance"][name] = _system(**figs)
    stored = copy.deepcopy(sel)
    assert "| val passes; test not scored yet |" in kd_ensemble_three_seeds(sel, stored=stored)[0]
    stored["rows"]["gain24-both rebuilt seed 2 int8 ONNX"]["wheezes"]["native"]["auroc"] = 0.70
    assert "| void: 'gain24-both rebuilt seed 2 int8 ONNX' scores differently" in kd_ensemble_three_seeds(
        sel, stored=stored)[0]
    two = copy.deepcopy(sel)
    del two["rows"]["gain24-kdens seed 2 int8 ONNX"]
    assert "| not judged: seeds [0, 1] against [0, 1, 2]" in kd_ensemble_three_seeds(two)[0]


def test_check_8_on_unclipped_records_reads_the_shift_without_records_clipped_at_source():
    """selection_rule_gain24_lowfloor_shift_long_fresh.md: a candidate whose only large gain shift is on a record
    clipped at source fails check 8 over every record and passes it over the rest; seeds other than 0-2 are judged
    when the rule names them."""
    from acula.benchmarks.ablation import KDENS_SHIFT_MARGINS, three_seed_rule

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for k in (3, 4, 5):
        for name, figs in ((f"long seed {k} int8 ONNX", BASE | {"native": 0.79, "shift": 0.001}),
                           (f"ship seed {k} int8 ONNX", BASE | {"shift": 0.001})):
            sel["rows"][name], sel["invariance"][name] = _system(**figs)
            for t in MAIN_TASKS:
                for g in GAINS:
                    sel["invariance"][name][t][g] |= {"native_shift_max": 0.02, "native_shift_mean_unclipped": 0.001,
                                                      "native_shift_max_unclipped": 0.02}
    sel["invariance"]["long seed 3 int8 ONNX"]["heart_abnormal"]["gain-24"]["native_shift_max"] = 0.068
    margins = (KDENS_SHIFT_MARGINS, KDENS_SHIFT_MARGINS)
    args = (sel, None, "long seed", "ship seed", "the lever", "long vs ship", "rule.md")
    assert "| not judged: seeds [3, 4, 5] against [3, 4, 5], the rule needs 0, 1, 2" in three_seed_rule(
        *args, margins=margins)[0]
    assert "| val fails check 8; test not scored |" in three_seed_rule(*args, margins=margins, seeds=(3, 4, 5))[0]
    assert "| val passes; test not scored yet |" in three_seed_rule(*args, margins=margins, seeds=(3, 4, 5),
                                                                    unclipped=True)[0]
    sel["invariance"]["long seed 4 int8 ONNX"]["wheezes"]["peak-1"]["native_shift_max_unclipped"] = 0.06
    assert "| val fails check 8; test not scored |" in three_seed_rule(*args, margins=margins, seeds=(3, 4, 5),
                                                                       unclipped=True)[0]
    # the fresh long rule's row: its systems' names, seeds 3-5, check 8 on unclipped records
    from acula.benchmarks.ablation import fresh_three_seeds

    named = {part: {s.replace("long seed", "gain24-lowfloor-shift-long seed").replace(
        "ship seed", "gain24-lowfloor-shift seed"): v for s, v in sel[part].items()} for part in sel}
    row = fresh_three_seeds("gain24_lowfloor_shift_long_fresh", named)[0]
    assert "| val fails check 8; test not scored |" in row and "long vs shipped, seeds 3-5: val:" in row


def test_the_codec_rule_asks_no_native_loss_and_a_lower_heart_mulaw_drop():
    """selection_rule_gain24_kdcodec.md: NULL_TEST_MARGINS on both splits plus check 6, heart_abnormal's mulaw8k
    drop at most the baseline's - 0.01 on val and - 0.02 on test."""
    from acula.benchmarks.ablation import codec_three_seeds

    def sel(cand_drop: float, base_drop: float, cand: dict[str, float] = BASE) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": {}, "invariance": {}}
        for k in range(3):
            for name, figs, drop in ((f"gain24-kdcodec seed {k} int8 ONNX", cand, cand_drop),
                                     (f"gain24-kdens seed {k} int8 ONNX", BASE, base_drop)):
                out["rows"][name], out["invariance"][name] = _system(**figs)
                out["invariance"][name]["heart_abnormal"]["mulaw8k"] = {"native_auroc": figs["native"] - drop}
        return out

    row = codec_three_seeds(sel(0.015, 0.026))[0]
    assert "| val passes; test not scored yet |" in row and "heart_abnormal mulaw8k drop 0.015 vs 0.026" in row
    assert "| val fails check 6; test not scored |" in codec_three_seeds(sel(0.017, 0.026))[0]
    assert "| val fails check 1; test not scored |" in codec_three_seeds(sel(0.0, 0.026, BASE | {"native": 0.779}))[0]
    assert "| val passes; test passes |" in codec_three_seeds(sel(0.015, 0.026), sel(0.09, 0.116))[0]
    assert "test fails check 6 |" in codec_three_seeds(sel(0.015, 0.026), sel(0.10, 0.116))[0]


def test_the_stethoscope_lowpass_rule_asks_the_body_sound_band_limit_drops_to_fall():
    """selection_rule_gain24_lowfloor_shift_label_slp.md: check 9, the mean of heart, crackles and wheezes'
    band-limit drops at most the baseline's - 0.01, on fresh seeds 3-5; GATED_MARGINS' guards (native mean may fall
    0.01; check 4 still bounds each label set's drop, cough's among them)."""
    from acula.benchmarks.ablation import fresh_three_seeds

    def sel(cand_drop: float, base_drop: float, cand: dict[str, float] = BASE, cough_drop: float | None = None
            ) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": {}, "invariance": {}}
        for k in (3, 4, 5):
            for name, figs, drop in ((f"gain24-lowfloor-shift-label-slp seed {k} int8 ONNX", cand, cand_drop),
                                     (f"gain24-lowfloor-shift-label seed {k} int8 ONNX", BASE, base_drop)):
                out["rows"][name], out["invariance"][name] = _system(**(figs | {"drop": drop, "shift": 0.0}))
                if cough_drop is not None and "slp" in name:
                    for b in BAND_LIMITS["cough"]:
                        out["invariance"][name]["cough"][b] = {"native_auroc": figs["native"] - cough_drop}
                for t in MAIN_TASKS:
                    for g in GAINS:
                        out["invariance"][name][t][g] |= {"native_shift_max": 0.0, "native_shift_mean_unclipped": 0.0,
                                                          "native_shift_max_unclipped": 0.0}
        return out

    rule = "gain24_lowfloor_shift_label_slp"
    row = fresh_three_seeds(rule, sel(0.015, 0.026))[0]
    assert "| val passes; test not scored yet |" in row and "body-sound band-limit drop 0.015 vs 0.026" in row
    assert "| val fails check 9; test not scored |" in fresh_three_seeds(rule, sel(0.017, 0.026))[0]
    assert "| val passes;" in fresh_three_seeds(rule, sel(0.015, 0.026, BASE | {"native": 0.771}))[0]
    assert "| val fails check 1; test not scored |" in fresh_three_seeds(
        rule, sel(0.015, 0.026, BASE | {"native": 0.769}))[0]
    assert "| val fails check 4; test not scored |" in fresh_three_seeds(rule, sel(0.015, 0.026, cough_drop=0.05))[0]
    assert "| val passes; test fails check 9 |" in fresh_three_seeds(rule, sel(0.015, 0.026), sel(0.06, 0.065))[0]
    # the heart-only variant: check 10, heart's own drop (here every set's drop moves alike)
    heart = "gain24_lowfloor_shift_label_slph"
    named = {part: {n.replace("-slp seed", "-slph seed"): v for n, v in sel(0.015, 0.026)[part].items()}
             for part in ("rows", "invariance")}
    assert "| val passes; test not scored yet |" in fresh_three_seeds(heart, named)[0]
    named = {part: {n.replace("-slp seed", "-slph seed"): v for n, v in sel(0.017, 0.026)[part].items()}
             for part in ("rows", "invariance")}
    assert "| val fails check 10; test not scored |" in fresh_three_seeds(heart, named)[0]
    # the same lever judged again on seeds 6-8: seeds 3-5 are not judged, the same figures on 6-8 are
    again = "gain24_lowfloor_shift_label_slph_fresh"
    passing = {part: {n.replace("-slp seed", "-slph seed"): v for n, v in sel(0.015, 0.026)[part].items()}
               for part in ("rows", "invariance")}
    assert "| not judged: seeds [3, 4, 5] against [3, 4, 5], the rule needs 6, 7, 8 of both |" in \
        fresh_three_seeds(again, passing)[0]
    moved = {part: {n.replace("-slp seed", "-slph seed").replace(" seed 3 ", " seed 6 ").replace(" seed 4 ", " seed 7 ")
                    .replace(" seed 5 ", " seed 8 "): v for n, v in sel(0.015, 0.026)[part].items()}
             for part in ("rows", "invariance")}
    row = fresh_three_seeds(again, moved)[0]
    assert "| val passes; test not scored yet |" in row and "slph vs shipped, seeds 6-8: val:" in row


def test_the_pooling_rule_asks_a_native_gain_and_no_crackles_loss():
    """selection_rule_gain24_kdpool.md: NULL_MARGINS on val (native mean + 0.005), NULL_TEST_MARGINS on test, and
    check 7, crackles' native AUROC at least the baseline's on both."""
    from acula.benchmarks.ablation import pool_three_seeds

    def sel(cand: dict[str, float], crackles: float = 0.0) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": {}, "invariance": {}}
        for k in range(3):
            for name, figs in ((f"gain24-kdpool seed {k} int8 ONNX", cand), (f"gain24-kdens seed {k} int8 ONNX", BASE)):
                out["rows"][name], out["invariance"][name] = _system(**figs)
            out["rows"][f"gain24-kdpool seed {k} int8 ONNX"]["crackles"]["native"]["auroc"] += crackles
        return out

    up = BASE | {"native": 0.786}
    row = pool_three_seeds(sel(up))[0]
    assert "| val passes; test not scored yet |" in row and "crackles native 0.786 vs 0.780" in row
    assert "| val fails check 7; test not scored |" in pool_three_seeds(sel(BASE | {"native": 0.79}, -0.011))[0]
    assert "| val fails check 1; test not scored |" in pool_three_seeds(sel(BASE | {"native": 0.784}))[0]
    assert "| val passes; test passes |" in pool_three_seeds(sel(up), sel(BASE))[0]
    assert "test fails check 7 |" in pool_three_seeds(sel(up), sel(BASE | {"native": 0.782}, -0.004))[0]


def _seed0_pilot(names: tuple[str, ...], natives: tuple[float, ...] = (0.79, 0.77, 0.78)) -> dict[str, Any]:
    """A pilot run of ``names``' seed-0 int8 ONNX systems, each at its native AUROC, BASE otherwise."""
    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for name, native in zip(names, natives, strict=True):
        s = f"{name} seed 0 int8 ONNX"
        sel["rows"][s], sel["invariance"][s] = _system(**(BASE | {"native": native}))
    return sel


def test_the_codec_pilot_row_names_each_seed_0_system_and_refuses_a_missing_one():
    from acula.benchmarks.ablation import codec_both_stages_pilot

    sel = _seed0_pilot(("gain24-codec2", "gain24-kdcodec", "gain24-kdens"))
    for s, native in zip(sel["rows"], (0.79, 0.77, 0.78), strict=True):
        sel["invariance"][s]["heart_abnormal"]["mulaw8k"] = {"native_auroc": native - 0.02}
    row = codec_both_stages_pilot(sel)[0]
    assert "| pilot, decides nothing |" in row and "native mean 0.790 / 0.770 / 0.780" in row
    assert "heart mulaw8k drop 0.020 / 0.020 / 0.020" in row
    del sel["invariance"]["gain24-kdens seed 0 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks a system"):
        codec_both_stages_pilot(sel)


def test_the_floor_pilot_row_reads_heart_shifts_at_two_gains_and_refuses_a_missing_system():
    from acula.benchmarks.ablation import floor_pilot

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for s, native, shift in (("floor160 seed 0 int8 ONNX", 0.77, 0.02), ("gain24-both rebuilt seed 0 int8 ONNX", 0.79,
                                                                         0.07)):
        sel["rows"][s], sel["invariance"][s] = _system(**(BASE | {"native": native, "shift": shift}))
        sel["invariance"][s]["heart_abnormal"]["gain-40"] = {"native_shift_mean": 2 * shift}
        sel["invariance"][s]["heart_abnormal"]["mulaw8k"] = {"native_auroc": native - 0.03}
    row = floor_pilot(sel)[0]
    assert "| pilot, decides nothing |" in row and "native mean 0.770 / 0.790" in row
    assert "heart mean shift at -24 dB 0.020 / 0.070; at -40 dB 0.040 / 0.140" in row
    del sel["invariance"]["floor160 seed 0 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks a system"):
        floor_pilot(sel)


def test_the_floor_shift_row_reads_each_seeds_three_systems_from_its_run_and_refuses_a_missing_one():
    from acula.benchmarks.ablation import floor_shift_experiment

    runs: list[dict[str, Any]] = []
    for seed, native in ((0, 0.78), (1, 0.76)):
        name = "floor160" if seed == 0 else f"floor160-seed{seed}"
        sel: dict[str, Any] = {"rows": {}, "invariance": {}}
        for s, figs in ((f"{name}, level-shifted R0", {"native": native - 0.01, "shift": 0.001}),
                        (f"floor160 seed {seed} int8 ONNX", {"native": native, "shift": 0.02}),
                        (f"gain24-both rebuilt seed {seed} int8 ONNX", {"native": native, "shift": 0.06})):
            sel["rows"][s], sel["invariance"][s] = _system(**(BASE | figs))
            sel["invariance"][s]["heart_abnormal"]["gain-40"] = {"native_shift_mean": 2 * figs["shift"]}
        runs.append(sel)
    row = floor_shift_experiment(*runs)[0]
    assert "seed 0: native mean 0.770 / 0.780 / 0.780" in row and "seed 1: native mean 0.750 / 0.760 / 0.760" in row
    assert "heart mean shift at -24 dB 0.001 / 0.020 / 0.060; at -40 dB 0.002 / 0.040 / 0.120" in row
    del runs[1]["invariance"]["floor160 seed 1 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks a system"):
        floor_shift_experiment(*runs)


def test_the_ln100_pilot_row_names_its_three_seed_0_systems_and_refuses_a_missing_one():
    from acula.benchmarks.ablation import floor_ln100_pilot

    sel = _seed0_pilot(("floor160-ln100", "floor160", "gain24-both rebuilt"), (0.75, 0.77, 0.79))
    for s, native, shift in zip(sel["rows"], (0.75, 0.77, 0.79), (0.0, 0.02, 0.07), strict=True):
        for g in ("gain-24", "gain-40"):
            sel["invariance"][s]["heart_abnormal"][g] = {"native_shift_mean": shift}
        sel["invariance"][s]["heart_abnormal"]["mulaw8k"] = {"native_auroc": native - 0.03}
    row = floor_ln100_pilot(sel)[0]
    assert "native mean 0.750 / 0.770 / 0.790" in row and "heart mean shift at -24 dB 0.000 / 0.020 / 0.070" in row
    del sel["invariance"]["floor160 seed 0 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks a system"):
        floor_ln100_pilot(sel)


def test_the_side_by_side_pooling_pilot_row_names_each_seed_0_system_and_refuses_a_missing_one():
    from acula.benchmarks.ablation import pool_side_by_side_pilot

    sel = _seed0_pilot(("gain24-kdpoolcat", "gain24-kdpool", "gain24-kdens"))
    row = pool_side_by_side_pilot(sel)[0]
    assert "| pilot, decides nothing |" in row and "crackles native 0.790 / 0.770 / 0.780" in row
    assert "band-limit drop wheezes 0.030 / 0.030 / 0.030" in row
    del sel["invariance"]["gain24-kdpool seed 0 int8 ONNX"]
    with pytest.raises(ValueError, match="lacks a system"):
        pool_side_by_side_pilot(sel)


@pytest.mark.parametrize(("cand_shift", "worst_max", "failed"), [
    (0.004, 0.05, []), (0.011, 0.03, [8]), (0.004, 0.051, [8]),
])
def test_the_level_rule_asks_every_seed_for_the_gain_target(cand_shift, worst_max, failed):
    """Check 8 (selection_rule_floor160_level.md): each candidate seed's largest mean gain shift <= 0.01 and largest
    max shift <= 0.05; the ranking checks at -0.01 (a level lever)."""
    cand = dict(BASE, native=BASE["native"] - 0.009, probe=BASE["probe"] - 0.009, shift=cand_shift)
    sel = _sel(cand, BASE)
    for name, inv in sel["invariance"].items():
        for t in inv:
            for g in GAINS:
                inv[t][g]["native_shift_max"] = 0.02 if name.startswith("base") else 0.04
    sel["invariance"]["cand seed 1"]["cough"]["gain-24"]["native_shift_max"] = worst_max
    assert seed_mean_rule(sel, "cand seed", "base seed", LEVEL_MARGINS)["failed"] == failed
    sel = _sel(dict(cand, native=BASE["native"] - 0.011, shift=0.004), BASE)
    for inv in sel["invariance"].values():
        for t in inv:
            for g in GAINS:
                inv[t][g]["native_shift_max"] = 0.01
    assert seed_mean_rule(sel, "cand seed", "base seed", LEVEL_MARGINS)["failed"] == [1]


def test_stored_seeds_can_be_compared_on_the_figures_both_runs_hold():
    """A run that scored one more transform than the stored run (selection_rule_floor160_level.md adds gain-40) is
    comparable with ``shared_only``; without it every figure held by one run only counts as a difference."""
    sel, stored = _sel(BASE, BASE), _sel(BASE, BASE)
    for inv in sel["invariance"].values():
        inv["cough"]["gain-40"] = {"native_auroc": 0.7, "native_shift_mean": 0.1}
    with pytest.raises(ValueError, match="scores differently"):
        with_stored_seeds(sel, stored, "base seed 0", [])
    with_stored_seeds(sel, stored, "base seed 0", [], shared_only=True)
    stored["invariance"]["base seed 0"]["cough"]["gain-24"]["native_shift_mean"] += 0.01
    with pytest.raises(ValueError, match="scores differently"):
        with_stored_seeds(sel, stored, "base seed 0", [], shared_only=True)


@pytest.mark.parametrize(("fn", "prefix", "kwargs"), [("level_three_seeds", "floor160-level seed", {}),
                                                      ("lowfloor_three_seeds", "gain24-lowfloor seed", {}),
                                                      ("lowfloor_three_seeds", "gain24-lowfloor-kf seed",
                                                       {"variant": "kf"}),
                                                      ("lowfloor_three_seeds", "gain24-lowfloor-r130 seed",
                                                       {"variant": "r130"}),
                                                      ("lowfloor_shift_three_seeds", "gain24-lowfloor-shift seed",
                                                       {})])
def test_the_level_rows_judge_three_seeds_with_the_level_margins(fn, prefix, kwargs):
    import acula.benchmarks.ablation as A

    sel: dict[str, Any] = {"rows": {}, "invariance": {}}
    for k in (0, 1, 2):
        for name, figs, worst in ((f"{prefix} {k} int8 ONNX", dict(BASE, native=0.775, probe=0.785, shift=0.001), 0.04),
                                  (f"{A.REBUILT} {k} int8 ONNX", BASE, 0.6)):
            sel["rows"][name], sel["invariance"][name] = _system(**figs)
            for inv in sel["invariance"][name].values():
                for g in GAINS:
                    inv[g]["native_shift_max"] = worst
    row = getattr(A, fn)(sel, **kwargs)[0]
    assert "| val passes; test not scored yet |" in row
    sel["invariance"][f"{prefix} 2 int8 ONNX"]["cough"]["gain-24"]["native_shift_max"] = 0.06
    assert "val fails check 8" in getattr(A, fn)(sel, **kwargs)[0]


def test_the_keep_floor_row_reads_each_seeds_run_and_refuses_a_missing_system():
    from acula.benchmarks.ablation import keep_floor_experiment

    runs = []
    for k in range(3):
        sel: dict[str, Any] = {"rows": {}, "invariance": {}}
        s = f"gain24-lowfloor seed {k}, floor kept"
        sel["rows"][s], sel["invariance"][s] = _system(**dict(BASE, native=0.76 + k / 100, shift=0.001))
        for inv in sel["invariance"][s].values():
            for g in GAINS:
                inv[g]["native_shift_max"] = 0.02 * (k + 1)
        runs.append(sel)
    row = keep_floor_experiment(*runs)[0]
    assert "seed 2: native mean 0.780, probe mean 0.790, largest mean / max gain shift 0.001 / 0.060" in row
    runs[1] = {"rows": {}, "invariance": {}}
    with pytest.raises(ValueError, match="lacks"):
        keep_floor_experiment(*runs)


def test_the_phone_rule_sums_flagged_recordings_over_seeds_and_channels():
    from acula.benchmarks.ablation import PHONE_CANDIDATE, SHIPPED_SHIFT, phone_channel_checks

    def run(phone: dict[str, int], cough: dict[str, int]) -> dict:
        return {c: {"groups": {"breathing + speech (phone)": {"n": 39, "flagged": phone[c]},
                               "cough (phone)": {"n": 20, "flagged": cough[c]}}} for c in ("clean", "8k", "mulaw8k")}

    base = {f"{SHIPPED_SHIFT} {k}": run({"clean": 1, "8k": 5, "mulaw8k": 2}, {"clean": 19, "8k": 19, "mulaw8k": 19})
            for k in range(3)}
    # 3 fewer false alarms under the phone channels over the three seeds: P1 passes at its margin
    cand = {f"{PHONE_CANDIDATE} {k}": run({"clean": 1, "8k": 4 if k else 5, "mulaw8k": 2 if k < 2 else 1},
                                          {"clean": 19, "8k": 19, "mulaw8k": 19}) for k in range(3)}
    r = phone_channel_checks({"runs": {**cand, **base}})
    assert r["figures"]["phone non-cough flagged, 8k + mu-law"] == {"cand": 18, "base": 21} and r["failed"] == []
    # two fewer is not enough; three coughs lost fails P2; a second clean false alarm fails P3
    cand[f"{PHONE_CANDIDATE} 2"]["mulaw8k"]["groups"]["breathing + speech (phone)"]["flagged"] = 2
    for k in range(3):
        cand[f"{PHONE_CANDIDATE} {k}"]["8k"]["groups"]["cough (phone)"]["flagged"] = 18
    cand[f"{PHONE_CANDIDATE} 0"]["clean"]["groups"]["breathing + speech (phone)"]["flagged"] = 3
    assert phone_channel_checks({"runs": {**cand, **base}})["failed"] == ["P1", "P2", "P3"]
    # at their margins: two coughs lost under the phone channels pass P2, one clean cough lost passes P3
    cand[f"{PHONE_CANDIDATE} 2"]["mulaw8k"]["groups"]["breathing + speech (phone)"]["flagged"] = 1
    cand[f"{PHONE_CANDIDATE} 0"]["8k"]["groups"]["cough (phone)"]["flagged"] = 19
    cand[f"{PHONE_CANDIDATE} 0"]["clean"]["groups"]["breathing + speech (phone)"]["flagged"] = 2
    cand[f"{PHONE_CANDIDATE} 1"]["clean"]["groups"]["cough (phone)"]["flagged"] = 18
    r = phone_channel_checks({"runs": {**cand, **base}})
    assert r["figures"]["coughs flagged, 8k + mu-law"] == {"cand": 112, "base": 114} and r["failed"] == []
    cand[f"{PHONE_CANDIDATE} 2"]["clean"]["groups"]["cough (phone)"]["flagged"] = 18
    assert phone_channel_checks({"runs": {**cand, **base}})["failed"] == ["P3"]
    with pytest.raises(ValueError, match="int8"):
        phone_channel_checks({"runs": {**cand, **base}, "precision": "fp32"})
    with pytest.raises(ValueError, match="three seeds"):
        phone_channel_checks({"runs": base})
