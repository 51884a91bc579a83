"""Write a model bundle (see :mod:`sdk.bundle` for the format, which the SDK verifies on load).

The manifest written is checked against the SDK's schema first, so an export never produces a bundle the
SDK refuses.  Its digest (``bundle_digest``) is the bundle's identity: print it, publish it, pin it
(``sdk.bundle.PINNED_SHA256`` for a packaged bundle).  With a signing key (an Ed25519 private key from the
``cryptography`` library) ``manifest.sig`` is written beside the manifest.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from acula.sdk.bundle import FORMAT, FORMAT_VERSION, MANIFEST, SIGNATURE, sha256_bytes, sign_digest
from acula.sdk.manifest_schema import manifest_digest, parse_manifest, validate_manifest


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def bundle_parts(bundle: Any) -> tuple[dict[str, tuple[bytes, dict[str, Any]]], dict[str, Any]]:
    """A read bundle (``sdk.bundle.Bundle``) as :func:`write_bundle` takes one: its files with their descriptions
    (hashes and sizes dropped, written again) and its manifest body (format and file table dropped)."""
    m = bundle.manifest
    files = {name: (data, {k: v for k, v in m["files"][name].items() if k not in ("sha256", "bytes")})
             for name, data in bundle.files.items() if name != MANIFEST}
    return files, {k: v for k, v in m.items() if k not in ("format", "format_version", "files")}


def rewrite_staged(src: Path, out: Path, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``write(staged)`` writes a new bundle made from ``src`` into a temporary folder; then its files are copied over
    ``out`` (the same names as the source bundle's, overwritten in place).  A failure inside ``write`` leaves ``out``
    alone.  Returns ``write``'s result with ``bundle`` set to ``out``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / src.name
        result = write(staged)
        out.mkdir(parents=True, exist_ok=True)
        for f in staged.iterdir():
            (out / f.name).write_bytes(f.read_bytes())
    return {**result, "bundle": str(out)}


def bundle_digest(bundle: Path) -> str:
    """Manifest digest of a written bundle (directory or zip), as ``sdk.load(path, sha256=...)`` expects."""
    if bundle.is_dir():
        raw = (bundle / MANIFEST).read_bytes()
    else:
        with zipfile.ZipFile(bundle) as zf:
            raw = zf.read(MANIFEST)
    return manifest_digest(parse_manifest(raw))


def write_bundle(out: Path, files: dict[str, tuple[bytes, dict[str, Any]]], manifest: dict[str, Any],
                 as_zip: bool = False, signing_key: Any = None) -> Path:
    """``files``: name -> (bytes, description); hashes and sizes are added here.  ``signing_key``: an
    Ed25519 private key to write ``manifest.sig`` with."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": {}}
    for name, (data, info) in files.items():
        manifest["files"][name] = {**info, "sha256": sha256_bytes(data), "bytes": len(data)}
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode()
    written = parse_manifest(text)  # what the SDK will read back
    validate_manifest(written)
    signature = None if signing_key is None else sign_digest(manifest_digest(written), signing_key)
    if as_zip:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, text)
            if signature is not None:
                zf.writestr(SIGNATURE, signature)
            for name, (data, _) in files.items():
                zf.writestr(name, data)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.is_file() and stale.name not in files and stale.name != MANIFEST:
            stale.unlink()
    for name, (data, _) in files.items():
        (out / name).write_bytes(data)
    if signature is not None:
        (out / SIGNATURE).write_bytes(signature)
    (out / MANIFEST).write_bytes(text)
    return out
