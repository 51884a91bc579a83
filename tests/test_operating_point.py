"""acula.export.operating_point: the channels the cough operating point may be chosen on, and how the rules pool
them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _seqs(peaks: list[float]) -> list[np.ndarray]:
    """One recording per peak: ten windows, the peak in the middle, 0.05 elsewhere."""
    out = []
    for p in peaks:
        q = np.full(10, 0.05)
        q[4:6] = p
        out.append(q)
    return out


def test_pooled_adds_the_phone_channels_of_phone_recordings_only():
    from acula.export.operating_point import rule_sequences

    by_channel = {c: {"cough": _seqs([0.9]), "phone non-cough": _seqs([0.1, 0.2]), "stethoscope": _seqs([0.1]),
                      "other": _seqs([0.3])} for c in ("clean", "8k", "mulaw8k")}
    clean = rule_sequences("clean", by_channel)
    assert clean is by_channel["clean"]
    pooled = rule_sequences("pooled", by_channel)
    assert {g: len(v) for g, v in pooled.items()} == {"cough": 3, "phone non-cough": 6, "stethoscope": 1, "other": 1}
    with pytest.raises(ValueError, match="rule must be one of"):
        rule_sequences("loudest", by_channel)


def test_the_pooled_point_rises_above_what_the_phone_channels_alone_flag():
    """Clean phone recordings stay under 0.6; through the phone channels two of them reach 0.8 and 0.85.  With 40
    recordings a channel, 3 % allows one flagged recording of 40 clean and three of 120 pooled: the clean rule takes the
    grid's lowest point over the clean recordings, the pooled one must clear the phone channels' highest but the
    allowance."""
    from acula.export.calibration import choose_operating_point
    from acula.export.operating_point import rule_sequences

    quiet = [0.1] * 38 + [0.55, 0.58]
    by_channel = {"clean": {"cough": _seqs([0.99]), "phone non-cough": _seqs(quiet), "stethoscope": _seqs([0.1] * 100)},
                  "8k": {"cough": _seqs([0.99]), "phone non-cough": _seqs([0.1] * 37 + [0.7, 0.8, 0.85])},
                  "mulaw8k": {"cough": _seqs([0.99]), "phone non-cough": _seqs([0.1] * 38 + [0.75, 0.9])}}
    window_s, hop_s = 1.984, 0.48
    clean = choose_operating_point(rule_sequences("clean", by_channel), 1.0, window_s, hop_s)
    pooled = choose_operating_point(rule_sequences("pooled", by_channel), 1.0, window_s, hop_s)
    assert 0.55 < clean["cough_on"] <= 0.58 and clean["targets_met"]  # one clean recording (0.58) may ring
    # 120 pooled: three may ring (0.9, 0.85, 0.8), so the point must clear 0.75 and the clean 0.58
    assert 0.75 < pooled["cough_on"] <= 0.8 and pooled["targets_met"]
    assert pooled["val_fraction_flagged"]["phone non-cough"] <= 0.03


def test_the_demo_cough_through_a_phone_call_reaches_the_sdk_at_8_khz(tmp_path: Path):
    from acula.export.operating_point import channel_sequences, screened, window_probabilities

    from acula import sdk

    model = sdk.load("default", "onnxruntime", "int8")
    row = {"path": "cough_smith2006_p05.flac", "modality": "cough"}
    root = ROOT / "sdk" / "data"
    (_, clean, x16, rate16), = screened(model, [row], root)
    (_, phone, x8, rate8), = screened(model, [row], root, "mulaw8k")
    assert (rate16, rate8) == (16000, 8000) and abs(x8.size * 2 - x16.size) <= 2
    assert len(phone.windows) == len(clean.windows)
    assert np.nanmax(window_probabilities(clean)) > model.screening.on
    seqs = channel_sequences(model, [row], root, "8k")
    assert list(seqs) == ["cough"] and seqs["cough"][0].shape == (len(clean.windows),)
    with pytest.raises(ValueError, match="channel must be one of"):
        channel_sequences(model, [row], root, "opus")


def test_export_chooses_by_the_pooled_rule_unless_asked_for_the_clean_one(tiny_student: Path, tiny_corpus: Path,
                                                                         tiny_bundle: Path, tmp_path: Path):
    """``acula export`` (pooled by default since 2026-12-06) writes the point the SDK's own screening of val through
    the three channels gives (``pooled_point`` on the written bundle), each phone recording counted three times;
    ``--operating-point clean`` the export's earlier rule."""
    import json

    from acula.export.cli import main
    from acula.export.operating_point import POOLED_CALIBRATED_ON, pooled_point

    from acula import sdk

    out = tmp_path / "clean"
    assert main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(out), "--no-tflite",
                 "--operating-point", "clean"]) == 0
    clean = json.loads((out / "manifest.json").read_text())["screening"]
    pooled = json.loads((tiny_bundle / "manifest.json").read_text())["screening"]
    assert pooled["calibrated_on"] == POOLED_CALIBRATED_ON and clean["calibrated_on"] == "val split"
    n_clean, n_pooled = clean["n_val_recordings"], pooled["n_val_recordings"]
    assert n_clean["phone non-cough"] > 0
    assert n_pooled["phone non-cough"] == 3 * n_clean["phone non-cough"]
    assert n_pooled["cough"] == 3 * n_clean["cough"] and n_pooled["stethoscope"] == n_clean["stethoscope"]
    assert pooled["probabilities_from"] == "student_int8.onnx"
    model = sdk.load(tiny_bundle, "onnxruntime", "int8")
    assert model.screening.on == pooled["cough_on"]
    assert pooled_point(tiny_bundle, tiny_corpus)["cough_on"] == pooled["cough_on"]


def test_repoint_changes_only_the_screening_block_and_refuses_a_signed_bundle(tiny_student: Path,
                                                                             tiny_bundle: Path, tiny_corpus: Path,
                                                                             tmp_path: Path, capsys):
    """``python -m acula.export.operating_point``: a clean-rule bundle gets the pooled point, nothing else moves; on a
    bundle whose point the pooled rule chose already, nothing moves at all."""
    import json
    import shutil

    from acula.export.cli import main as export_main
    from acula.export.operating_point import main, pooled_point

    again = tmp_path / "again"
    assert main([str(tiny_bundle), "--corpus", str(tiny_corpus), "--out", str(again)]) == 0
    assert (again / "manifest.json").read_bytes() == (tiny_bundle / "manifest.json").read_bytes()
    clean = tmp_path / "clean"
    assert export_main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(clean),
                        "--no-tflite", "--operating-point", "clean"]) == 0
    out = tmp_path / "repointed"
    assert main([str(clean), "--corpus", str(tiny_corpus), "--out", str(out)]) == 0
    before = json.loads((clean / "manifest.json").read_text())
    after = json.loads((out / "manifest.json").read_text())
    assert {k for k in before if before[k] != after[k]} == {"screening"}
    assert after["screening"]["cough_on"] == pooled_point(clean, tiny_corpus)["cough_on"]
    assert after["screening"]["n_val_recordings"]["phone non-cough"] == 3 * before["screening"]["n_val_recordings"][
        "phone non-cough"]
    signed = tmp_path / "signed"
    shutil.copytree(clean, signed)
    (signed / "manifest.sig").write_bytes(b"x" * 64)
    assert main([str(signed), "--corpus", str(tiny_corpus)]) == 1
    assert "is signed" in capsys.readouterr().err
    assert (signed / "manifest.json").read_bytes() == (clean / "manifest.json").read_bytes()


def test_export_over_a_packaged_bundle_chooses_its_point_on_a_staged_copy(tiny_student: Path, tiny_corpus: Path,
                                                                         tiny_bundle: Path, tmp_path: Path,
                                                                         monkeypatch):
    """``scripts/train_default.sh`` exports into sdk/models/default, whose pinned digest names the bundle being
    replaced: the pooled point is screened on a staged copy, so the export neither trips the pin nor leaves a
    bundle at ``out`` before its point is chosen; the written bundle holds the point ``pooled_point`` gives."""
    import json

    import acula.sdk.bundle as B
    from acula.export.cli import main

    packaged = tmp_path / "models"
    out = packaged / "default"
    monkeypatch.setattr(B, "models_dir", lambda: packaged)
    monkeypatch.setitem(B.PINNED_SHA256, "default", "0" * 64)  # the old bundle's digest, as after a retraining
    assert main(["--student", str(tiny_student), "--corpus", str(tiny_corpus), "--out", str(out), "--no-tflite"]) == 0
    written = json.loads((out / "manifest.json").read_text())["screening"]
    expected = json.loads((tiny_bundle / "manifest.json").read_text())["screening"]
    assert written == expected  # the same student and corpus: the point the unpinned export chose
    with pytest.raises(B.BundleError, match="pinned"):  # the pin itself still guards the packaged directory
        B.read_bundle(out)
