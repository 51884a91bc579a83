"""align -> distill -> export -> sdk.load on a tiny generated corpus, with parity on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("litert_torch")

from acula.export.cli import EXPORT_TARGETS  # noqa: E402
from acula.sdk.label_sets import descriptions  # noqa: E402
from acula.sdk.model import load  # noqa: E402
from acula.sdk.synth import synth_recording  # noqa: E402

from acula import sdk  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tiny_bundle: Path) -> Path:
    """replica data -> corpus -> align -> distill -> export, each through its main([...]) (conftest.py)."""
    return tiny_bundle


def test_bundle_holds_every_export_target_and_parity_figures(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    kinds = {(f["backend"], f["precision"]) for f in manifest["files"].values() if f.get("role") == "student"}
    assert kinds == {(t.backend, t.precision) for t in EXPORT_TARGETS}  # ONNX and TFLite, fp32 and int8
    parity = manifest["provenance"]["parity"]
    assert parity["onnx_fp32_max_abs_diff"] <= 1e-4 and parity["tflite_fp32_max_abs_diff"] <= 1e-4
    assert parity["onnx_int8_min_cosine"] >= 0.99 and parity["tflite_int8_min_cosine"] >= 0.99
    assert set(manifest["prompt_bank"]["label_sets"]) == set(descriptions())  # every set of sdk/label_sets.json
    from acula.distill.student import StreamingStudent, StudentConfig

    built = StreamingStudent(StudentConfig.from_dict(manifest["provenance"]["student_config"]))
    assert manifest["provenance"]["student_parameters"] == sum(p.numel() for p in built.parameters())


def test_every_backend_and_precision_agrees_with_onnx_fp32(bundle: Path):
    x, _ = synth_recording(6.0, seed=3)
    ref = load(bundle, "onnxruntime", "fp32").embed(x, 16000).embeddings
    for backend, precision in {(t.backend, t.precision) for t in EXPORT_TARGETS} - {("onnxruntime", "fp32")}:
        got = load(bundle, backend, precision).embed(x, 16000).embeddings
        assert got.shape == ref.shape
        if precision == "fp32":
            assert np.max(np.abs(got - ref)) <= 1e-4
        else:
            cos = np.sum(got * ref, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
            assert cos.min() >= 0.99


def test_the_loaded_model_screens_and_scores(bundle: Path):
    model = sdk.load(bundle)
    x, _ = synth_recording(8.0)
    result = model.screen(x, 16000)
    n_frames = 1 + (8 * 16000 - 1024) // 512
    assert len(result.windows) == 1 + (n_frames - model.window_frames) // model.hop_frames
    assert all(w.cough_probability is not None and 0 <= w.cough_probability <= 1 for w in result.windows)
    score = model.score(x, 16000, label_set="lung")
    assert set(score.probabilities) == {"normal", "crackles", "wheezes"}
    assert abs(sum(score.probabilities.values()) - 1) < 1e-5
    json.dumps(result.to_dict())
    json.dumps(score.to_dict())


def test_refit_requantises_and_recalibrates_from_the_bundles_own_graphs(bundle: Path, tiny_corpus: Path,
                                                                         tmp_path: Path):
    from acula.export.refit import main as refit_main
    from acula.sdk.bundle import read_bundle

    out = tmp_path / "refit"
    assert refit_main([str(bundle), "--corpus", str(tiny_corpus), "--out", str(out)]) == 0
    before, after = read_bundle(bundle), read_bundle(out)
    # every file but the int8 ONNX graph is carried over byte for byte; the manifest records the new parity
    assert set(after.files) == set(before.files)
    assert all(after.files[n] == before.files[n] for n in before.files if n not in ("student_int8.onnx",
                                                                                      "manifest.json"))
    parity = after.manifest["provenance"]["parity"]
    assert parity["onnx_int8_min_cosine"] >= 0.99 and "reduce_range" in after.manifest["provenance"][
        "int8_onnx_requantized"]
    assert set(after.manifest["calibration"]["temperature"]) <= set(after.manifest["prompt_bank"]["label_sets"])
    assert after.sha256 != before.sha256
    load(out).screen(synth_recording(3.0, seed=1)[0], 16000)
