"""The model bundle: one directory (or a zip of it) described by ``manifest.json``.

Format version 1.  ``manifest.json`` holds::

    format: "acula-bundle", format_version: 1
    frontend: FrontendConfig fields           window_frames, hop_frames, embed_dim
    files: {name: {sha256, bytes, role, backend, precision, inputs, outputs}}
    prompt_bank: {file, texts, label_sets: {set: {label: [prompt index, ...]}}}
    heads: {name: {index}}                    calibration: {logit_scale, temperature}
    screening: {...operating point...}        provenance: {...}, licence

Every file is loaded only through the manifest.  The bundle's identity is the sha256 of the canonical
manifest (:func:`sdk.manifest_schema.manifest_digest`), which covers every file's hash: the packaged
bundles are pinned to it (:data:`PINNED_SHA256`), ``read_bundle(path, sha256=...)`` checks it, and an
optional ``manifest.sig`` holds an Ed25519 signature of it, checked against a public key the caller passes.
A digest or signature mismatch, a manifest field of the wrong type or range, a hash mismatch, an unknown
format version, a missing or extra file, a name that escapes the bundle, or a zip past the size limits is
refused with :class:`BundleError`.  Nothing in a bundle is pickled: models are ONNX / TFLite, arrays are
``.npy`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.manifest_schema import BundleError, _safe_name, manifest_digest, parse_manifest, validate_manifest

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "SIGNATURE", "PINNED_SHA256", "Bundle", "BundleError",
           "read_bundle", "verify_bundle", "describe", "manifest_digest", "sign_digest", "sha256_bytes",
           "sha256_of"]

FORMAT = "acula-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"  # optional: 64-byte Ed25519 signature of SIGNED_PREFIX + the manifest digest
SIGNED_PREFIX = b"acula-bundle manifest sha256 "

#: manifest digest of each bundle packaged in sdk/models, checked whenever that folder is read.
#: Re-exporting sdk/models/default prints the new digest; put it here (tests/test_bundle_hardening.py checks).
PINNED_SHA256 = {"default": "b1823e1a2c08241e24c539be3b3fb6c80a653ebe4a121219e056a0cf28dc6471"}

# limits on what a bundle may hold, checked before anything is read or inflated
MAX_FILES = 64
MAX_FILE_BYTES = 256 << 20
MAX_TOTAL_BYTES = 512 << 20
MAX_RATIO = 100  # uncompressed / compressed, for zip members over RATIO_FLOOR bytes
RATIO_FLOOR = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Bundle:
    """A verified bundle held in memory: the manifest and every file's bytes."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    source: str
    sha256: str = ""  # manifest digest
    trust: str = "unpinned"  # "pinned", "sha256 checked", "signature verified", "unpinned"

    @property
    def frontend(self) -> FrontendConfig:
        return FrontendConfig.from_dict(self.manifest["frontend"])

    def model_file(self, backend: str, precision: str) -> tuple[str, dict[str, Any]]:
        for name, info in self.manifest["files"].items():
            if info.get("role") == "student" and info.get("backend") == backend and info.get("precision") == precision:
                return name, info
        offered = sorted({(i.get("backend"), i.get("precision")) for i in self.manifest["files"].values()
                          if i.get("role") == "student"})
        raise BundleError(f"{self.source} has no {backend} {precision} model; it offers {offered}")

    def array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.files[_safe_name(name)]), allow_pickle=False)


def _check_sizes(where: Path, sizes: dict[str, int]) -> None:
    if len(sizes) > MAX_FILES:
        raise BundleError(f"{where} holds {len(sizes)} files; a bundle holds at most {MAX_FILES}")
    for name, size in sizes.items():
        if size > MAX_FILE_BYTES:
            raise BundleError(f"{where}: {name!r} is {size:,} bytes; a bundle file is at most {MAX_FILE_BYTES:,}")
    if (total := sum(sizes.values())) > MAX_TOTAL_BYTES:
        raise BundleError(f"{where} holds {total:,} bytes; a bundle holds at most {MAX_TOTAL_BYTES:,}")


def _read_zip(path: Path) -> dict[str, bytes]:
    import zipfile  # only for zipped bundles: 5 ms of a cold start otherwise
    import zlib

    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_FILES:  # the directory alone decides, before anything is inflated
                raise BundleError(f"{path} holds {len(infos)} members; a bundle holds at most {MAX_FILES}")
            for info in infos:
                if info.is_dir():
                    raise BundleError(f"{path}: zip holds a folder {info.filename!r}; a bundle is flat")
                _safe_name(info.filename)
                if info.flag_bits & 0x1:
                    raise BundleError(f"{path}: zip member {info.filename!r} is encrypted")
                if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                    raise BundleError(f"{path}: zip member {info.filename!r} inflates {info.compress_size:,} bytes "
                                      f"to {info.file_size:,} (over {MAX_RATIO}x): refused as a zip bomb")
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise BundleError(f"{path}: zip holds two members with one name")
            _check_sizes(path, {i.filename: i.file_size for i in infos})
            for info in infos:
                with zf.open(info) as member:  # bounded: never more than the size the directory declared
                    data = member.read(info.file_size + 1)
                if len(data) != info.file_size:
                    raise BundleError(f"{path}: zip member {info.filename!r} is not the size its directory declares")
                out[info.filename] = data
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
        raise BundleError(f"{path} is a damaged zip: {exc}") from exc
    return out


def _read_source(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        entries = sorted(path.iterdir())
        files = [p for p in entries if p.is_file()]
        _check_sizes(path, {p.name: p.stat().st_size for p in files})
        return {p.name: p.read_bytes() for p in files} | {f"{p.name}/": b"" for p in entries if p.is_dir()}
    import zipfile

    if zipfile.is_zipfile(path):
        return _read_zip(path)
    raise BundleError(f"{path} is neither a bundle directory nor a zip file")


def models_dir() -> Path | None:
    """The folder of the packaged bundles (the package ``acula.sdk.models``), or None where it is not installed.
    ``find_spec`` rather than ``importlib.resources``: importing that module (tempfile, shutil, bz2, lzma,
    random) cost 10 ms of a 0.26 s cold start, and the bundles are plain files in a plain package anyway."""
    try:
        spec = find_spec("acula.sdk.models")
    except ModuleNotFoundError:
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return Path(locations[0]) if locations else None


def _pinned_name(path: Path) -> str | None:
    """The packaged name when ``path`` is one of the bundles in sdk/models."""
    root = models_dir()
    if root is None:
        return None
    try:
        resolved = path.resolve()
    except OSError:
        return None
    return next((name for name in PINNED_SHA256 if (root / name).resolve() == resolved), None)


def _public_key(key: Any) -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError as exc:
        raise BundleError("verifying a bundle signature needs: pip install cryptography") from exc
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, (str, Path)):
        key = Path(key).read_bytes()
    if isinstance(key, bytes) and key.lstrip().startswith(b"-----BEGIN"):
        loaded = load_pem_public_key(key)
        if not isinstance(loaded, Ed25519PublicKey):
            raise BundleError("the public key is not an Ed25519 key")
        return loaded
    if isinstance(key, bytes) and len(key) == 32:
        return Ed25519PublicKey.from_public_bytes(key)
    raise BundleError("public_key must be an Ed25519 public key: 32 raw bytes, PEM bytes, a PEM file or the object")


def sign_digest(digest: str, private_key: Any) -> bytes:
    """The ``manifest.sig`` content: an Ed25519 signature (cryptography's private key) of the manifest digest."""
    return bytes(private_key.sign(SIGNED_PREFIX + digest.encode("ascii")))


def _verify_signature(where: str, digest: str, signature: bytes | None, public_key: Any) -> None:
    key = _public_key(public_key)
    if signature is None:
        raise BundleError(f"{where} is not signed ({SIGNATURE} is absent) but a public key was given")
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, SIGNED_PREFIX + digest.encode("ascii"))
    except InvalidSignature as exc:
        raise BundleError(f"{where}: the signature does not match the manifest and the public key "
                          "(tampered, or signed by someone else)") from exc


def check_files(listed: dict[str, dict[str, Any]], raw: dict[str, bytes], source: str,
                beside: tuple[str, ...] = (MANIFEST, SIGNATURE)) -> None:
    """Refuse unless ``raw`` (name -> bytes) holds exactly the files the manifest lists besides ``beside``, each
    with its listed sha256 and size: the one check of an audio and a text bundle's files."""
    names = {_safe_name(name) for name in listed}
    present = set(raw) - set(beside)
    if missing := sorted(names - present):
        raise BundleError(f"{source} is missing files listed in its manifest: {missing}")
    if extra := sorted(present - names):
        raise BundleError(f"{source} holds files its manifest does not list: {extra}")
    for name, info in listed.items():
        file_digest = sha256_bytes(raw[name])
        if file_digest != info["sha256"]:
            raise BundleError(f"{source}/{name}: sha256 {file_digest} does not match the manifest's {info['sha256']}"
                              " (corrupt or tampered)")
        if len(raw[name]) != info["bytes"]:
            raise BundleError(f"{source}: manifest field files[{name!r}].bytes says {info['bytes']}, the file has "
                              f"{len(raw[name])}")


def verify_bundle(raw: dict[str, bytes], source: str, sha256: str | None = None, public_key: Any = None,
                  pinned: str | None = None) -> Bundle:
    """Verify a bundle's files held in memory (name -> bytes), in this order: manifest parse, digest against
    ``sha256`` and the pin, signature, schema, file list, file hashes, prompt bank."""
    if MANIFEST not in raw:
        raise BundleError(f"{source} has no {MANIFEST}")
    manifest = parse_manifest(raw[MANIFEST], f"{source}/{MANIFEST}")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{source} is not an AcuLa bundle (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise BundleError(f"{source} has bundle format version {version!r}; this SDK reads "
                          f"version {FORMAT_VERSION}. Upgrade acula-edge or re-export the bundle.")
    digest = manifest_digest(manifest)
    trust = "unpinned"
    for expected, what in ((PINNED_SHA256.get(pinned or ""), f"the digest pinned for the packaged {pinned!r}"),
                           (sha256, "the expected sha256")):
        if expected is None:
            continue
        if digest != str(expected).strip().lower():
            raise BundleError(f"{source}: manifest sha256 {digest} does not match {what} {expected} "
                              "(corrupt, tampered, or a different bundle)")
        trust = "pinned" if what.startswith("the digest pinned") else "sha256 checked"
    signature = raw.get(SIGNATURE)
    if signature is not None and len(signature) != 64:
        raise BundleError(f"{source}/{SIGNATURE} is {len(signature)} bytes; an Ed25519 signature is 64")
    if public_key is not None:
        _verify_signature(source, digest, signature, public_key)
        trust = "signature verified"
    try:
        validate_manifest(manifest)
    except BundleError as exc:
        raise BundleError(f"{source}: {exc}") from exc
    check_files(manifest["files"], raw, source)
    bundle = Bundle(manifest, {k: v for k, v in raw.items() if k != MANIFEST}, source, digest, trust)
    bank = manifest["prompt_bank"]
    try:
        prompts = bundle.array(bank["file"])
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{source}/{bank['file']} is not a readable .npy array: {exc}") from exc
    shape = (len(bank["texts"]), manifest["embed_dim"])
    if prompts.shape != shape or prompts.dtype.kind != "f" or not np.all(np.isfinite(prompts)):
        raise BundleError(f"{source}/{bank['file']} must hold {shape} finite floats (one row per prompt text), "
                          f"got {prompts.shape} {prompts.dtype}")
    return bundle


def read_bundle(path: str | Path, sha256: str | None = None, public_key: Any = None) -> Bundle:
    """Read and verify a bundle directory or zip.  ``sha256``: the manifest digest it must have (as
    ``acula info`` prints it); ``public_key``: an Ed25519 key its ``manifest.sig`` must verify against.
    A packaged bundle (sdk/models/NAME) must also match its pinned digest."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"no bundle at {path}")
    return verify_bundle(_read_source(path), str(path), sha256, public_key, pinned=_pinned_name(path))


def describe(bundle: Bundle) -> str:
    m = bundle.manifest
    signed = SIGNATURE in bundle.files
    lines = [f"bundle {bundle.source}: {m.get('name', '?')} (format {m['format_version']})",
             f"manifest sha256: {bundle.sha256} ({bundle.trust}"
             + ("; carries a signature, not verified: pass the signer's public key"
                if signed and bundle.trust != "signature verified" else "") + ")",
             f"front end: {m['frontend']}",
             f"window {m['window_frames']} frames, hop {m['hop_frames']} frames, embedding {m['embed_dim']}-d",
             "files:"]
    for name, info in m["files"].items():
        lines.append(f"  {name:24s} {info['bytes']:9d} B  {info.get('role', '')} {info.get('backend', '')} "
                     f"{info.get('precision', '')}  sha256 {info['sha256'][:16]}...")
    label_sets = m["prompt_bank"]["label_sets"]
    lines.append("label sets: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in label_sets.items()))
    lines.append(f"heads: {', '.join(m.get('heads', {}))}")
    if "screening" in m:
        lines.append(f"screening: {m['screening']}")
    if "level" in m:  # sdk.level
        lv = m["level"]
        kept = ", digital silence kept at the floor" if lv.get("keep_floor") else ""
        kept += f", cells floored {lv['range_db']:g} dB under it" if "range_db" in lv else ""
        lines.append(f"level: windows shifted so the loudest cell of the last {lv['history_frames']} frames sits at "
                     f"{lv['ref']}{kept}; quality gate {lv.get('gate', 'relative')}")
    if "provenance" in m:
        lines.append(f"provenance: {json.dumps(m['provenance'], sort_keys=True)}")
    lines.append(f"licence: {m.get('licence', 'unspecified')}")
    return "\n".join(lines)
