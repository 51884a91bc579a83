"""Peer embeddings for the evaluation table: MFCC statistics, and YAMNet (TFLite; its runner is
``sdk.yamnet``, shared with ``acula bench``, and re-exported here).

Both take a clip's samples (16 kHz mono float32) and return one vector; the
table compares them with our encoders on the same records and splits.
"""

from __future__ import annotations

import numpy as np
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.yamnet import YAMNET_CLASSES, YAMNET_HOP, YAMNET_PATCH, YAMNET_SHA256, YAMNet

__all__ = ["YAMNET_CLASSES", "YAMNET_HOP", "YAMNET_PATCH", "YAMNET_SHA256", "MFCCStats", "YAMNet", "dct_matrix"]


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, shape (n_in, n_out)."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    m[:, 0] /= np.sqrt(2.0)
    return m


class MFCCStats:
    """openSMILE-like hand-crafted baseline: 20 MFCCs and their deltas, mean and std -> 80 values."""

    def __init__(self, n_mfcc: int = 20) -> None:
        self.frontend = LogMelFrontend()
        self.dct = dct_matrix(self.frontend.config.n_mels, n_mfcc)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        feats = self.frontend(np.pad(samples, (0, max(0, 2048 - samples.size))))
        mfcc = feats @ self.dct
        delta = np.diff(mfcc, axis=0) if mfcc.shape[0] > 1 else np.zeros_like(mfcc)
        return np.concatenate([mfcc.mean(0), mfcc.std(0), delta.mean(0), delta.std(0)]).astype(np.float32)
