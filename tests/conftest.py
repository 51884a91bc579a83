"""Shared fixtures: the real data directory (skipped when absent) and tiny generated audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    path = Path(os.environ.get("ACULA_DATA", ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None


def shared_weights_dir() -> Path | None:
    path = Path(os.environ.get("ACULA_WEIGHTS", ROOT.parent / "shared" / "weights"))
    return path if path.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data (or $ACULA_DATA) is absent")
    return path


@pytest.fixture
def noise_16k() -> np.ndarray:
    """3 s of coloured noise plus tones at 16 kHz, float32, shape (48000,)."""
    rng = np.random.default_rng(1234)
    t = np.arange(48000) / 16000
    x = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t)
    return x.astype(np.float32)
