"""``python -m acula.sdk.web.build``: write the files the browser page loads from a verified bundle.

    python -m acula.sdk.web.build [--bundle default] [--precision fp32] [--out sdk/web/model] [-f]

Writes into ``--out``:

- the student graph, byte for byte as the bundle holds it (``student_fp32.onnx``);
- ``prompts.f32``: the prompt bank, float32 little-endian, shape (n_prompts, embed_dim);
- ``model.json``: everything else the page needs, derived here so the page re-implements no table.
  The mel filterbank comes from :func:`sdk.frontend.mel_filterbank` of the bundle's ``FrontendConfig``,
  stored sparse (per band: first FFT bin and its non-zero weights); the Hann window is rebuilt in
  JavaScript from ``n_fft`` with the formula of :func:`sdk.frontend.hann_window`.  Calibration
  (logit scale, per-label-set temperatures), label sets with their prompt indices, the cough head,
  the operating point (:class:`sdk.screening.ScreeningConfig`) and the quality-gate constants of
  :mod:`sdk.audio` are copied from the bundle and the SDK, with each file's sha256 so the page can
  check what it fetched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from acula.sdk import quality
from acula.sdk.frontend import mel_filterbank
from acula.sdk.model import Model, load
from acula.sdk.screening import ScreeningConfig

DEFAULT_OUT = Path(__file__).resolve().parent / "model"
#: bumped when model.json changes shape; the page refuses another version (2: the screening config's
#: cough-splitting fields and the gate's ``inactive_below_loudest_db``; 3: ``level``, sdk.level; 4: ``level.low``)
WEB_FORMAT_VERSION = 4


def sparse_filterbank(fb: np.ndarray) -> list[dict[str, Any]]:
    """Per mel band (columns of ``fb``, shape (n_freqs, n_mels)): the first non-zero bin and the weights
    from it to the last non-zero bin."""
    bands = []
    for m in range(fb.shape[1]):
        nz = np.flatnonzero(fb[:, m])
        if nz.size == 0:
            bands.append({"start": 0, "weights": []})
            continue
        bands.append({"start": int(nz[0]), "weights": [float(w) for w in fb[nz[0] : nz[-1] + 1, m]]})
    return bands


def web_model(model: Model) -> dict[str, Any]:
    """The JSON-ready description of ``model`` the page needs (without the binary files)."""
    m = model.bundle.manifest
    cfg = model.frontend.config
    cal_temperature = model.temperature
    screening: ScreeningConfig = model.screening
    bank = m["prompt_bank"]
    return {
        "format": "acula-web",
        "format_version": WEB_FORMAT_VERSION,
        "bundle": {"name": m.get("name"), "format_version": m["format_version"]},
        "frontend": cfg.to_dict(),
        "mel_bands": sparse_filterbank(mel_filterbank(cfg)),
        "window_frames": model.window_frames,
        "hop_frames": model.hop_frames,
        "embed_dim": int(m["embed_dim"]),
        "logit_scale": model.logit_scale,
        "temperature": cal_temperature,
        "bias": model.bias,
        "label_sets": {name: {"labels": list(groups), "prompt_indices": [list(map(int, idx))
                                                                        for idx in groups.values()]}
                       for name, groups in bank["label_sets"].items()},
        "cough_head": model.cough_head,
        # sdk.level: windows shifted to a running level and the level-blind gate; None: as is
        "level": None if model.level is None else {**model.level.to_manifest(), "floor": model.level.floor,
                                                   "low": None if model.level.low is None
                                                   else float(np.float32(model.level.low))},
        # every field: hysteresis, duration, refractory, smoothing and the split into single coughs
        "screening": asdict(screening),
        "quality": {"silence_peak": quality.SILENCE_PEAK, "clip_level": quality.CLIP_LEVEL,
                    "clip_tolerance": quality.CLIP_TOLERANCE, "clip_min_run": quality.CLIP_MIN_RUN,
                    "clipped_fraction": quality.CLIPPED_FRACTION,
                    "low_level_rms_dbfs": quality.LOW_LEVEL_RMS_DBFS,
                    "inactive_below_loudest_db": quality.INACTIVE_BELOW_LOUDEST_DB},
    }


def build(out: Path, bundle: str = "default", precision: str = "fp32") -> dict[str, Any]:
    """Write the page's model files into ``out`` (created); returns model.json's content."""
    model = load(bundle, backend="onnxruntime", precision=precision)
    name, info = model.bundle.model_file("onnxruntime", precision)
    prompts = np.ascontiguousarray(model.prompts, dtype="<f4")
    desc = web_model(model)
    desc["student"] = {"file": name, "sha256": info["sha256"], "precision": precision,
                       "input": info["inputs"][0]["name"], "outputs": [o["name"] for o in info["outputs"]]}
    desc["prompts"] = {"file": "prompts.f32", "shape": list(prompts.shape),
                       "sha256": hashlib.sha256(prompts.tobytes()).hexdigest()}
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(model.bundle.files[name])
    (out / "prompts.f32").write_bytes(prompts.tobytes())
    (out / "model.json").write_text(json.dumps(desc, indent=1, sort_keys=True) + "\n")
    return desc


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m acula.sdk.web.build", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bundle", default="default", help="packaged bundle name or path")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"], help="student graph to ship")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder the page loads model files from")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing model.json")
    args = p.parse_args(argv)
    if (args.out / "model.json").exists() and not args.force:
        print(f"error: {args.out / 'model.json'} exists; pass -f to overwrite", file=sys.stderr)
        return 1
    desc = build(args.out, args.bundle, args.precision)
    print(f"wrote {args.out}: {desc['student']['file']}, prompts.f32 {desc['prompts']['shape']}, model.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
