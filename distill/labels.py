"""The training split's labels as targets over the bundle's label sets: the supervised zero-shot term of
distillation (``DistillWeights.label``).

The student's zero-shot score for a label is what the SDK computes (``sdk.scoring.LabelScorer``): the logit scale
times the mean cosine between the embedding and the label's prompts.  Where a training record answers a label set,
its label is a target distribution over the set's labels: the ``record_label`` rule of ``sdk/label_sets.json`` (the
one owner of how a record maps to a label, which export calibration reads too), with its ``shares`` for a record
that stands for several labels (an ICBHI cycle with crackles and wheezes: half each).  So heart takes PhysioNet 2016's
normal or abnormal, lung the ICBHI cycle's findings, sound Coswara's cough, breathing or speech and ESC-10's other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from acula.sdk.label_sets import label_sets, record_label_shares
from acula.sdk.scoring import label_columns

__all__ = ["label_targets", "prompt_averaging"]


def label_targets(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, known): ``targets`` float32 (n_rows, n_labels), per label set a distribution over its labels (the
    sets and labels in ``sdk.label_sets`` order), zero where the row does not answer the set; ``known`` float32
    (n_rows, n_sets), 1 where it does."""
    sets = label_sets()
    offsets = np.cumsum([0] + [len(labels) for labels in sets.values()])
    targets = np.zeros((len(rows), int(offsets[-1])), np.float32)
    known = np.zeros((len(rows), len(sets)), np.float32)
    for i, row in enumerate(rows):
        for k, (name, labels) in enumerate(sets.items()):
            answer = record_label_shares(row, name)
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
    columns: list[np.ndarray] = []
    slices = []
    for labels in label_sets().values():
        first = len(columns)
        columns += label_columns([np.array([where[p] for p in prompts]) for prompts in labels.values()], len(texts))
        slices.append(slice(first, len(columns)))
    return np.stack(columns, 1).astype(np.float32), slices
