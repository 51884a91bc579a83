"""Write a model bundle (see :mod:`sdk.bundle` for the format, which the SDK verifies on load)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sdk.bundle import FORMAT, FORMAT_VERSION, MANIFEST, sha256_bytes


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_bundle(out: Path, files: dict[str, tuple[bytes, dict[str, Any]]], manifest: dict[str, Any],
                 as_zip: bool = False) -> Path:
    """``files``: name -> (bytes, description); hashes and sizes are added here."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": {}}
    for name, (data, info) in files.items():
        manifest["files"][name] = {**info, "sha256": sha256_bytes(data), "bytes": len(data)}
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    if as_zip:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, text)
            for name, (data, _) in files.items():
                zf.writestr(name, data)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.is_file() and stale.name not in files and stale.name != MANIFEST:
            stale.unlink()
    for name, (data, _) in files.items():
        (out / name).write_bytes(data)
    (out / MANIFEST).write_bytes(text)
    return out
