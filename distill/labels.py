"""The training split's labels as targets over the bundle's label sets: the supervised zero-shot term of
distillation (``DistillWeights.label``).

The student's zero-shot score for a label is what the SDK computes (``sdk.scoring.LabelScorer``): the logit scale
times the mean cosine between the embedding and the label's prompts.  Where a training record answers a label set,
its label is a target distribution over the set's labels: the ``record_label`` rule of ``sdk/label_sets.json`` (the
one owner of how a record maps to a label, which export calibration reads too), with its ``shares`` for a record
that stands for several labels (an ICBHI cycle with crackles and wheezes: half each).  So heart takes PhysioNet 2016's
normal or abnormal, lung the ICBHI cycle's findings, sound Coswara's cough, breathing or speech and ESC-10's other.

:func:`head_label_targets` turns a supervised model's heads (``aligner.supervised``: one sigmoid per finding) into
the same kind of targets, soft ones, for the head-teacher term (``DistillWeights.head_kd``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from acula.sdk.label_sets import label_sets, record_label_shares
from acula.sdk.scoring import label_columns

__all__ = ["HEAD_LABEL_SETS", "head_label_targets", "label_targets", "prompt_averaging"]


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


#: the label sets a supervised model's heads answer (``aligner.supervised.SUPERVISED_HEADS``), and the heads each
#: reads: heart from ``heart_abnormal``, lung from ``crackles`` and ``wheezes``.  The sound set is left to the labels
#: and the zero-shot teacher (one cough head cannot give breathing, speech and other their shares).
HEAD_LABEL_SETS = {"heart": ("heart_abnormal",), "lung": ("crackles", "wheezes")}


def head_label_targets(head_logits: torch.Tensor, head_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """A supervised model's head logits (n, n_heads), heads named ``head_names`` in order -> (targets, answered):
    ``targets`` (n, n_labels) in :func:`label_targets`' layout, per label set of :data:`HEAD_LABEL_SETS` a
    distribution over its labels, zero elsewhere; ``answered`` (n_sets,) 1 for those sets.  The heads are
    independent sigmoids, read as independent findings: heart abnormal = p; lung normal = (1 - c)(1 - w), crackles
    = c (1 - w) + c w / 2, wheezes = w (1 - c) + c w / 2 (both findings: half each, as ``record_label``'s ``shares``
    give an ICBHI cycle with both).  Raises ValueError where the label sets or the heads are not the ones this reads."""
    sets = label_sets()
    missing = [h for hs in HEAD_LABEL_SETS.values() for h in hs if h not in head_names]
    if missing:
        raise ValueError(f"the head teacher has no {missing} head (its heads: {list(head_names)})")
    expected = {"heart": ["normal", "abnormal"], "lung": ["normal", "crackles", "wheezes"]}
    for name, labels in expected.items():
        if list(sets.get(name, {})) != labels:
            raise ValueError(f"head targets read label set {name!r} as {labels}; sdk/label_sets.json has "
                             f"{list(sets.get(name, {}))}")
    p = torch.sigmoid(head_logits.float())
    col = {h: p[:, list(head_names).index(h)] for hs in HEAD_LABEL_SETS.values() for h in hs}
    offsets = np.cumsum([0] + [len(labels) for labels in sets.values()])
    targets = head_logits.new_zeros(head_logits.shape[0], int(offsets[-1]), dtype=torch.float32)
    answered = head_logits.new_zeros(len(sets), dtype=torch.float32)
    order = list(sets)
    a, c, w = col["heart_abnormal"], col["crackles"], col["wheezes"]
    k = order.index("heart")
    targets[:, offsets[k]] = 1 - a
    targets[:, offsets[k] + 1] = a
    answered[k] = 1.0
    k = order.index("lung")
    both = c * w / 2
    targets[:, offsets[k]] = (1 - c) * (1 - w)
    targets[:, offsets[k] + 1] = c * (1 - w) + both
    targets[:, offsets[k] + 2] = w * (1 - c) + both
    answered[k] = 1.0
    return targets, answered
