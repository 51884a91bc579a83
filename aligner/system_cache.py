"""Per-record outputs of an evaluated system, cached on disk per system and transform.

One ``.npz`` per system and transform under the cache folder, keyed by record id and the system's fingerprint
(its name, the files it was loaded from with their sizes and times, and its command-line spec), so a rerun of
``python -m acula.aligner.primary`` scores only what changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from acula.aligner.corpus import Corpus
from acula.aligner.systems import SystemOutput


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:60] + "-" + hashlib.sha1(
        name.encode()).hexdigest()[:6]


def run_system(system: Any, corpus: Corpus, indices: list[int], transform: str, cache: Path | None,
               fingerprint: str, noise: Any = None, progress: bool = True) -> dict[int, SystemOutput]:
    """Outputs of ``system`` for corpus records ``indices`` under ``transform``, read from / written to the
    cache (one .npz per system and transform, keyed by record id and the system's fingerprint)."""
    from acula.aligner.invariance import apply_transform
    from acula.sdk.audio import load_audio
    from tqdm import tqdm

    path = None if cache is None else cache / _slug(system.name) / f"{transform}.npz"
    have: dict[int, SystemOutput] = {}
    ids = {corpus.rows[i]["record_id"]: i for i in indices}
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) == fingerprint:
                meta = json.loads(str(z["meta"]))
                features = z["features"]  # read once: indexing the NpzFile re-reads the whole array each time
                for k, rid in enumerate(meta["ids"]):
                    if rid in ids:
                        have[ids[rid]] = SystemOutput(features[k], meta["native"][k], meta["probability"][k],
                                                      bool(meta["scored"][k]))
    todo = [i for i in indices if i not in have]
    for i in tqdm(todo, desc=f"{system.name} [{transform}]", unit="rec", disable=not progress or not todo):
        r = corpus.records[i]
        samples = load_audio(corpus.audio_path(i), 16000, r.start_s, r.end_s).samples
        row = corpus.rows[i]
        exclude = row["metadata"].get("sound_class") if row["dataset"] == "esc10" else None
        x = apply_transform(transform, samples, 16000, seed=[0, i], noise=noise,
                            exclude=None if exclude is None else exclude.replace(" ", "_"))
        have[i] = system(x)
    if path is not None and todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        order = sorted(have)
        meta = {"ids": [corpus.rows[i]["record_id"] for i in order], "native": [have[i].native for i in order],
                "probability": [have[i].probability for i in order], "scored": [have[i].scored for i in order]}
        np.savez(path, features=np.stack([have[i].features for i in order]), meta=json.dumps(meta),
                 fingerprint=fingerprint)
    return have


def fingerprint_of(system: Any, spec: dict[str, str]) -> str:
    src = spec.get(system.name, "")
    h = hashlib.sha256(system.name.encode())
    p = Path(src.split(":")[0]) if src else None
    if p is not None and not p.is_dir():
        from acula.sdk.model import available_models

        if str(p) in available_models():  # a packaged bundle: fingerprint its files
            from acula.sdk.model import _resolve

            p = _resolve(str(p))
    if p is not None and p.is_dir():
        for f in sorted(p.glob("*")):
            if f.suffix in (".safetensors", ".onnx", ".tflite", ".json", ".npy") and f.is_file():
                h.update(f.name.encode() + str(f.stat().st_size).encode() + str(int(f.stat().st_mtime)).encode())
    h.update(src.encode())
    return h.hexdigest()[:16]
