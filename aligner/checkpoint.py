"""Checkpoints as safetensors plus a JSON description (no pickle)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars["state"].setdefault(str(idx), {})[name] = value
    return tensors, scalars


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, extra in scalars["state"].items():
        state.setdefault(int(idx), {}).update(extra)
    return {"state": state, "param_groups": scalars["param_groups"]}


def save_checkpoint(out: Path, model: torch.nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, tag: str = "last") -> Path:
    """Write ``{tag}.safetensors`` (weights), ``{tag}.json`` (config and step) and the optimizer state."""
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / f"{tag}.tmp.safetensors"))
    (out / f"{tag}.tmp.safetensors").replace(out / f"{tag}.safetensors")
    if optimizer is not None:
        tensors, scalars = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, str(out / f"{tag}.optim.safetensors"))
        meta = {**meta, "optimizer": scalars}
    (out / f"{tag}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return out / f"{tag}.safetensors"


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``path`` is the .safetensors file or its directory (then ``last``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.safetensors"
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (need {path.name} and {meta_path.name})")
    return load_file(str(path)), json.loads(meta_path.read_text())


#: config fields that may change between a run and its resumption: bookkeeping, the run's name, and the step
#: count (extending a finished run is how a longer schedule is tried)
RESUMABLE_CHANGES = frozenset({"name", "log_every", "ckpt_every", "max_steps"})


def check_resumable(out: Path, key: str, current: Any) -> None:
    """Refuse to resume the run in ``out`` under a config that differs from the one it was trained with.

    ``key`` names the config in the checkpoint's JSON; ``current`` is a config dataclass whose ``from_dict``
    normalises the saved one (fields added since the run take their defaults)."""
    ckpt = out / "last.json"
    if not ckpt.is_file():
        return
    saved = type(current).from_dict(json.loads(ckpt.read_text())[key]).to_dict()
    now = current.to_dict()
    changed = sorted(k for k in saved.keys() | now.keys()
                     if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if changed:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, config {now.get(k)!r}" for k in changed)
        raise ValueError(f"{ckpt} was trained with a different config ({detail}); "
                         "pass --fresh to start over or choose another --out")


C = TypeVar("C")


def run_config(command: str, resolve: Callable[[str], C], name: str | None, max_steps: int | None, out: Path,
               key: str, fresh: bool, overrides: dict[str, Any] | None = None) -> C:
    """The config of an ``acula align`` / ``acula distill`` run from its command line: the preset or JSON file
    ``name`` (default-cpu, said on stderr, when none is given), ``max_steps`` and ``overrides`` (field: value)
    replacing the config's, and refused (ValueError) when it differs from the checkpoint it would resume
    (``check_resumable``)."""
    if name is None:
        name = "default-cpu"
        print(f"{command}: no --config given: using preset default-cpu (see '{command} --help' for the others)",
              file=sys.stderr)
    cfg = resolve(name)
    if max_steps:
        cfg = dataclasses.replace(cfg, max_steps=max_steps)  # type: ignore[type-var]
    if overrides:
        for field, value in overrides.items():
            listed = getattr(cfg, field)
            if listed and listed != value:
                print(f"{command}: {field} from the command line {value!r} replaces the config's {listed!r}",
                      file=sys.stderr)
        cfg = dataclasses.replace(cfg, **overrides)  # type: ignore[type-var]
    if not fresh:
        check_resumable(out, key, cfg)
    return cfg


def load_optimizer_state(path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    opt = path.with_name(path.name.replace(".safetensors", ".optim.safetensors"))
    if "optimizer" not in meta or not opt.is_file():
        return None
    return _unflatten_optimizer(load_file(str(opt)), meta["optimizer"])


def resume_from(out: Path, key: str, cfg: Any, model: torch.nn.Module,
                optimizer: torch.optim.Optimizer, tag: str = "last") -> tuple[int, dict[str, float]] | None:
    """Load ``out/{tag}`` into ``model`` and ``optimizer`` after :func:`check_resumable`.

    Returns the step to go on from and the run's last logged metrics, or None when ``out`` holds no
    checkpoint (a fresh run)."""
    ckpt = out / f"{tag}.safetensors"
    if not ckpt.is_file():
        return None
    check_resumable(out, key, cfg)
    state, meta = load_checkpoint(ckpt)
    model.load_state_dict(state)
    opt_state = load_optimizer_state(ckpt, meta)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    return int(meta["step"]), dict(meta.get("last_metrics", {}))
