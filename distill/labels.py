"""The training split's labels as targets over the bundle's label sets: the supervised zero-shot term of
distillation (``DistillWeights.label``).

The student's zero-shot score for a label is what the SDK computes (``sdk.scoring.LabelScorer``): the logit scale
times the mean cosine between the embedding and the label's prompts.  Where a training record answers a label set,
its label is a target distribution over the set's labels:

- heart (PhysioNet 2016): ``outcome`` normal or abnormal;
- lung (ICBHI cycles): normal without crackles or wheezes, else crackles, wheezes, or half each when both;
- sound (Coswara, ESC-10): Coswara's ``modality`` (cough, breathing, speech); every ESC-10 clip is ``other``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from acula.aligner.corpus import row_field
from acula.sdk.label_sets import label_sets

__all__ = ["label_targets", "prompt_averaging"]


def _heart(row: dict[str, Any]) -> dict[str, float] | None:
    if row["dataset"] != "physionet2016":
        return None
    outcome = row_field(row, "outcome")
    return {str(outcome): 1.0} if outcome in ("normal", "abnormal") else None


def _lung(row: dict[str, Any]) -> dict[str, float] | None:
    if row["dataset"] != "icbhi":
        return None
    crackles, wheezes = row_field(row, "crackles"), row_field(row, "wheezes")
    if crackles is None or wheezes is None:
        return None
    found = [name for name, v in (("crackles", crackles), ("wheezes", wheezes)) if str(v) == "1"]
    return {name: 1.0 / len(found) for name in found} if found else {"normal": 1.0}


def _sound(row: dict[str, Any]) -> dict[str, float] | None:
    if row["dataset"] == "esc10":
        return {"other": 1.0}
    if row["dataset"] == "coswara" and row.get("modality") in ("cough", "breathing", "speech"):
        return {str(row["modality"]): 1.0}
    return None


#: label set -> how a corpus row answers it (None: it does not)
ANSWERS = {"heart": _heart, "lung": _lung, "sound": _sound}


def label_targets(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, known): ``targets`` float32 (n_rows, n_labels), per label set a distribution over its labels (the
    sets and labels in ``sdk.label_sets`` order), zero where the row does not answer the set; ``known`` float32
    (n_rows, n_sets), 1 where it does."""
    sets = label_sets()
    missing = set(sets) - set(ANSWERS)
    if missing:
        raise ValueError(f"no training labels for the label sets {sorted(missing)}: add them to distill.labels.ANSWERS")
    offsets = np.cumsum([0] + [len(labels) for labels in sets.values()])
    targets = np.zeros((len(rows), int(offsets[-1])), np.float32)
    known = np.zeros((len(rows), len(sets)), np.float32)
    for i, row in enumerate(rows):
        for k, (name, labels) in enumerate(sets.items()):
            answer = ANSWERS[name](row)
            if answer is None:
                continue
            order = list(labels)
            for label, weight in answer.items():
                targets[i, offsets[k] + order.index(label)] = weight
            known[i, k] = 1.0
    return targets, known


def prompt_averaging(texts: Sequence[str]) -> tuple[np.ndarray, list[slice]]:
    """(the (n_prompts, n_labels) matrix whose column for a label averages its prompts' scores, each label set's
    column slice): ``texts`` is the prompt bank (``distill.train.embed_prompt_bank``'s order)."""
    where = {t: k for k, t in enumerate(texts)}
    columns, slices = [], []
    for labels in label_sets().values():
        first = len(columns)
        for prompts in labels.values():
            w = np.zeros(len(texts), np.float32)
            w[[where[p] for p in prompts]] = 1.0 / len(prompts)
            columns.append(w)
        slices.append(slice(first, len(columns)))
    return np.stack(columns, 1), slices
