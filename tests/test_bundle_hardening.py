"""Issue 25: the manifest is part of what is verified.

A bundle's identity is the sha256 of its canonical manifest (pinned for the packaged default, checkable with
``sdk.load(path, sha256=...)``, optionally signed); every manifest field is checked for type and range; any
malformed manifest, model file or zip is one :class:`BundleError`; zip limits hold before anything inflates.
Every fixture is generated here (no binary files).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")

from acula.export.bundle import bundle_digest, write_bundle  # noqa: E402
from acula.sdk.bundle import (  # noqa: E402
    MANIFEST,
    PINNED_SHA256,
    SIGNATURE,
    BundleError,
    describe,
    read_bundle,
    verify_bundle,
)
from acula.sdk.cli import main as cli  # noqa: E402
from acula.sdk.manifest_schema import canonical_json, manifest_digest, parse_manifest  # noqa: E402
from acula.sdk.model import _resolve  # noqa: E402

from acula import sdk  # noqa: E402
from tests.toy_bundle import make_toy_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = _resolve("default")
SHIPPED = (DEFAULT / MANIFEST).read_bytes()


def _edit(bundle: Path, change: Any) -> Path:
    m = json.loads((bundle / MANIFEST).read_text())
    change(m)
    (bundle / MANIFEST).write_text(json.dumps(m))
    return bundle


@pytest.fixture(scope="module")
def shipped_raw() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in DEFAULT.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shipped") / "default"
    shutil.copytree(DEFAULT, out)
    return out


# --- the root of trust ---------------------------------------------------------------------------------------

def test_the_packaged_default_is_pinned_to_its_manifest_digest(capsys):
    assert manifest_digest(parse_manifest(SHIPPED)) == PINNED_SHA256["default"], (
        "sdk/models/default was re-exported: put the digest 'acula info default' prints into "
        "acula.sdk.bundle.PINNED_SHA256")
    model = sdk.load("default")
    assert model.bundle.sha256 == PINNED_SHA256["default"] and model.bundle.trust == "pinned"
    assert cli(["info", "default"]) == 0
    assert f"manifest sha256: {PINNED_SHA256['default']} (pinned)" in capsys.readouterr().out


def test_the_pin_is_checked_whenever_the_packaged_folder_is_read(monkeypatch):
    monkeypatch.setitem(PINNED_SHA256, "default", "0" * 64)
    with pytest.raises(BundleError, match="pinned for the packaged 'default'"):
        sdk.load("default")
    with pytest.raises(BundleError, match="pinned"):
        read_bundle(DEFAULT)


@pytest.mark.parametrize("edit", ["cough_on + 1", "cough_on + 0.01", "lung temperature",
                                  "a prompt text", "whitespace only"])
def test_a_copy_of_the_default_loads_only_with_its_digest(shipped_copy: Path, tmp_path: Path, edit: str):
    bundle = tmp_path / "b"
    shutil.copytree(shipped_copy, bundle)
    text = SHIPPED.decode()
    shipped = json.loads(text)
    lung_t, on = shipped["calibration"]["temperature"]["lung"], shipped["screening"]["cough_on"]
    text = {"cough_on + 1": text.replace(f'"cough_on": {on}', f'"cough_on": {round(on + 1, 4)}'),
            "cough_on + 0.01": text.replace(f'"cough_on": {on}', f'"cough_on": {round(on + 0.01, 4)}'),
            "lung temperature": text.replace(f'"lung": {lung_t}', f'"lung": {lung_t + 1}'),
            "a prompt text": text.replace('"a cough",', '"a couch",'),
            "whitespace only": json.dumps(json.loads(text), separators=(",", ":"))}[edit]
    assert text != SHIPPED.decode()
    (bundle / MANIFEST).write_text(text)
    if edit == "whitespace only":  # the digest covers meaning, not layout
        assert sdk.load(bundle, sha256=PINNED_SHA256["default"]).bundle.trust == "sha256 checked"
        return
    with pytest.raises(BundleError, match="does not match the expected sha256"):
        sdk.load(bundle, sha256=PINNED_SHA256["default"])


def test_sha256_is_checked_by_load_and_info(tmp_path: Path, capsys):
    bundle = make_toy_bundle(tmp_path / "b")
    digest = read_bundle(bundle).sha256
    assert digest == bundle_digest(bundle) == manifest_digest(json.loads((bundle / MANIFEST).read_text()))
    assert sdk.load(bundle, precision="fp32", sha256=digest.upper()).bundle.trust == "sha256 checked"
    with pytest.raises(BundleError, match="does not match the expected sha256"):
        sdk.load(bundle, sha256="ab" * 32)
    assert cli(["info", str(bundle), "--sha256", digest]) == 0
    assert f"manifest sha256: {digest} (sha256 checked)" in capsys.readouterr().out
    assert cli(["info", str(bundle), "--sha256", "ab" * 32]) == 1
    zipped = make_toy_bundle(tmp_path / "b.zip", as_zip=True)
    assert bundle_digest(zipped) == read_bundle(zipped).sha256 == digest  # same manifest, same identity


# --- signatures (optional: cryptography) -----------------------------------------------------------------------

def test_a_signed_bundle_verifies_only_against_its_key(tmp_path: Path):
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pub_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    pub_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    from tests import toy_bundle

    original = toy_bundle.write_bundle
    try:  # the toy bundle, written with a signing key
        toy_bundle.write_bundle = lambda out, files, manifest, as_zip=False: original(  # type: ignore[assignment]
            out, files, manifest, as_zip, signing_key=key)
        signed = make_toy_bundle(tmp_path / "s")
        signed_zip = make_toy_bundle(tmp_path / "s.zip", as_zip=True)
    finally:
        toy_bundle.write_bundle = original
    for b in (signed, signed_zip):
        for pub in (pub_pem, pub_raw, key.public_key()):
            assert sdk.load(b, precision="fp32", public_key=pub).bundle.trust == "signature verified"
    assert read_bundle(signed).trust == "unpinned"  # a signature nobody checks is no trust
    assert "carries a signature, not verified" in describe(read_bundle(signed))  # and is not called "signed"
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(signed, public_key=other.public_key())
    (tmp_path / "k.pem").write_bytes(pub_pem)
    assert cli(["info", str(signed), "--public-key", str(tmp_path / "k.pem")]) == 0
    _edit(signed, lambda m: m["screening"].update(cough_on=0.9))
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(signed, public_key=pub_pem)
    (signed / SIGNATURE).write_bytes(b"short")
    with pytest.raises(BundleError, match="64"):
        read_bundle(signed)
    unsigned = make_toy_bundle(tmp_path / "u")
    with pytest.raises(BundleError, match="not signed"):
        read_bundle(unsigned, public_key=pub_raw)
    with pytest.raises(BundleError, match="Ed25519"):
        read_bundle(unsigned, public_key=b"not a key")


def test_verifying_a_signature_without_cryptography_says_what_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    with pytest.raises(BundleError, match="pip install cryptography"):
        read_bundle(make_toy_bundle(tmp_path / "b"), public_key=b"\0" * 32)


# --- the schema: every field, by name ------------------------------------------------------------------------

def _set(path: str, value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = m
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


_DELETE = object()
_ONNX = "files/student_int8.onnx"
SCHEMA_CASES = [  # (edit, value, the field the error must name)
    ("hop_frames", 0, "hop_frames"), ("hop_frames", 17, "hop_frames"), ("hop_frames", "8", "hop_frames"),
    ("hop_frames", 8.5, "hop_frames"), ("hop_frames", True, "hop_frames"), ("window_frames", 0, "window_frames"),
    ("embed_dim", 9, "outputs"), ("embed_dim", -1, "embed_dim"), ("format_version", True, "format version"),
    ("screening/cough_on", 1.66, "screening.cough_on"), ("screening/cough_on", -0.1, "screening.cough_on"),
    ("screening/cough_on", "0.5", "screening.cough_on"), ("screening/cough_off", 0.6, "screening.cough_off"),
    ("screening/min_duration_s", -1, "screening.min_duration_s"), ("screening/refractory_s", None, "refractory_s"),
    ("screening/smoothing_windows", 0, "screening.smoothing_windows"), ("screening/cough_onn", 0.5, "cough_onn"),
    ("screening/cough_on", _DELETE, "cough_on"), ("screening/probabilities_from", "x.onnx", "probabilities_from"),
    ("calibration/temperature", 0, "calibration.temperature"),
    ("calibration/temperature", {"lung": -2.0}, "calibration.temperature.lung"),
    ("calibration/temperature", {"lunk": 2.0}, "calibration.temperature.lunk"),
    ("calibration/logit_scale", 0.0, "calibration.logit_scale"), ("calibration/logit_scale", [10], "logit_scale"),
    ("calibration/temprature", 1.0, "temprature"),
    ("frontend/hop_length", 0, "frontend.hop_length"), ("frontend/n_fft", 1000, "frontend"),
    ("frontend/n_mels", "64", "frontend.n_mels"), ("frontend/norm_std_db", 0, "frontend.norm_std_db"),
    ("frontend/f_max_hz", 9000.0, "frontend"), ("frontend/extra", 1, "extra"), ("frontend/n_mels", _DELETE, "n_mels"),
    ("frontend/sample_rate_hz", 16000.5, "frontend.sample_rate_hz"), ("frontend/n_mels", 40, "inputs[0].shape"),
    (f"{_ONNX}/sha256", "XYZ", "sha256"), (f"{_ONNX}/bytes", -1, "bytes"), (f"{_ONNX}/bytes", 5, "bytes"),
    (f"{_ONNX}/role", "teacher", "role"), (f"{_ONNX}/backend", "torch", "backend"),
    (f"{_ONNX}/precision", "fp32", "second student"), (f"{_ONNX}/inputs", [], "inputs"),
    (f"{_ONNX}/inputs/0/shape", [1, 16, 0], "shape"), (f"{_ONNX}/outputs/1/shape", [1], "outputs"),
    (f"{_ONNX}/extra", 1, "extra"), ("files/prompts.npy/backend", "onnxruntime", "prompt_bank"),
    ("files", {}, "files"), ("files", [], "files"),
    ("prompt_bank/file", "student_int8.onnx", "prompt_bank.file"), ("prompt_bank/texts", "p0", "texts"),
    ("prompt_bank/texts/0", 7, "texts[0]"), ("prompt_bank/label_sets/lung/normal", [99], "label_sets.lung.normal"),
    ("prompt_bank/label_sets/lung/normal", [], "label_sets.lung.normal"), ("prompt_bank/label_sets/lung", {}, "lung"),
    ("prompt_bank/label_sets", {}, "label_sets"), ("heads/cough/index", 1, "heads.cough.index"),
    ("heads/cough/index", -1, "heads.cough.index"), ("heads/cough", 0, "heads.cough"),
    ("name", 3, "name"), ("licence", None, "licence"), ("provenance", "x", "provenance"),
    ("surprise", 1, "unknown keys"), ("prompt_bank", _DELETE, "prompt_bank"),
]


@pytest.mark.parametrize(("path", "value", "field"), SCHEMA_CASES, ids=[f"{p}={v!r}"[:60] for p, v, _ in SCHEMA_CASES])
def test_every_manifest_field_is_checked_and_named(toy: Path, tmp_path: Path, path: str, value: Any, field: str):
    bundle = tmp_path / "b"
    shutil.copytree(toy, bundle)
    _edit(bundle, _set(path, value))
    with pytest.raises(BundleError) as err:
        sdk.load(bundle)
    assert field in str(err.value)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "b")


def test_hop_frames_zero_is_refused_by_acula_info(toy: Path, tmp_path: Path, capsys):
    # it was described, and then sdk.load(...).screen looped until MemoryError
    bundle = tmp_path / "b"
    shutil.copytree(toy, bundle)
    _edit(bundle, _set("hop_frames", 0))
    assert cli(["info", str(bundle)]) == 1
    assert "manifest field hop_frames must be in [1, 16], got 0" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["not utf-8", "utf-16", "deep nesting", "deep array", "duplicate key", "NaN",
                                  "Infinity", "1e999", "huge integer", "lone surrogate", "top-level list",
                                  "over 1 MiB", "truncated", "empty"])
def test_any_malformed_manifest_is_a_bundle_error(toy: Path, tmp_path: Path, case: str):
    bundle = tmp_path / "b"
    shutil.copytree(toy, bundle)
    text = (bundle / MANIFEST).read_text()
    raw = {"not utf-8": text.replace('"toy"', '"to\xff"').encode("latin-1"),
           "utf-16": text.encode("utf-16"),
           "deep nesting": text.replace('"what": "toy bundle for tests"', '"what": ' + "[" * 100_000).encode(),
           "deep array": text.replace('"test only"', "[" * 40 + "]" * 40).encode(),
           "duplicate key": text.replace('"hop_frames": 8', '"hop_frames": 8, "hop_frames": 4').encode(),
           "NaN": text.replace('"cough_on": 0.5', '"cough_on": NaN').encode(),
           "Infinity": text.replace('"refractory_s": 0.5', '"refractory_s": Infinity').encode(),
           "1e999": text.replace('"refractory_s": 0.5', '"refractory_s": 1e999').encode(),
           "huge integer": text.replace('"hop_frames": 8', '"hop_frames": ' + "9" * 5000).encode(),
           "lone surrogate": text.replace('"test only"', '"\\ud800"').encode(),
           "top-level list": b"[" + text.encode() + b"]",
           "over 1 MiB": text.replace('"test only"', '"' + "x" * (1 << 20) + '"').encode(),
           "truncated": text.encode()[: len(text) // 2],
           "empty": b""}[case]
    (bundle / MANIFEST).write_bytes(raw)
    with pytest.raises(BundleError):
        sdk.load(bundle)


# --- files that hash right but do not parse ------------------------------------------------------------------

def _exporter_inputs(bundle: Path) -> tuple[dict[str, tuple[bytes, dict[str, Any]]], dict[str, Any]]:
    """What write_bundle was given to write ``bundle``: files (bytes, description) and the manifest rest."""
    m = json.loads((bundle / MANIFEST).read_text())
    files = {n: ((bundle / n).read_bytes(), {k: v for k, v in i.items() if k not in ("sha256", "bytes")})
             for n, i in m["files"].items()}
    return files, {k: v for k, v in m.items() if k not in ("files", "format", "format_version")}


def _toy_with(tmp_path: Path, replace: dict[str, bytes], backend: str = "onnxruntime") -> Path:
    """The toy bundle rewritten through the exporter, so every hash is right, with some files replaced."""
    files, rest = _exporter_inputs(make_toy_bundle(tmp_path / "src"))
    files = {n: (replace.get(n, d), i) for n, (d, i) in files.items()}
    if backend == "tflite":
        files = {(n.replace(".onnx", ".tflite") if "student" in n else n): (d, {**i, "backend": "tflite"}
                 if i["role"] == "student" else i) for n, (d, i) in files.items()}
    return write_bundle(tmp_path / "b", files, rest)


def test_a_hash_valid_but_broken_onnx_model_is_a_bundle_error(tmp_path: Path):
    bundle = _toy_with(tmp_path, {"student_int8.onnx": b"\x08\x01garbage that is not a protobuf"})
    with pytest.raises(BundleError, match="onnxruntime runtime cannot load"):
        sdk.load(bundle, precision="int8")
    sdk.load(bundle, precision="fp32")  # the intact one still loads


def test_a_hash_valid_but_broken_tflite_model_is_a_bundle_error(tmp_path: Path):
    from acula.sdk.runtimes import BackendUnavailable, _tflite_interpreter

    try:
        _tflite_interpreter()
    except BackendUnavailable:
        pytest.skip("no TFLite runtime installed")
    bundle = _toy_with(tmp_path, {"student_int8.onnx": b"TFL3 not a flatbuffer" * 4}, backend="tflite")
    with pytest.raises(BundleError, match="tflite runtime cannot load"):
        sdk.load(bundle, backend="tflite", precision="int8")


@pytest.mark.parametrize("bad", [b"not an npy file", b"pickle"])
def test_a_hash_valid_but_broken_prompt_bank_is_a_bundle_error(tmp_path: Path, bad: bytes):
    import io

    if bad == b"pickle":  # an object array: np.load refuses it without allow_pickle
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
        bad = buf.getvalue()
    with pytest.raises(BundleError, match="prompts.npy"):
        read_bundle(_toy_with(tmp_path, {"prompts.npy": bad}))


def test_a_prompt_bank_of_the_wrong_shape_is_refused(tmp_path: Path):
    from acula.export.bundle import npy_bytes

    with pytest.raises(BundleError, match=r"must hold \(6, 8\) finite floats"):
        read_bundle(_toy_with(tmp_path, {"prompts.npy": npy_bytes(np.zeros((5, 8), np.float32))}))


def test_the_exporter_refuses_to_write_a_manifest_the_sdk_would_refuse(tmp_path: Path):
    files, rest = _exporter_inputs(make_toy_bundle(tmp_path / "src"))
    with pytest.raises(BundleError, match="screening.cough_on"):
        write_bundle(tmp_path / "o", files, {**rest, "screening": {**rest["screening"], "cough_on": 1.5}})
    with pytest.raises(ValueError, match="Out of range float"):
        write_bundle(tmp_path / "o", files, {**rest, "provenance": {"parity": float("nan")}})
    assert not (tmp_path / "o").exists()


# --- zips: limits from the directory, bounded reads ---------------------------------------------------------

def _zip_from(src: Path, out: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.writestr(p.name, p.read_bytes())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out


def test_a_zip_with_too_many_members_is_refused_before_reading(toy: Path, tmp_path: Path):
    evil = _zip_from(toy, tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(100)})
    with pytest.raises(BundleError, match="members; a bundle holds at most 64"):
        read_bundle(evil)


def test_a_highly_compressed_member_is_refused_as_a_zip_bomb(toy: Path, tmp_path: Path):
    evil = _zip_from(toy, tmp_path / "bomb.zip", {"padding.bin": bytes(16 << 20)})
    with pytest.raises(BundleError, match="zip bomb"):
        read_bundle(evil)


def test_a_zip_with_two_members_of_one_name_is_refused(toy: Path, tmp_path: Path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        evil = _zip_from(toy, tmp_path / "dup.zip", {MANIFEST: (toy / MANIFEST).read_bytes()})
    with pytest.raises(BundleError, match="two members with one name"):
        read_bundle(evil)


def _raw_zip(out: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip written by hand: (name, deflated data, crc32, declared uncompressed size) per member."""
    body, central = b"", b""
    for name, data, crc, size in members:
        n = name.encode()
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(n), 0) + n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(n),
                               0, 0, 0, 0, 0, offset) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    out.write_bytes(body + central + end)
    return out


def _deflated_zeros(chunk: int, n: int) -> bytes:
    """n * chunk zero bytes deflated, built in a moment: after a full flush every chunk deflates the same."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * n + c.flush(zlib.Z_FINISH)


def test_a_member_larger_than_its_directory_says_is_read_bounded(toy: Path, tmp_path: Path):
    data = (toy / "prompts.npy").read_bytes()
    members = [(p.name, zlib.compress(p.read_bytes())[2:-4], zlib.crc32(p.read_bytes()), p.stat().st_size)
               for p in sorted(toy.iterdir()) if p.name != "prompts.npy"]
    lying = _deflated_zeros(1 << 20, 64)  # 64 MiB of zeros that claims to be the 352-byte prompt bank
    evil = _raw_zip(tmp_path / "lie.zip", [*members, ("prompts.npy", lying, zlib.crc32(data), len(data))])
    with pytest.raises(BundleError, match="damaged zip|not the size"):
        read_bundle(evil)


BOMB_CHILD = textwrap.dedent("""
    import resource, sys
    from acula.sdk.bundle import BundleError, read_bundle
    vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
    cap = vm + (384 << 20)  # what the process maps now, plus 384 MiB
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        read_bundle(sys.argv[1])
    except BundleError as exc:
        print("refused:", exc)
        sys.exit(0)
    except MemoryError:
        print("MemoryError: the zip was inflated")
        sys.exit(3)
    print("loaded")
    sys.exit(4)
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to size the memory cap")
def test_a_zip_bomb_is_refused_under_a_memory_cap(toy: Path, tmp_path: Path):
    # a 3 MB zip whose manifest.json inflates to 3 GiB; the directory alone must refuse it (the crc is never
    # reached).  In a child process under RLIMIT_AS, so an unbounded read fails the test, not the machine.
    members = [(p.name, zlib.compress(p.read_bytes())[2:-4], zlib.crc32(p.read_bytes()), p.stat().st_size)
               for p in sorted(toy.iterdir()) if p.name != MANIFEST]
    bomb = _raw_zip(tmp_path / "bomb.zip", [(MANIFEST, _deflated_zeros(1 << 24, 192), 0, 3 << 30), *members])
    assert bomb.stat().st_size < 4_000_000
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(bomb)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert child.returncode == 0, child.stdout + child.stderr[-2000:]
    assert "zip bomb" in child.stdout


# --- every single-byte flip of the shipped manifest ---------------------------------------------------------

def test_every_single_byte_flip_of_the_shipped_manifest_is_refused_or_harmless(shipped_raw: dict[str, bytes]):
    # exhaustive (13,495 positions, about 3 s): with the pinned digest a flip either raises BundleError or
    # leaves the parsed manifest, and so the loaded model, exactly as shipped (a flip in layout only)
    base = parse_manifest(SHIPPED)
    harmless = 0
    for i in range(len(SHIPPED)):
        flipped = bytearray(SHIPPED)
        flipped[i] ^= 0x01
        try:
            bundle = verify_bundle({**shipped_raw, MANIFEST: bytes(flipped)}, "flip", PINNED_SHA256["default"])
        except BundleError:
            continue
        assert bundle.manifest == base and canonical_json(bundle.manifest) == canonical_json(base), i
        harmless += 1
    # the harmless ones: digits past double precision in the calibration report's long floats
    assert harmless < 50


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, len(SHIPPED) - 1), value=st.integers(0, 255))
def test_any_byte_written_anywhere_in_the_shipped_manifest(shipped_copy: Path, position: int, value: int):
    # any byte value at any position, read from disk as sdk.load reads it: refused with BundleError, or the
    # manifest means exactly what was shipped.  Without the digest the schema still turns every malformed
    # flip into BundleError (never another exception type).
    flipped = bytearray(SHIPPED)
    flipped[position] = value
    (shipped_copy / MANIFEST).write_bytes(bytes(flipped))
    try:
        for sha256 in (PINNED_SHA256["default"], None):
            try:
                bundle = read_bundle(shipped_copy, sha256=sha256)
            except BundleError:
                continue
            if sha256 is not None:
                assert bundle.manifest == parse_manifest(SHIPPED)
    finally:
        (shipped_copy / MANIFEST).write_bytes(SHIPPED)


@pytest.mark.parametrize("bias", [[0.0, 1.0], [0.0, "x", 1.0], [0.0, 1e9, 0.0]])
def test_a_calibration_bias_of_the_wrong_length_or_value_is_refused_by_name(shipped_copy: Path, bias: list):
    manifest = json.loads(SHIPPED)
    manifest["calibration"]["bias"]["lung"] = bias
    (shipped_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="calibration.bias.lung"):
        read_bundle(shipped_copy)
