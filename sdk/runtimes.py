"""Inference backends with one call signature: ``backend(windows) -> (embeddings, heads)``.

``windows``: (batch, window_frames, n_mels) float32; returns (batch, embed_dim) and
(batch, n_heads) float32.  One class per runtime, imported lazily, with an error
that says what to install.  Graphs hold no hidden state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class BackendUnavailable(ImportError):
    pass


class Backend(Protocol):
    """The runtime contract: ``backend(windows) -> (embeddings, heads)``, shapes as in the module docstring.
    ``thread_safe``: one instance may be called from many threads at once (else the model serialises calls)."""

    name: str
    thread_safe: bool

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class OnnxBackend:
    name = "onnxruntime"
    thread_safe = True  # an InferenceSession may be run from many threads at once

    def __init__(self, model: bytes, n_threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable("the onnxruntime backend needs: pip install onnxruntime") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        emb, heads = self.session.run(self.outputs, {self.input: np.ascontiguousarray(windows, dtype=np.float32)})
        return np.asarray(emb, dtype=np.float32), np.asarray(heads, dtype=np.float32)


def _tflite_interpreter() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as exc:
        raise BackendUnavailable("the tflite backend needs: pip install ai-edge-litert "
                                 "(or tflite-runtime on numpy<2 devices)") from exc


class TFLiteBackend:
    """ai-edge-litert or tflite-runtime; int8 graphs get their inputs quantised and outputs dequantised."""

    name = "tflite"
    thread_safe = False  # an interpreter holds its tensors: one call at a time

    def __init__(self, model: bytes, n_threads: int = 1) -> None:
        interpreter = _tflite_interpreter()
        self.interpreter = interpreter(model_content=model, num_threads=n_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["name"])
        self.outputs = outputs  # output_0 = embedding, output_1 = heads

    @staticmethod
    def _quantise(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])

    @staticmethod
    def _dequantise(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = detail["quantization"]
        return ((x.astype(np.float32) - zero) * scale).astype(np.float32)

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embs, heads = [], []
        for w in np.asarray(windows, dtype=np.float32):
            self.interpreter.set_tensor(self.input["index"], self._quantise(w[None], self.input))
            self.interpreter.invoke()
            out = [self._dequantise(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]
            embs.append(out[0])
            heads.append(out[1])
        return np.concatenate(embs), np.concatenate(heads)


#: runtime name (a bundle file's "backend") -> (model bytes, n_threads) -> Backend.  A new runtime is one class
#: here and one entry; it raises BackendUnavailable, naming the package to install, when that is missing.
BACKENDS: dict[str, Callable[[bytes, int], Backend]] = {"onnxruntime": OnnxBackend, "tflite": TFLiteBackend}


def make_backend(name: str, model: bytes, n_threads: int = 1) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    try:
        return BACKENDS[name](model, n_threads)
    except BackendUnavailable:
        raise
    except Exception as exc:  # the runtimes raise their own types (onnxruntime's InvalidProtobuf, Fail, ...)
        from acula.sdk.bundle import BundleError

        raise BundleError(f"the {name} runtime cannot load the bundle's model: {type(exc).__name__}: {exc}") from exc
