"""Splits are deterministic, stratified and never let a group cross sides."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from acula.aligner.corpora import discover
from acula.aligner.records import Record
from acula.aligner.splits import GroupLeakError, check_group_disjoint, official_icbhi_split, split_groups

from tests.replicas import make_data_root


def synthetic_records(n_groups: int = 200) -> list[Record]:
    out = []
    for g in range(n_groups):
        label = "abnormal" if g % 4 == 0 else "normal"
        for k in range(1 + g % 3):
            out.append(Record(f"r{g}-{k}", "set", f"{g}-{k}.wav", "heart", f"set:{g}", {"outcome": label}))
    return out


def test_split_is_deterministic_under_a_seed_and_changes_with_it():
    records = synthetic_records()
    assert split_groups(records, seed=3) == split_groups(records, seed=3)
    assert split_groups(records, seed=3) != split_groups(records, seed=4)


def test_split_is_group_disjoint_and_stratified():
    records = synthetic_records()
    assignment = split_groups(records, seed=0)
    check_group_disjoint(records, assignment)
    for label in ("normal", "abnormal"):
        counts = Counter(assignment[r.record_id] for r in records if r.metadata["outcome"] == label)
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.7) < 0.06
        assert abs(counts["test"] / total - 0.15) < 0.06


def test_leak_is_refused_with_the_group_named():
    records = synthetic_records(3)
    assignment = {r.record_id: "train" for r in records}
    assignment[records[-1].record_id] = "test"
    with pytest.raises(GroupLeakError, match="set:2 in test\\+train"):
        check_group_disjoint(records, assignment)


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        split_groups(synthetic_records(5), fractions=(0.5, 0.5, 0.5))


def test_official_icbhi_split_leak_is_refused_or_repaired(tmp_path: Path):
    records = [r for r in discover(make_data_root(tmp_path), ["icbhi_cycles"])]
    with pytest.raises(GroupLeakError, match="icbhi:156"):
        official_icbhi_split(records, repair=False)
    repaired = official_icbhi_split(records)
    assert {repaired[r.record_id] for r in records if r.group_id == "icbhi:156"} in ({"train"}, {"test"})
    assert {repaired[r.record_id] for r in records if r.group_id == "icbhi:101"} == {"train"}


@pytest.mark.shared_data
def test_real_data_splits_keep_every_participant_and_patient_on_one_side(data_dir: Path):
    records = discover(data_dir)
    check_group_disjoint(records, split_groups(records, seed=0))
    icbhi = [r for r in records if r.dataset == "icbhi"]
    with pytest.raises(GroupLeakError, match="icbhi:218"):
        official_icbhi_split(icbhi, repair=False)
    check_group_disjoint(icbhi, official_icbhi_split(icbhi))
