"""The model bundle: one directory (or a zip of it) described by ``manifest.json``.

Format version 1.  ``manifest.json`` holds::

    format: "acula-bundle", format_version: 1
    frontend: FrontendConfig fields           window_frames, hop_frames, embed_dim
    files: {name: {sha256, bytes, role, backend, precision, inputs, outputs}}
    prompt_bank: {file, texts, label_sets: {set: {label: [prompt index, ...]}}}
    heads: {name: {index}}                    calibration: {logit_scale, temperature}
    screening: {...operating point...}        provenance: {...}, licence

Every file is loaded only through the manifest.  A hash mismatch, an unknown
format version, a missing or extra file, or a name that escapes the bundle is
refused with :class:`BundleError`.  Nothing in a bundle is pickled: models are
ONNX / TFLite, arrays are ``.npy`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sdk.frontend_config import FrontendConfig

FORMAT = "acula-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """The bundle cannot be trusted or read."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or len(p.parts) != 1:
        raise BundleError(f"bundle file name {name!r} escapes the bundle (only plain names are allowed)")
    return name


@dataclass
class Bundle:
    """A verified bundle held in memory: the manifest and every file's bytes."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    source: str

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


def _read_source(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()} | (
            {f"{p.name}/": b"" for p in path.iterdir() if p.is_dir()})
    if zipfile.is_zipfile(path):
        out = {}
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir():
                    raise BundleError(f"{path}: zip holds a folder {name!r}; a bundle is flat")
                out[_safe_name(name)] = zf.read(info)
        return out
    raise BundleError(f"{path} is neither a bundle directory nor a zip file")


def read_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle directory or zip."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"no bundle at {path}")
    raw = _read_source(path)
    if MANIFEST not in raw:
        raise BundleError(f"{path} has no {MANIFEST}")
    try:
        manifest = json.loads(raw[MANIFEST])
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}/{MANIFEST} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not an AcuLa bundle (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path} has bundle format version {manifest.get('format_version')!r}; this SDK reads "
                          f"version {FORMAT_VERSION}. Upgrade acula-edge or re-export the bundle.")
    listed = {_safe_name(name) for name in manifest.get("files", {})}
    present = set(raw) - {MANIFEST}
    if missing := sorted(listed - present):
        raise BundleError(f"{path} is missing files listed in its manifest: {missing}")
    if extra := sorted(present - listed):
        raise BundleError(f"{path} holds files its manifest does not list: {extra}")
    for name, info in manifest["files"].items():
        digest = sha256_bytes(raw[name])
        if digest != info.get("sha256"):
            raise BundleError(f"{path}/{name}: sha256 {digest} does not match the manifest's {info.get('sha256')}"
                              " (corrupt or tampered)")
    FrontendConfig.from_dict(manifest["frontend"])
    return Bundle(manifest, {k: v for k, v in raw.items() if k != MANIFEST}, str(path))


def describe(bundle: Bundle) -> str:
    m = bundle.manifest
    lines = [f"bundle {bundle.source}: {m.get('name', '?')} (format {m['format_version']})",
             f"front end: {m['frontend']}",
             f"window {m['window_frames']} frames, hop {m['hop_frames']} frames, embedding {m['embed_dim']}-d",
             "files:"]
    for name, info in m["files"].items():
        lines.append(f"  {name:24s} {info['bytes']:9d} B  {info.get('role', '')} {info.get('backend', '')} "
                     f"{info.get('precision', '')}  sha256 {info['sha256'][:16]}...")
    label_sets = m.get("prompt_bank", {}).get("label_sets", {})
    lines.append("label sets: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in label_sets.items()))
    lines.append(f"heads: {', '.join(m.get('heads', {}))}")
    if "screening" in m:
        lines.append(f"screening: {m['screening']}")
    if "provenance" in m:
        lines.append(f"provenance: {json.dumps(m['provenance'], sort_keys=True)}")
    lines.append(f"licence: {m.get('licence', 'unspecified')}")
    return "\n".join(lines)
