"""Peer embeddings for the evaluation table: MFCC statistics and YAMNet (TFLite).

Both take a clip's samples (16 kHz mono float32) and return one vector; the
table compares them with our encoders on the same records and splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdk.bundle import sha256_of
from sdk.frontend import LogMelFrontend

YAMNET_SHA256 = "687f226c147a2caab4706fbbab5e9cecb14b9a368264bf61108078b1fddf68f5"
YAMNET_PATCH = 15600  # 0.975 s
YAMNET_HOP = 7680  # 0.48 s
YAMNET_CLASSES = {"cough": 42, "wheeze": 37, "heart_murmur": 60, "heart_sounds": 59, "breathing": 36}


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


class YAMNet:
    """YAMNet TFLite: mean over 0.975 s patches of the 1024-d embedding, and its class scores."""

    def __init__(self, path: str | Path, max_patches: int | None = 20, check_sha256: bool = True) -> None:
        """max_patches: at most this many patches, spread over the clip (None: every patch)."""
        if check_sha256 and sha256_of(path) != YAMNET_SHA256:
            raise ValueError(f"{path}: sha256 does not match YAMNet's {YAMNET_SHA256}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        self.interpreter = Interpreter(str(path), num_threads=1, experimental_preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.scores = self.interpreter.get_output_details()[0]["index"]
        self.embedding = next(t["index"] for t in self.interpreter.get_tensor_details()
                              if "global_average_pooling2d" in t["name"] and list(t["shape"]) == [1, 1024])
        self.max_patches = max_patches

    def patches(self, samples: np.ndarray) -> np.ndarray:
        x = np.pad(samples, (0, max(0, YAMNET_PATCH - samples.size)))
        starts = np.arange(0, x.size - YAMNET_PATCH + 1, YAMNET_HOP)
        if self.max_patches is not None and starts.size > self.max_patches:
            starts = starts[np.linspace(0, starts.size - 1, self.max_patches).round().astype(int)]
        return np.stack([x[s : s + YAMNET_PATCH] for s in starts]).astype(np.float32)

    def run(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean embedding (1024,), max class scores over patches (521,))."""
        embs, scores = [], []
        for patch in self.patches(samples):
            self.interpreter.set_tensor(self.input, patch)
            self.interpreter.invoke()
            embs.append(self.interpreter.get_tensor(self.embedding).reshape(-1).copy())
            scores.append(self.interpreter.get_tensor(self.scores).reshape(-1).copy())
        return np.mean(embs, 0), np.max(scores, 0)
