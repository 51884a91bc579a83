"""Bundles load only through their manifest; tampering of every kind is refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("onnx")

from acula.sdk.bundle import BundleError, describe, read_bundle  # noqa: E402
from acula.sdk.cli import main  # noqa: E402

from tests.toy_bundle import make_toy_bundle  # noqa: E402


def test_directory_and_zip_bundles_load_and_verify(tmp_path: Path):
    for bundle in (make_toy_bundle(tmp_path / "b"), make_toy_bundle(tmp_path / "b.zip", as_zip=True)):
        b = read_bundle(bundle)
        assert b.model_file("onnxruntime", "int8")[0] == "student_int8.onnx"
        assert b.array("prompts.npy").shape == (6, 8)
        assert "lung (crackles, normal, wheezes)" in describe(b)


def test_a_flipped_byte_is_refused(tmp_path: Path):
    bundle = make_toy_bundle(tmp_path / "b")
    data = bytearray((bundle / "student_int8.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "student_int8.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="student_int8.onnx: sha256 .* does not match"):
        read_bundle(bundle)


def test_an_unknown_format_version_is_refused(tmp_path: Path):
    bundle = make_toy_bundle(tmp_path / "b")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99"):
        read_bundle(bundle)


def test_missing_and_extra_files_are_refused(tmp_path: Path):
    bundle = make_toy_bundle(tmp_path / "b")
    (bundle / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match="does not list: \\['notes.txt'\\]"):
        read_bundle(bundle)
    (bundle / "notes.txt").unlink()
    (bundle / "prompts.npy").unlink()
    with pytest.raises(BundleError, match="missing files .*prompts.npy"):
        read_bundle(bundle)


def test_path_traversal_in_a_zip_is_refused(tmp_path: Path):
    good = make_toy_bundle(tmp_path / "b.zip", as_zip=True)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../../etc/evil.onnx", b"x")
    with pytest.raises(BundleError, match="escapes the bundle"):
        read_bundle(evil)


def test_a_manifest_naming_a_path_outside_is_refused(tmp_path: Path):
    bundle = make_toy_bundle(tmp_path / "b")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["../secret"] = manifest["files"].pop("prompts.npy")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="escapes the bundle"):
        read_bundle(bundle)


def test_garbage_and_absent_bundles_are_refused(tmp_path: Path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="neither a bundle directory nor a zip"):
        read_bundle(tmp_path / "x.zip")
    with pytest.raises(BundleError, match="no bundle at"):
        read_bundle(tmp_path / "nothing")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(tmp_path / "d")


def test_acula_info_prints_the_manifest_and_fails_on_tampering(tmp_path: Path, capsys):
    bundle = make_toy_bundle(tmp_path / "b")
    assert main(["info", str(bundle)]) == 0
    assert "student_int8.onnx" in capsys.readouterr().out
    (bundle / "prompts.npy").write_bytes(b"tampered")
    assert main(["info", str(bundle)]) == 1
    assert "sha256" in capsys.readouterr().err


def test_the_shipped_default_bundle_is_complete_and_within_2_mb():
    from acula.sdk.model import _resolve

    # the model the SDK ships as data (found as sdk.load("default") finds it): int8 and fp32, ONNX and TFLite,
    # within 2 MB (issue 9)
    folder = _resolve("default")
    bundle = read_bundle(folder)
    names = set(bundle.manifest["files"])
    for fmt in ("onnx", "tflite"):
        for precision in ("fp32", "int8"):
            assert f"student_{precision}.{fmt}" in names
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total <= 2_000_000, f"the shipped bundle is {total:,} bytes, over 2 MB"
