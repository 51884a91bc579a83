"""The label sets and their prompts, as data: one table (``sdk/label_sets.json``) for every consumer.

Distillation embeds every prompt with the teacher, export writes the bundle's label sets and fits one
temperature per set from ``record_label``, evaluation builds its zero-shot prompt banks from the labels a
task names, and the SDK scores a bundle's label sets.  Numpy-free and torch-free.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """The whole table: {"templates": [...], "label_sets": {set: {"labels": ..., "record_label": ...}}}."""
    text = resources.files("acula.sdk").joinpath("label_sets.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def templates() -> list[str]:
    return list(table()["templates"])


def descriptions() -> dict[str, dict[str, list[str]]]:
    """{label set: {label: [description, ...]}} before the templates are applied."""
    return {name: {label: list(d) for label, d in entry["labels"].items()}
            for name, entry in table()["label_sets"].items()}


def expand(descs: list[str], templates_: list[str] | None = None) -> list[str]:
    """Every description with every template, description-major (open_clip's prompt bank order)."""
    return [t.format(d) for d in descs for t in (templates() if templates_ is None else templates_)]


def label_sets() -> dict[str, dict[str, list[str]]]:
    """{label set: {label: [prompt, ...]}} with every template applied."""
    return {name: {label: expand(d) for label, d in labels.items()} for name, labels in descriptions().items()}


def record_label_rule(label_set: str) -> dict[str, Any]:
    """How a corpus record maps to a label of ``label_set``.  KeyError with a sentence when the set is unknown
    or has no ``record_label`` rule: its temperature cannot be calibrated, and a silent default would ship."""
    entry = table()["label_sets"].get(label_set)
    if entry is None or "record_label" not in entry:
        raise KeyError(f"label set {label_set!r} has no 'record_label' in sdk/label_sets.json, so its temperature "
                       "cannot be calibrated; add one")
    rule: dict[str, Any] = entry["record_label"]
    return rule


def _record_key(row: dict[str, Any], rule: dict[str, Any]) -> str:
    meta = row.get("metadata", {})
    defaults = rule.get("defaults", {})
    return " ".join(str(row[f] if f in row else meta.get(f, defaults.get(f))) for f in rule["fields"])


def record_label(row: dict[str, Any], label_set: str) -> str | None:
    """The label of ``label_set`` a corpus record (a manifest row) stands for, or None when it stands for none."""
    rule = record_label_rule(label_set)
    label = rule["values"].get(_record_key(row, rule))
    return None if label is None else str(label)


def record_label_shares(row: dict[str, Any], label_set: str) -> dict[str, float] | None:
    """The labels of ``label_set`` a corpus record stands for, with their shares: its one label (share 1), or the
    shares the rule's ``shares`` gives a record that stands for several (an ICBHI cycle with crackles and
    wheezes), or None."""
    rule = record_label_rule(label_set)
    key = _record_key(row, rule)
    if key in rule.get("shares", {}):
        return {str(k): float(v) for k, v in rule["shares"][key].items()}
    label = rule["values"].get(key)
    return None if label is None else {str(label): 1.0}
