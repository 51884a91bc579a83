"""The README and model-card generators read every figure from the results files they are given."""

from __future__ import annotations

import json
from pathlib import Path

from acula.benchmarks.readme import _auroc_table, render


def rows(with_train: bool) -> list[dict]:
    out = []
    for system, base in (("A", 0.6), ("B", 0.7)):
        for k, task in enumerate(("t1", "t2")):
            r = {"system": system, "task": task, "n": 10, "n_pos": 4, "probe_auroc": base + 0.1 * k,
                 "probe_std": 0.0, "zero_shot_auroc": 0.5 + 0.1 * k if system == "B" else None}
            if with_train:
                r["probe_train_auroc"] = base + 0.05
            out.append(r)
    return out


def test_auroc_table_means_and_the_train_split_column():
    plain = "\n".join(_auroc_table(rows(False), "T"))
    assert "| B | 0.700 / 0.500 | 0.800 / 0.600 | 0.750 | 0.550 |" in plain and "probe + train" not in plain
    both = "\n".join(_auroc_table(rows(True), "T"))
    assert "| A | 0.600 | 0.700 | 0.650 | 0.650 | n/a |" in both
    assert "| B | 0.700 / 0.500 | 0.800 / 0.600 | 0.750 | 0.750 | 0.550 |" in both


def test_render_results_reads_the_primary_results_file(tmp_path: Path):
    from acula.benchmarks.readme import render_results

    assert "No primary.json yet" in render_results(tmp_path)
    ci = {"auroc": 0.9, "ci95": [0.8, 0.95], "n": 10, "n_pos": 4}
    row = {"probe": ci, "native": dict(ci, auroc=0.7), "probe_logo": {"a": {"auroc": 0.6, "n": 5, "n_pos": 2},
                                                                      "f": {"auroc": 0.4, "n": 5, "n_pos": 2}}}
    res = {"systems": ["S"], "tasks": ["cough", "heart_abnormal"], "rows": {"S": {"cough": row, "heart_abnormal": row}},
           "paired": [], "invariance": {}}
    (tmp_path / "primary.json").write_text(json.dumps(res))
    text = render_results(tmp_path)
    assert "| S | 0.900 (0.80-0.95) / 0.700 (0.80-0.95) | 0.900 (0.80-0.95) / 0.700 (0.80-0.95) |" in text
    assert "| S | 0.400 (f) |" in text  # the worst database, named


def screening(with_yamnet: bool) -> dict:
    groups = {"cough (phone)": {"n": 20, "fraction_flagged": 0.9, "events_per_hour": 500.0},
              "breathing + speech (phone)": {"n": 40, "fraction_flagged": 0.1, "events_per_hour": 30.0}}
    if with_yamnet:
        groups["cough (phone)"].update(yamnet_flagged=16, both_flagged=15)
        groups["breathing + speech (phone)"].update(yamnet_flagged=3, both_flagged=2)
    return {"groups": groups, **({"yamnet": {"threshold": 0.5}} if with_yamnet else {})}


def test_cough_table_shows_the_yamnet_reference_only_when_measured(tmp_path: Path):
    (tmp_path / "cough_screening.json").write_text(json.dumps(screening(False)))
    text = render(tmp_path)
    assert "| breathing + speech (phone) | 40 | 10.0% (4/40; 4.0%-23.1%) | 30.0 |" in text
    assert "YAMNet Cough" not in text
    (tmp_path / "cough_screening.json").write_text(json.dumps(screening(True)))
    text = render(tmp_path)
    assert ("| recordings | n | with >= 1 event (95 % CI) | events per hour | YAMNet Cough >= 0.5 | flagged by both |"
            in text)
    assert "| cough (phone) | 20 | 90.0% (18/20; 69.9%-97.2%) | 500.0 | 80.0% | 15 |" in text
    assert "| breathing + speech (phone) | 40 | 10.0% (4/40; 4.0%-23.1%) | 30.0 | 7.5% | 2 |" in text


def test_wilson_interval_matches_published_values():
    from acula.benchmarks.cough_screening import wilson

    lo, hi = wilson(5, 10)  # Wilson (1927) / Newcombe (1998): 0.2366-0.7634
    assert abs(lo - 0.2366) < 1e-4 and abs(hi - 0.7634) < 1e-4
    lo, hi = wilson(0, 10)  # k = 0 keeps a real upper bound: 0.2775
    assert lo == 0.0 and abs(hi - 0.2775) < 1e-4


def test_cough_table_counts_participants_when_measured(tmp_path: Path):
    data = screening(False)
    data["groups"]["breathing + speech (phone)"].update(participants=21, participants_flagged=3)
    data["groups"]["cough (phone)"].update(participants=20, participants_flagged=18)
    (tmp_path / "cough_screening.json").write_text(json.dumps(data))
    text = render(tmp_path)
    assert "| with >= 1 event (95 % CI) | participants flagged | events per hour |" in text
    assert "| breathing + speech (phone) | 40 | 10.0% (4/40; 4.0%-23.1%) | 3/21 | 30.0 |" in text


def test_fold_table_shows_each_systems_folds_and_nothing_without_them():
    from acula.aligner.fold_table import fold_table

    folds = [{"value": "a", "n": 133, "n_pos": 60, "auroc": 0.704}, {"value": "c", "n": 6, "n_pos": 4, "auroc": 1.0}]
    rows = [{"system": "fp32", "task": "h", "probe_train_folds": folds},
            {"system": "int8", "task": "h", "probe_train_folds": [folds[0], dict(folds[1], auroc=0.875)]},
            {"system": "fp32", "task": "cough"}]
    lines = fold_table(rows, "h", "probe_train", "T")
    assert "| system | a (133, 60) | c (6, 4) |" in lines
    assert "| fp32 | 0.704 | 1.000 |" in lines and "| int8 | 0.704 | 0.875 |" in lines
    assert fold_table(rows, "cough", "probe_train", "T") == [] and fold_table(rows, "h", "probe", "T") == []


def test_participant_bootstrap_is_wider_when_recordings_cluster():
    from acula.benchmarks.cough_screening import participant_bootstrap, wilson

    # 40 recordings, 4 flagged, all four from one participant of ten: the trials are not independent
    clustered = [(f"p{i // 4}", i < 4) for i in range(40)]
    spread = [(f"p{i}", i % 10 == 0) for i in range(40)]  # one flagged recording in each of four participants
    lo_c, hi_c = participant_bootstrap(clustered)
    lo_s, hi_s = participant_bootstrap(spread)
    assert lo_c == 0.0 and hi_c > wilson(4, 40)[1]  # a draw without that participant flags nothing
    assert hi_s - lo_s < hi_c - lo_c
    assert participant_bootstrap(clustered) == (lo_c, hi_c)  # seeded


def test_flagged_recordings_are_counted_by_recording_type():
    from acula.benchmarks.model_card import flagged_kinds

    data = {"groups": {"breathing + speech (phone)": {"flagged_paths": [
        "coswara/audio/a/breathing-shallow.flac", "coswara/audio/b/counting-normal.flac",
        "coswara/audio/c/breathing-shallow.flac"]}}}
    assert flagged_kinds(data, "breathing + speech (phone)") == [("breathing-shallow", 2), ("counting-normal", 1)]
    assert flagged_kinds(data, "cough (phone)") == [] and flagged_kinds({}, "cough (phone)") == []


def test_auroc_rows_score_each_population_with_a_participant_interval(tmp_path: Path):
    from acula.benchmarks.cough_screening import auroc_rows

    recs = ([("cough (phone)", f"c{i}", 0.9 - 0.01 * i) for i in range(10)]
            + [("breathing + speech (phone)", f"c{i}", 0.1) for i in range(10)]
            + [("heart (stethoscope)", "h", 0.95)])  # one stethoscope recording above every cough
    rows = {r["population"]: r for r in auroc_rows({"detector": recs})}
    phone, every = rows["phone + ESC-10 (the task table's population)"], rows["every non-cough recording"]
    assert phone["auroc"] == 1.0 and (phone["n_cough"], phone["n_noncough"]) == (10, 10)
    assert every["auroc"] == 10 / 11 and every["n_noncough"] == 11
    assert every["ci95"][0] < every["auroc"] <= every["ci95"][1]  # draws without the heart recording reach 1
    (tmp_path / "cough_screening.json").write_text(json.dumps({**screening(False), "auroc": list(rows.values())}))
    assert "| every non-cough recording | detector | 10 / 11 | 0.909 (" in render(tmp_path)


def test_the_phone_channel_rows_count_each_group_from_its_results_file_and_pool_the_stethoscopes(tmp_path: Path):
    from acula.benchmarks.model_card import phone_channel_lines

    assert phone_channel_lines(tmp_path) == []  # no phone run stored: no section
    groups = {"cough (phone)": {"n": 20, "flagged": 19}, "breathing + speech (phone)": {"n": 40, "flagged": 2},
              "heart (stethoscope)": {"n": 100, "flagged": 0}, "lung (stethoscope)": {"n": 300, "flagged": 4},
              "environment (ESC-10)": {"n": 50, "flagged": 1}}
    auroc = [{"population": "phone + ESC-10 (the task table's population)", "scorer": "detector", "auroc": 0.97,
              "ci95": [0.93, 0.99]},
             {"population": "every non-cough recording", "scorer": "detector", "auroc": 0.5, "ci95": [0.4, 0.6]}]
    (tmp_path / "cough_screening_phone_mulaw8k_test.json").write_text(json.dumps({"groups": groups, "auroc": auroc}))
    text = "\n".join(phone_channel_lines(tmp_path))
    assert ("| 8 kHz 8-bit mu-law | test | 95.0% (19/20; 76.4%-99.1%) | 5.0% (2/40; 1.4%-16.5%) | "
            "1.0% (4/400; 0.4%-2.5%) | 2.0% (1/50; 0.4%-10.5%) | 0.970 (0.930-0.990) |") in text
    assert "| val |" not in text and "recall >= 95%" in text


def test_the_phone_channel_verdict_names_a_threshold_only_when_every_channel_meets_both_targets(tmp_path: Path):
    from acula.benchmarks.model_card import phone_channel_lines

    def grid(rows: list[tuple[float, int, bool]]) -> dict:
        return {"grid": {"lowest_meeting_targets": next((on for on, _, ok in rows if ok), None), "rows": [
            {"on": on, "meets_targets": ok, "flagged": {"cough (phone)": k}, "n": {"cough (phone)": 20}}
            for on, k, ok in rows]}, "groups": {"cough (phone)": {"n": 20, "flagged": 19}}}

    def write(name: str, rows: list[tuple[float, int, bool]]) -> None:
        (tmp_path / name).write_text(json.dumps(grid(rows)))

    write("cough_screening_val.json", [(0.7, 19, True), (0.9, 17, True)])
    write("cough_screening_phone_8k_val.json", [(0.7, 19, False), (0.9, 18, True)])
    text = "\n".join(phone_channel_lines(tmp_path))
    assert "clean 0.7 (cough recall there 19/20); 8 kHz 0.9 (cough recall there 18/20)" in text
    # only two of the three channels stored: no verdict over every channel
    assert "Grids are stored for 2 of the 3 channels" in text
    write("cough_screening_phone_mulaw8k_val.json", [(0.7, 19, True), (0.9, 18, True)])
    assert "No threshold of the grid meets both" in "\n".join(phone_channel_lines(tmp_path))  # 0.7: 8 kHz; 0.9: recall
    write("cough_screening_phone_8k_val.json", [(0.7, 19, True), (0.9, 18, True)])
    assert "On val, 0.7 meet(s) both" in "\n".join(phone_channel_lines(tmp_path))
    # a channel where no threshold meets the targets is named, and no threshold is said to meet both
    write("cough_screening_phone_mulaw8k_val.json", [(0.7, 19, False), (0.9, 18, False)])
    text = "\n".join(phone_channel_lines(tmp_path))
    assert "mu-law: none of the grid" in text and "No threshold of the grid meets both" in text
