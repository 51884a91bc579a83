"""The runtime registry: one call signature for every backend, found by name, with errors that say what to do."""

from __future__ import annotations

import numpy as np
import pytest
from acula.sdk.runtimes import BACKENDS, BackendUnavailable, make_backend


def test_the_registry_names_the_shipped_runtimes():
    assert set(BACKENDS) == {"onnxruntime", "tflite"}
    assert all(getattr(factory, "name", None) == name for name, factory in BACKENDS.items())


def test_an_unknown_runtime_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"backend must be one of \['onnxruntime', 'tflite'\]"):
        make_backend("coreml", b"")


def test_the_onnx_backend_returns_embeddings_and_heads_per_window():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.toy_bundle import toy_onnx

    backend = make_backend("onnxruntime", toy_onnx(16, 64, 8), n_threads=1)
    windows = np.random.default_rng(0).standard_normal((3, 16, 64)).astype(np.float32)
    emb, heads = backend(windows)
    assert emb.shape == (3, 8) and heads.shape == (3, 1) and emb.dtype == heads.dtype == np.float32
    one = backend(windows[1:2])[0]
    np.testing.assert_allclose(one[0], emb[1], rtol=1e-5, atol=1e-5)  # the same window alone (rounding aside)


def test_a_model_the_runtime_cannot_read_is_a_bundle_error():
    pytest.importorskip("onnxruntime")
    from acula.sdk.bundle import BundleError

    with pytest.raises(BundleError, match="the onnxruntime runtime cannot load"):
        make_backend("onnxruntime", b"not a graph")


def test_a_missing_runtime_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("blocked")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime"):
        make_backend("onnxruntime", b"")


def test_each_runtime_says_whether_one_instance_serves_many_threads():
    from acula.sdk.runtimes import BACKENDS

    assert {name: cls.thread_safe for name, cls in BACKENDS.items()} == {"onnxruntime": True, "tflite": False}
