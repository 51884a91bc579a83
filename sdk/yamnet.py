"""YAMNet (TFLite), the reference peer: one torch-free runner for the evaluation tables, the cough-screening
reference column and ``acula bench``'s speed comparison.

Input: 16 kHz mono float32 cut into 0.975 s patches every 0.48 s (a clip shorter than one patch is
zero-padded); per patch the 521 AudioSet class scores and, with ``embedding=True``, the 1024-d embedding
(an intermediate tensor: it needs the interpreter to keep every tensor, which costs speed, so the latency
benchmark turns it off).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from acula.sdk.bundle import sha256_of
from acula.sdk.runtimes import _tflite_interpreter

YAMNET_SHA256 = "687f226c147a2caab4706fbbab5e9cecb14b9a368264bf61108078b1fddf68f5"
YAMNET_PATCH = 15600  # 0.975 s
YAMNET_HOP = 7680  # 0.48 s
#: AudioSet class indices the evaluation asks about
YAMNET_CLASSES = {"cough": 42, "wheeze": 37, "heart_murmur": 60, "heart_sounds": 59, "breathing": 36}


class YAMNet:
    """YAMNet TFLite: mean over 0.975 s patches of the 1024-d embedding, and its class scores."""

    def __init__(self, path: str | Path, max_patches: int | None = 20, check_sha256: bool = True,
                 n_threads: int = 1, embedding: bool = True) -> None:
        """max_patches: at most this many patches, spread over the clip (None: every patch)."""
        if check_sha256 and sha256_of(path) != YAMNET_SHA256:
            raise ValueError(f"{path}: sha256 does not match YAMNet's {YAMNET_SHA256}")
        self.interpreter = _tflite_interpreter()(str(path), num_threads=n_threads,
                                                 experimental_preserve_all_tensors=embedding)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.scores = self.interpreter.get_output_details()[0]["index"]
        self.embedding = None if not embedding else next(
            t["index"] for t in self.interpreter.get_tensor_details()
            if "global_average_pooling2d" in t["name"] and list(t["shape"]) == [1, 1024])
        self.max_patches = max_patches

    def patches(self, samples: np.ndarray) -> np.ndarray:
        """(n_patches, 15600) float32: every hop's patch, or ``max_patches`` of them evenly spread."""
        x = np.pad(samples, (0, max(0, YAMNET_PATCH - samples.size)))
        starts = np.arange(0, x.size - YAMNET_PATCH + 1, YAMNET_HOP)
        if self.max_patches is not None and starts.size > self.max_patches:
            starts = starts[np.linspace(0, starts.size - 1, self.max_patches).round().astype(int)]
        return np.stack([x[s : s + YAMNET_PATCH] for s in starts]).astype(np.float32)

    def invoke(self, patch: np.ndarray) -> None:
        """Run one patch (15600,) float32; its outputs stay in the interpreter."""
        self.interpreter.set_tensor(self.input, patch)
        self.interpreter.invoke()

    def run(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean embedding (1024,), max class scores over patches (521,))."""
        if self.embedding is None:
            raise ValueError("this YAMNet was made with embedding=False; make it with embedding=True to read "
                             "embeddings")
        embs, scores = [], []
        for patch in self.patches(samples):
            self.invoke(patch)
            embs.append(self.interpreter.get_tensor(self.embedding).reshape(-1).copy())
            scores.append(self.interpreter.get_tensor(self.scores).reshape(-1).copy())
        return np.mean(embs, 0), np.max(scores, 0)
