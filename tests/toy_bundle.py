"""A toy bundle built with the onnx helper API (no torch): mean over time, then two matmuls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from acula.export.bundle import npy_bytes, write_bundle
from acula.sdk.frontend_config import FrontendConfig


def toy_onnx(window_frames: int, n_mels: int, embed_dim: int, seed: int = 0) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w_emb = rng.standard_normal((n_mels, embed_dim)).astype(np.float32)
    w_head = (rng.standard_normal((n_mels, 1)) * 0.5).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["logmel", "axes"], ["pooled"], keepdims=0),
             helper.make_node("MatMul", ["pooled", "w_emb"], ["embedding"]),
             helper.make_node("MatMul", ["pooled", "w_head"], ["heads"])]
    graph = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", window_frames, n_mels])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", embed_dim]),
         helper.make_tensor_value_info("heads", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(w_emb, "w_emb"), numpy_helper.from_array(w_head, "w_head"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


def make_toy_bundle(out: Path, window_frames: int = 16, hop_frames: int = 8, embed_dim: int = 8,
                    as_zip: bool = False, level: dict | None = None, frontend: FrontendConfig | None = None) -> Path:
    """``level``: the manifest's level block (sdk.level), absent when None; ``frontend``: default FrontendConfig()."""
    cfg = frontend or FrontendConfig()
    model = toy_onnx(window_frames, cfg.n_mels, embed_dim)
    rng = np.random.default_rng(1)
    prompts = rng.standard_normal((6, embed_dim)).astype(np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    sig = {"inputs": [{"name": "logmel", "shape": [1, window_frames, cfg.n_mels], "dtype": "float32"}],
           "outputs": [{"name": "embedding", "shape": [1, embed_dim]}, {"name": "heads", "shape": [1, 1]}]}
    files = {
        "student_fp32.onnx": (model, {"role": "student", "backend": "onnxruntime", "precision": "fp32", **sig}),
        "student_int8.onnx": (model, {"role": "student", "backend": "onnxruntime", "precision": "int8", **sig}),
        "prompts.npy": (npy_bytes(prompts), {"role": "prompt_bank"}),
    }
    manifest = {"name": "toy", "frontend": cfg.to_dict(), "window_frames": window_frames, "hop_frames": hop_frames,
                "embed_dim": embed_dim,
                "prompt_bank": {"file": "prompts.npy", "texts": [f"p{i}" for i in range(6)],
                                "label_sets": {"lung": {"normal": [0], "crackles": [1], "wheezes": [2]},
                                               "heart": {"normal": [3], "abnormal": [4]},
                                               "sound": {"cough": [5], "other": [0]}}},
                "heads": {"cough": {"index": 0}}, "calibration": {"logit_scale": 10.0, "temperature": 1.0},
                "screening": {"cough_on": 0.5, "cough_off": 0.4, "min_duration_s": 0.1, "refractory_s": 0.5,
                              "smoothing_windows": 1, "target_false_alarms_per_hour": 1.0},
                "provenance": {"what": "toy bundle for tests"}, "licence": "test only"}
    if level is not None:
        manifest["level"] = level
    return write_bundle(out, files, manifest, as_zip=as_zip)
