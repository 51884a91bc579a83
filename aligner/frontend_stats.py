"""Measure the log-mel statistics that FrontendConfig's fixed normalisation uses.

    python -m acula.aligner.frontend_stats --data ../shared/data

Averages the dB values (before normalisation) over every frame of a seeded sample
of recordings, each data set weighted equally, and prints norm_mean_db and
norm_std_db.  The defaults in sdk/frontend_config.py came from this command.
The data sets and their files are those of the corpus adapters
(``aligner.corpora.ADAPTERS``) whose folders exist under ``--data``.
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from acula.aligner.corpora import ADAPTERS
from acula.sdk.audio import AudioError, load_audio
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.frontend_config import FrontendConfig


def recordings(data_root: Path) -> dict[str, list[Path]]:
    """{data set: its audio files, sorted} for every registered data set present under ``data_root``."""
    return {name: sorted({data_root / r.path for r in adapter(data_root / name)})
            for name, adapter in ADAPTERS.items() if (data_root / name).is_dir()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("ACULA_DATA", "../shared/data"))
    parser.add_argument("--per-set", type=int, default=150, help="recordings sampled per data set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    raw = FrontendConfig(norm_mean_db=0.0, norm_std_db=1.0)  # identity normalisation -> dB
    frontend = LogMelFrontend(raw)
    means, second = [], []
    for name, files in recordings(Path(args.data)).items():
        random.Random(args.seed).shuffle(files)
        frames = []
        for path in files[: args.per_set]:
            try:
                clip = load_audio(path)
            except AudioError:
                continue
            if not clip.quality.silent:
                frames.append(frontend(clip.samples))
        db = np.concatenate(frames).astype(np.float64)
        means.append(db.mean())
        second.append((db**2).mean())
        print(f"{name:14s} {db.shape[0]:7d} frames  mean {db.mean():7.2f} dB  std {db.std():6.2f} dB")
    mean = float(np.mean(means))
    std = float(np.sqrt(np.mean(second) - mean**2))
    print(f"norm_mean_db = {mean:.1f}\nnorm_std_db = {std:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
