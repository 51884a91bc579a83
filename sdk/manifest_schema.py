"""``manifest.json`` of a bundle: strict parsing, the canonical digest, and the schema of every field.

The digest is the root of trust of a bundle: sha256 over the canonical JSON of the parsed manifest (keys
sorted, no whitespace, ASCII, Python's shortest float repr), and so over every file's sha256.  Whitespace and
key order do not change it; any change of a value does.  ``sdk.load(path, sha256=...)`` checks it, the
packaged bundles are pinned to it, and an Ed25519 signature (``manifest.sig``) signs it.

Every field is checked for type and range before anything uses it; a problem is one :class:`BundleError`
that names the field, e.g. ``manifest field screening.cough_on must be in [0, 1], got 1.66``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import PurePosixPath
from typing import Any

from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.runtimes import BACKENDS as _RUNTIMES

MAX_MANIFEST_BYTES = 1 << 20  # the shipped one is 13 kB
MAX_DEPTH = 32  # nesting of JSON objects and arrays (the shipped manifest nests 6 deep)

ROLES = ("student", "waveform_student", "prompt_bank", "text_encoder")
MODEL_ROLES = ("student", "waveform_student")
BACKENDS = tuple(_RUNTIMES)  # a model file names a runtime the SDK has (sdk.runtimes, the one owner)
PRECISIONS = ("fp32", "fp16", "int8")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """The bundle cannot be trusted or read."""


def _safe_name(name: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or len(p.parts) != 1:
        raise BundleError(f"bundle file name {name!r} escapes the bundle (only plain names are allowed)")
    return name


# --- parsing and the digest -------------------------------------------------------------------------------

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_depth_and_text(obj: Any) -> None:
    """Iteratively (no recursion): nesting depth, and no string that cannot be written as UTF-8."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise BundleError(f"manifest nests deeper than {MAX_DEPTH} levels")
            items = list(node.items()) if isinstance(node, dict) else [(None, v) for v in node]
            for key, value in items:
                if key is not None:
                    stack.append((key, depth))
                stack.append((value, depth + 1))
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BundleError(f"manifest holds a string that is not valid Unicode: {node[:40]!r}") from exc


def parse_manifest(raw: bytes, where: str = "manifest.json") -> dict[str, Any]:
    """Bytes -> manifest dict.  Anything but one UTF-8 JSON object of finite numbers, without duplicate keys
    and at most :data:`MAX_DEPTH` deep, is a :class:`BundleError`."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{where} is {len(raw):,} bytes; a manifest is at most {MAX_MANIFEST_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{where} is not UTF-8 text: {exc}") from exc
    try:
        manifest = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_finite_float,
                              parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BundleError(f"{where} is not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, duplicate keys, non-finite numbers, over-long integers
        raise BundleError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{where} is not a JSON object")
    _check_depth_and_text(manifest)
    return manifest


def canonical_json(manifest: dict[str, Any]) -> bytes:
    """The bytes the digest covers: sorted keys, no whitespace, ASCII escapes."""
    try:
        return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"manifest cannot be written as canonical JSON: {exc}") from exc


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 (hex) of :func:`canonical_json`: the bundle's identity, covering every file's hash."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


# --- the schema ---------------------------------------------------------------------------------------------

def _fail(field: str, problem: str, value: Any = ...) -> BundleError:
    got = "" if value is ... else f", got {_short(value)}"
    return BundleError(f"manifest field {field} {problem}{got}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _obj(value: Any, field: str, required: tuple[str, ...] = (), optional: tuple[str, ...] | None = ()
         ) -> dict[str, Any]:
    """A JSON object with these keys; ``optional=None``: any further keys."""
    if not isinstance(value, dict):
        raise _fail(field, "must be a JSON object", value)
    if missing := [k for k in required if k not in value]:
        raise _fail(field, f"lacks {', '.join(missing)}")
    if optional is not None and (unknown := sorted(set(value) - set(required) - set(optional))):
        raise _fail(field, f"has unknown keys {unknown}")
    return value


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "must be an integer", value)
    if not lo <= value <= hi:
        raise _fail(field, f"must be in [{lo}, {hi}]", value)
    return value


def _num(value: Any, field: str, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(field, "must be a finite number", value)
    if value < lo or value > hi or (lo_open and value == lo):
        raise _fail(field, f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]", value)
    return float(value)


def _str(value: Any, field: str, choices: tuple[str, ...] | None = None, max_len: int = 10_000) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _fail(field, f"must be a non-empty string of at most {max_len} characters", value)
    if choices is not None and value not in choices:
        raise _fail(field, f"must be one of {list(choices)}", value)
    return value


def _list(value: Any, field: str, min_len: int = 0, max_len: int = 100_000) -> list[Any]:
    if not isinstance(value, list) or not min_len <= len(value) <= max_len:
        raise _fail(field, f"must be a list of {min_len} to {max_len} items", value)
    return value


def _frontend(value: Any) -> FrontendConfig:
    names = ("sample_rate_hz", "n_fft", "hop_length", "n_mels", "f_min_hz", "f_max_hz", "amin_power",
             "norm_mean_db", "norm_std_db")
    d = _obj(value, "frontend", names)
    _int(d["sample_rate_hz"], "frontend.sample_rate_hz", 1000, 384_000)
    _int(d["n_fft"], "frontend.n_fft", 16, 65_536)
    _int(d["hop_length"], "frontend.hop_length", 1, 65_536)
    _int(d["n_mels"], "frontend.n_mels", 1, 1024)
    _num(d["f_min_hz"], "frontend.f_min_hz", 0.0)
    _num(d["f_max_hz"], "frontend.f_max_hz", 0.0, lo_open=True)
    _num(d["amin_power"], "frontend.amin_power", 0.0, 1.0, lo_open=True)
    _num(d["norm_mean_db"], "frontend.norm_mean_db", -1000.0, 1000.0)
    _num(d["norm_std_db"], "frontend.norm_std_db", 0.0, 1000.0, lo_open=True)
    try:
        return FrontendConfig.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise _fail("frontend", f"is not a valid front end: {exc}") from exc


def _tensors(value: Any, field: str) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(_list(value, field, 1, 16)):
        t = _obj(t, f"{field}[{i}]", ("name", "shape"), ("dtype",))
        _str(t["name"], f"{field}[{i}].name", max_len=200)
        for j, dim in enumerate(_list(t["shape"], f"{field}[{i}].shape", 1, 8)):
            _int(dim, f"{field}[{i}].shape[{j}]", 1, 1 << 24)
        if "dtype" in t:
            _str(t["dtype"], f"{field}[{i}].dtype", ("float32", "float16", "int8", "uint8", "int16"))
        out.append(t)
    return out


def _files(value: Any, m: dict[str, Any], n_mels: int) -> None:
    files = _obj(value, "files", optional=None)
    if not files or len(files) > 64:
        raise _fail("files", "must list 1 to 64 files", len(files))
    W, E = m["window_frames"], m["embed_dim"]
    models: set[tuple[str, str, str]] = set()
    for name, info in files.items():
        f = f"files[{_safe_name(name)!r}]"
        info = _obj(info, f, ("sha256", "bytes", "role"), ("backend", "precision", "inputs", "outputs"))
        if not isinstance(info["sha256"], str) or not _SHA256.fullmatch(info["sha256"]):
            raise _fail(f"{f}.sha256", "must be 64 lowercase hex digits", info["sha256"])
        _int(info["bytes"], f"{f}.bytes", 0, 1 << 30)
        role = _str(info["role"], f"{f}.role", ROLES)
        if role not in MODEL_ROLES:
            if extra := sorted(set(info) & {"backend", "precision", "inputs", "outputs"}):
                raise _fail(f, f"is a {role}, which has no {extra}")
            continue
        for key in ("backend", "precision", "inputs", "outputs"):
            if key not in info:
                raise _fail(f, f"is a {role} model and lacks {key}")
        kind = (role, _str(info["backend"], f"{f}.backend", BACKENDS),
                _str(info["precision"], f"{f}.precision", PRECISIONS))
        if kind in models:
            raise _fail(f, f"is a second {' '.join(kind)} model")
        models.add(kind)
        inputs, outputs = _tensors(info["inputs"], f"{f}.inputs"), _tensors(info["outputs"], f"{f}.outputs")
        if role == "student" and inputs[0]["shape"] != [1, W, n_mels]:
            raise _fail(f"{f}.inputs[0].shape", f"must be [1, window_frames, n_mels] = [1, {W}, {n_mels}]",
                        inputs[0]["shape"])
        if len(outputs) != 2 or outputs[0]["shape"] != [1, E] or len(outputs[1]["shape"]) != 2:
            raise _fail(f"{f}.outputs", f"must be an embedding [1, {E}] and heads [1, n_heads]",
                        [o["shape"] for o in outputs])
        n_heads = outputs[1]["shape"][1]
        for head, h in (m.get("heads") or {}).items():
            if isinstance(h, dict) and isinstance(h.get("index"), int) and h["index"] >= n_heads:
                raise _fail(f"heads.{head}.index", f"must be below the {n_heads} heads of {name}", h["index"])


def _prompt_bank(value: Any, files: dict[str, Any]) -> dict[str, int]:
    """Validates the bank; returns each label set's number of labels."""
    bank = _obj(value, "prompt_bank", ("file", "texts", "label_sets"))
    name = _str(bank["file"], "prompt_bank.file", max_len=200)
    if files.get(name, {}).get("role") != "prompt_bank":
        raise _fail("prompt_bank.file", "must name a file whose role is prompt_bank", name)
    texts = _list(bank["texts"], "prompt_bank.texts", 1, 100_000)
    for i, t in enumerate(texts):
        _str(t, f"prompt_bank.texts[{i}]")
    sets = _obj(bank["label_sets"], "prompt_bank.label_sets", optional=None)
    if not sets:
        raise _fail("prompt_bank.label_sets", "must hold at least one label set")
    for set_name, labels in sets.items():
        f = f"prompt_bank.label_sets.{set_name}"
        _str(set_name, f, max_len=200)
        labels = _obj(labels, f, optional=None)
        if not labels:
            raise _fail(f, "must hold at least one label")
        for label, idx in labels.items():
            _str(label, f"{f}.{label}", max_len=200)
            for j, k in enumerate(_list(idx, f"{f}.{label}", 1, len(texts))):
                _int(k, f"{f}.{label}[{j}]", 0, len(texts) - 1)
    return {k: len(v) for k, v in sets.items()}


def _calibration(value: Any, label_sets: dict[str, int]) -> None:
    cal = _obj(value, "calibration", (), ("logit_scale", "temperature", "bias", "fitted_on", "report"))
    if "logit_scale" in cal:
        _num(cal["logit_scale"], "calibration.logit_scale", 0.0, 1000.0, lo_open=True)
    temperature = cal.get("temperature", 1.0)
    if isinstance(temperature, dict):
        for k, t in temperature.items():
            if k not in label_sets:
                raise _fail(f"calibration.temperature.{k}", f"names no label set (the bundle has {sorted(label_sets)})")
            _num(t, f"calibration.temperature.{k}", 0.0, 1000.0, lo_open=True)
    else:
        _num(temperature, "calibration.temperature", 0.0, 1000.0, lo_open=True)
    for k, b in _obj(cal.get("bias", {}), "calibration.bias", optional=None).items():
        if k not in label_sets:
            raise _fail(f"calibration.bias.{k}", f"names no label set (the bundle has {sorted(label_sets)})")
        if len(_list(b, f"calibration.bias.{k}", 1, 1000)) != label_sets[k]:
            raise _fail(f"calibration.bias.{k}", f"needs one value per label ({label_sets[k]})", b)
        for j, v in enumerate(b):
            _num(v, f"calibration.bias.{k}[{j}]", -100.0, 100.0)
    if "fitted_on" in cal:
        _str(cal["fitted_on"], "calibration.fitted_on")
    if "report" in cal:
        _obj(cal["report"], "calibration.report", optional=None)


def _groups(value: Any, field: str, lo: float, hi: float, integer: bool = False) -> None:
    for k, v in _obj(value, field, optional=None).items():
        if integer:
            _int(v, f"{field}.{k}", int(lo), int(hi))
        else:
            _num(v, f"{field}.{k}", lo, hi)


def _screening(value: Any, files: dict[str, Any]) -> None:
    s = _obj(value, "screening", ("cough_on", "cough_off", "min_duration_s", "refractory_s"),
             ("smoothing_windows", "calibrated_on", "probabilities_from", "targets", "targets_met",
              "target_false_alarms_per_hour", "val_cough_recording_recall", "val_false_alarms_per_hour",
              "val_fraction_flagged", "val_noncough_hours", "n_val_recordings"))
    on = _num(s["cough_on"], "screening.cough_on", 0.0, 1.0)
    _num(s["cough_off"], "screening.cough_off", 0.0, on)
    _num(s["min_duration_s"], "screening.min_duration_s", 0.0, 3600.0)
    _num(s["refractory_s"], "screening.refractory_s", 0.0, 86_400.0)
    if "smoothing_windows" in s:
        _int(s["smoothing_windows"], "screening.smoothing_windows", 1, 1000)
    if "calibrated_on" in s:
        _str(s["calibrated_on"], "screening.calibrated_on")
    if "probabilities_from" in s and _str(s["probabilities_from"], "screening.probabilities_from") not in files:
        raise _fail("screening.probabilities_from", "must name a file of the bundle", s["probabilities_from"])
    if "targets" in s:
        _groups(s["targets"], "screening.targets", 0.0, 1.0)
    if "targets_met" in s and not isinstance(s["targets_met"], bool):
        raise _fail("screening.targets_met", "must be true or false", s["targets_met"])
    for key in ("target_false_alarms_per_hour", "val_false_alarms_per_hour", "val_noncough_hours"):
        if key in s:
            _num(s[key], f"screening.{key}", 0.0)
    if s.get("val_cough_recording_recall") is not None:
        _num(s["val_cough_recording_recall"], "screening.val_cough_recording_recall", 0.0, 1.0)
    if "val_fraction_flagged" in s:
        _groups(s["val_fraction_flagged"], "screening.val_fraction_flagged", 0.0, 1.0)
    if "n_val_recordings" in s:
        _groups(s["n_val_recordings"], "screening.n_val_recordings", 0, 1 << 40, integer=True)


REQUIRED = ("format", "format_version", "frontend", "window_frames", "hop_frames", "embed_dim", "files",
            "prompt_bank")
OPTIONAL = ("name", "heads", "calibration", "screening", "level", "provenance", "licence")


def validate_manifest(m: dict[str, Any]) -> FrontendConfig:
    """Check every field's type and range, and that fields agree with each other; returns the front end."""
    _obj(m, "(top level)", REQUIRED, OPTIONAL)
    _str(m["format"], "format", ("acula-bundle",))
    _int(m["format_version"], "format_version", 1, 1)
    if "name" in m:
        _str(m["name"], "name", max_len=200)
    front = _frontend(m["frontend"])
    W = _int(m["window_frames"], "window_frames", 1, 100_000)
    _int(m["hop_frames"], "hop_frames", 1, W)
    _int(m["embed_dim"], "embed_dim", 1, 1 << 16)
    if "heads" in m:
        for head, h in _obj(m["heads"], "heads", optional=None).items():
            _str(head, f"heads.{head}", max_len=200)
            _int(_obj(h, f"heads.{head}", ("index",))["index"], f"heads.{head}.index", 0, 1023)
    _files(m["files"], m, front.n_mels)
    label_sets = _prompt_bank(m["prompt_bank"], m["files"])
    if "calibration" in m:
        _calibration(m["calibration"], label_sets)
    if "screening" in m:
        _screening(m["screening"], m["files"])
    if "level" in m:
        lv = _obj(m["level"], "level", ("ref", "history_frames"), ("gate", "keep_floor", "range_db"))
        if "keep_floor" in lv and not isinstance(lv["keep_floor"], bool):
            raise _fail("level.keep_floor", "must be true or false", lv["keep_floor"])
        _num(lv["ref"], "level.ref", -10.0, 10.0)
        if "range_db" in lv:
            _num(lv["range_db"], "level.range_db", 1.0, 400.0)
            if lv.get("keep_floor"):
                raise _fail("level.keep_floor", "cannot be true with range_db (silence lands on the relative floor)",
                            lv["keep_floor"])
        _int(lv["history_frames"], "level.history_frames", 1, 1_000_000)
        if "gate" in lv:
            _str(lv["gate"], "level.gate", ("relative", "absolute"))
    if "provenance" in m:
        _obj(m["provenance"], "provenance", optional=None)
    if "licence" in m:
        _str(m["licence"], "licence")
    return front
