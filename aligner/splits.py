"""Deterministic, stratified, group-disjoint splits, and the check that refuses leaks."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from acula.aligner.records import Record

SPLITS = ("train", "val", "test")


class GroupLeakError(ValueError):
    """A group (participant, patient) has records on two sides of a split."""


def _stable_hash(text: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "big")


def default_stratum(record: Record) -> str:
    """The label a split should balance: the data set plus its main label."""
    m = record.metadata
    label = m.get("outcome") or m.get("sound_class") or m.get("diagnosis") or record.modality
    return f"{record.dataset}:{label}"


def split_groups(
    records: Sequence[Record],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    stratum: Callable[[Record], str] = default_stratum,
) -> dict[str, str]:
    """Return {record_id: split}.  Whole groups move together; each group is
    stratified by its most common stratum and dealt in seeded hash order so the
    running share of every split tracks ``fractions``."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    by_group: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_group[r.group_id].append(r)
    strata: dict[str, list[str]] = defaultdict(list)
    for group, members in by_group.items():
        strata[Counter(stratum(r) for r in members).most_common(1)[0][0]].append(group)
    assignment: dict[str, str] = {}
    for _, groups in sorted(strata.items()):
        groups.sort(key=lambda g: _stable_hash(g, seed))
        counts = [0.0, 0.0, 0.0]
        for group in groups:
            total = sum(counts) + len(by_group[group])
            # give the group to the split furthest below its target share
            deficit = [fractions[i] * total - counts[i] for i in range(3)]
            side = max(range(3), key=lambda i: (deficit[i], -i))
            counts[side] += len(by_group[group])
            for r in by_group[group]:
                assignment[r.record_id] = SPLITS[side]
    check_group_disjoint(records, assignment)
    return assignment


def check_group_disjoint(records: Sequence[Record], assignment: dict[str, str]) -> None:
    """Raise GroupLeakError naming every group that appears in more than one split."""
    sides: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.record_id in assignment:
            sides[r.group_id].add(assignment[r.record_id])
    leaks = {g: sorted(s) for g, s in sides.items() if len(s) > 1}
    if leaks:
        listed = ", ".join(f"{g} in {'+'.join(s)}" for g, s in sorted(leaks.items()))
        raise GroupLeakError(f"{len(leaks)} group(s) span two splits: {listed}")


def official_icbhi_split(records: Sequence[Record], repair: bool = True) -> dict[str, str]:
    """The official ICBHI 2017 train/test split ('val' unused).

    It puts patients 156 and 218 on both sides.  With ``repair`` each such patient
    moves wholly to the side that holds most of its cycles (ties go to test);
    without it the leak is refused with :class:`GroupLeakError`.
    """
    assignment = {r.record_id: r.metadata["official_split"] for r in records if "official_split" in r.metadata}
    if repair:
        votes: dict[str, Counter[str]] = defaultdict(Counter)
        for r in records:
            if r.record_id in assignment:
                votes[r.group_id][assignment[r.record_id]] += 1
        for r in records:
            v = votes[r.group_id]
            if r.record_id in assignment and len(v) > 1:
                assignment[r.record_id] = "train" if v["train"] > v["test"] else "test"
    check_group_disjoint(records, assignment)
    return assignment
