"""Zero-shot scoring: embeddings -> per-label-set logits, softmax and the cough head's sigmoid.

The label logits of a label set are the mean, over each label's prompts, of the scaled cosine similarity
between the audio embedding and the prompt embedding, divided by the label set's temperature.  A mean of
dot products is a dot product with the mean, so :class:`LabelScorer` folds the prompt bank, the prompt
groups, ``logit_scale`` and the temperatures into one matrix at load: scoring a window is one
(1, embed_dim) @ (embed_dim, n_labels_total) product instead of one ``np.mean`` per label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from acula.sdk.quality import QualityFlags, row_dots

__all__ = ["LabelScorer", "check_matchable", "clip_embedding", "sigmoid", "softmax"]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``; same shape and dtype as ``logits``."""
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    z /= z.sum(axis=axis, keepdims=True)
    return z


def clip_embedding(embeddings: np.ndarray) -> np.ndarray:
    """A recording's embedding from its windows': the mean of the unit-normalised window embeddings, shape
    (embed_dim,) from (n_windows, embed_dim).  The one rule for search, the case index and the evaluation."""
    e = np.asarray(embeddings)
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).mean(0)


def check_matchable(quality: QualityFlags | None, n_windows: int, subject: str, purpose: str,
                    too_short_hint: str = "") -> None:
    """The one rule for a recording that a case index takes or is searched with (``acula index build``,
    ``acula search``, :meth:`sdk.Model.search`): an AudioError when it is digital silence throughout (nothing to
    ``purpose``) or has no analysis window.  ``subject`` names it in the sentence."""
    from acula.sdk.audio import AudioError  # sdk.audio imports sdk.quality, as this module does

    if quality is not None and quality.silent:
        raise AudioError(f"{subject} is digital silence throughout (nothing to {purpose})")
    if not n_windows:
        raise AudioError(f"{subject} is too short for one analysis window{too_short_hint}")


def sigmoid(x: Any) -> Any:
    """Logistic function, elementwise; a float32 input keeps float32 arithmetic."""
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: Any) -> Any:
    """The inverse of :func:`sigmoid`, elementwise, with ``p`` clipped to [1e-7, 1 - 1e-7] (a probability of 0 or 1
    maps to about -16 or +16, not infinity); float64."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def label_columns(label_groups: list[np.ndarray], n_prompts: int) -> list[np.ndarray]:
    """Per label (its prompt indices in ``label_groups``), the float64 weights over the ``n_prompts`` prompts whose
    product with the prompt scores is the mean of the label's own: the columns of :class:`LabelScorer`'s matrix
    before its scale, and of distillation's label term (``distill.labels.prompt_averaging``)."""
    columns = []
    for idx in label_groups:
        w = np.zeros(n_prompts, dtype=np.float64)
        w[np.asarray(idx)] = 1.0 / len(idx)
        columns.append(w)
    return columns


class LabelScorer:
    """Label logits of every label set from embeddings.

    ``prompts``: the prompt bank, shape (n_prompts, embed_dim), float32; ``groups``: per label set, per label,
    the prompt indices; ``temperature``: per label set.  The fused matrix has shape (embed_dim, n_labels_total),
    float32, and each label set owns a column slice of it.
    """

    def __init__(self, prompts: np.ndarray, groups: dict[str, list[np.ndarray]], logit_scale: float,
                 temperature: dict[str, float], bias: dict[str, list[float]] | None = None) -> None:
        columns: list[np.ndarray] = []
        offsets: list[float] = []
        self.slices: dict[str, slice] = {}
        for name, label_groups in groups.items():
            first = len(columns)
            for w in label_columns(label_groups, prompts.shape[0]):
                columns.append(w * logit_scale / temperature[name])
            b = (bias or {}).get(name)
            offsets += [float(v) for v in b] if b is not None else [0.0] * len(label_groups)
            self.slices[name] = slice(first, len(columns))
        averaging = np.stack(columns, 1)  # (n_prompts, n_labels_total)
        self.matrix = np.ascontiguousarray(prompts.astype(np.float64).T @ averaging, dtype=np.float32)
        #: per label, added after the temperature (vector scaling; zero where a set has no fitted bias)
        self.offset = np.asarray(offsets, dtype=np.float32)

    def __call__(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """(n, embed_dim) -> {label set: (n, n_labels)}, float32.  Each row is its own (1 x d) @ (d x L)
        product, so a window's logits never depend on how many windows share the call."""
        # the product of the raw rows, then divided by each row's norm: the division touches n_labels values, not
        # embed_dim (one window, idle machine: 5.7 -> 5.4 us here; the 11 us first read was taken beside a training)
        all_logits = np.matmul(embeddings[:, None, :], self.matrix)[:, 0, :]
        norms = np.sqrt(row_dots(embeddings))
        norms += 1e-12
        all_logits /= norms[:, None]
        all_logits += self.offset
        return {name: all_logits[:, s] for name, s in self.slices.items()}
