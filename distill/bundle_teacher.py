"""A shipped bundle's fp32 student as the distillation teacher (``acula distill --teacher sdk/models/default``).

The aligned teacher run a bundle was distilled from is not always at hand (it is a training artefact, not
shipped), and re-aligning does not reproduce it bit for bit on another CPU.  A new student that must keep the
shipped one's answers while learning something more (a level it never heard, a device it never met) can learn
from the shipped student itself: its fp32 ONNX graph gives the embedding targets, its prompt bank the zero-shot
targets, its manifest the front end and the logit scale.  The teacher runs in onnxruntime, one crop at a time
(the exported graph has a fixed batch of 1), outside autograd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from acula.sdk.bundle import Bundle, read_bundle
from torch import nn


class _Config:
    def __init__(self, embed_dim: int) -> None:
        self.embed_dim = embed_dim


class BundleTeacher(nn.Module):
    """The ``AcuLaModel`` surface distillation uses (``embed_audio``, ``logit_scale``, ``cfg.embed_dim``),
    answered by a bundle's fp32 ONNX student."""

    def __init__(self, bundle: Bundle) -> None:
        super().__init__()
        import onnxruntime as ort

        name, info = bundle.model_file("onnxruntime", "fp32")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(bundle.files[name], opts, providers=["CPUExecutionProvider"])
        self.input_name = info["inputs"][0]["name"]
        self.window = tuple(info["inputs"][0]["shape"][1:])
        self.bundle = bundle
        scale = float(bundle.manifest.get("calibration", {}).get("logit_scale", 0.0))  # the distill run's own
        if not scale > 0:
            raise ValueError(f"{bundle.source}: the manifest records no logit_scale")
        self.logit_scale = nn.Parameter(torch.tensor(np.log(scale), dtype=torch.float32), requires_grad=False)
        self.cfg = _Config(int(bundle.manifest["embed_dim"]))

    @torch.no_grad()
    def embed_audio(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) normalised log-mel -> (batch, embed_dim), the bundle student's embedding."""
        if tuple(logmel.shape[1:]) != self.window:
            raise ValueError(f"the bundle teacher takes crops of {self.window} (frames, mels), got "
                             f"{tuple(logmel.shape[1:])}")
        x = logmel.detach().cpu().numpy().astype(np.float32)
        out = [self.session.run(["embedding"], {self.input_name: x[k:k + 1]})[0][0] for k in range(len(x))]
        return torch.from_numpy(np.stack(out))

    def prompt_bank(self) -> tuple[list[str], np.ndarray]:
        """The bundle's prompt texts and their (already projected, normalised) embeddings."""
        texts = list(self.bundle.manifest["prompt_bank"]["texts"])
        return texts, self.bundle.array(self.bundle.manifest["prompt_bank"]["file"]).astype(np.float32)

    def meta(self) -> dict[str, Any]:
        """What ``distill`` reads from a teacher run's metadata."""
        prov = self.bundle.manifest.get("provenance", {})
        return {"frontend": self.bundle.manifest["frontend"], "teacher_id": prov.get("teacher_id"),
                "text_dim": None, "bundle_sha256": self.bundle.sha256}


def is_bundle(path: str | Path) -> bool:
    path = Path(path)
    return (path / "manifest.json").is_file() or path.suffix == ".zip"


def load_bundle_teacher(path: str | Path) -> tuple[BundleTeacher, dict[str, Any]]:
    teacher = BundleTeacher(read_bundle(path))
    return teacher.eval(), teacher.meta()
