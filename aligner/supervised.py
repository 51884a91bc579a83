"""The supervised control's labels: one binary head per clinical question the corpus can answer.

The control (``acula align --config supervised-cpu``) trains mn04 on the same training records, steps and
augmentations as the aligned run, with these heads in place of the text alignment, so the evaluation can say
whether language alignment beats plain supervision on the labels the reports were written from.
A record that cannot answer a head (a heart recording has no crackles label) is masked out of that head's loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from acula.aligner.corpus import row_field

#: head name -> (data sets that answer it, field of the row or its metadata, values that count as positive)
SUPERVISED_HEADS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "cough": (("coswara", "esc10"), "modality", ("cough",)),
    "heart_abnormal": (("physionet2016",), "outcome", ("abnormal",)),
    "crackles": (("icbhi",), "crackles", ("1",)),
    "wheezes": (("icbhi",), "wheezes", ("1",)),
    "copd": (("icbhi",), "diagnosis", ("COPD",)),
}


def head_labels(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mask), both float32 of shape (n_rows, n_heads) in ``SUPERVISED_HEADS`` order; mask 1 where
    the row's data set answers the head."""
    labels = np.zeros((len(rows), len(SUPERVISED_HEADS)), np.float32)
    mask = np.zeros_like(labels)
    for i, row in enumerate(rows):
        for k, (datasets, field, positive) in enumerate(SUPERVISED_HEADS.values()):
            value = row_field(row, field)
            if row["dataset"] in datasets and value is not None:
                mask[i, k] = 1.0
                labels[i, k] = float(str(value) in positive)
    return labels, mask
