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


def student_from_bundle(bundle: Bundle, cfg: Any) -> Any:
    """The bundle's fp32 ONNX student as a trainable :class:`distill.student.StreamingStudent` of config ``cfg``
    (the manifest's ``student_config``): a fine-tune starts from the shipped weights instead of from scratch.

    The export folded each batch norm into the convolution before it, so each convolution takes the folded
    weight and its batch norm becomes the identity carrying the folded bias (weight 1, running mean 0, running
    variance 1 - eps): in eval mode the module computes what the ONNX graph computes (a test checks it).
    Fine-tune it with the batch norms kept in eval mode (``DistillConfig.freeze_norm``), or batch statistics
    would replace the identity."""
    import onnx
    from acula.distill.student import StreamingStudent
    from onnx import numpy_helper

    name, _ = bundle.model_file("onnxruntime", "fp32")
    graph = onnx.load_from_string(bundle.files[name]).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    student = StreamingStudent(cfg)
    modules = dict(student.named_modules())
    conv_names = [k for k, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
    if len(conv_names) != len(convs):
        raise ValueError(f"{bundle.source}: {len(convs)} convolutions in the graph, {len(conv_names)} in the config")
    state = student.state_dict()
    for key, node in zip(conv_names, convs, strict=True):
        weight, bias = (inits[i] for i in node.input[1:3])
        if tuple(weight.shape) != tuple(state[f"{key}.weight"].shape):
            raise ValueError(f"{bundle.source}: {node.input[1]} is {weight.shape}, {key} wants "
                             f"{tuple(state[key + '.weight'].shape)}")
        parent, idx = key.rsplit(".", 1)
        norm = f"{parent}.{int(idx) + 1}"
        eps = modules[norm].eps  # type: ignore[union-attr]
        state[f"{key}.weight"] = torch.from_numpy(weight.copy())
        state[f"{norm}.weight"] = torch.ones_like(state[f"{norm}.weight"])
        state[f"{norm}.bias"] = torch.from_numpy(bias.copy())
        state[f"{norm}.running_mean"] = torch.zeros_like(state[f"{norm}.running_mean"])
        state[f"{norm}.running_var"] = torch.full_like(state[f"{norm}.running_var"], 1.0 - eps)
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    if cfg.embed_rank:
        state["embed.0.weight"] = torch.from_numpy(inits[matmuls[0].input[1]].T.copy())
    for key in ("embed.1.weight", "embed.1.bias", "heads.weight", "heads.bias", "embed.weight", "embed.bias"):
        if key in state and key in inits:
            state[key] = torch.from_numpy(inits[key].copy())
    student.load_state_dict(state)
    return student.eval()
