"""Shared fixtures: the real data directory (skipped when absent) and tiny generated audio."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # precision="auto" caches its per-device choice; the suite (and the CLIs it starts) keep theirs out of $HOME
    os.environ.setdefault("ACULA_CACHE_DIR", tempfile.mkdtemp(prefix="acula-test-cache-"))


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


# The tiny pipeline, each step built once a session and shared (read only) by the tests that need it.
@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pipeline import build_tiny_corpus

    return build_tiny_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_teacher(tiny_corpus: Path) -> Path:
    """An ``acula align --config tiny-test`` run on :func:`tiny_corpus`."""
    from tests.pipeline import align_tiny

    return align_tiny(tiny_corpus, tiny_corpus.parent / "align")


@pytest.fixture(scope="session")
def tiny_student(tiny_teacher: Path, tiny_corpus: Path) -> Path:
    from tests.pipeline import distill_tiny

    return distill_tiny(tiny_teacher, tiny_corpus, tiny_corpus.parent / "distill")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_student: Path, tiny_corpus: Path) -> Path:
    """The bundle with all four student files (ONNX and TFLite, fp32 and int8)."""
    from tests.pipeline import export_tiny

    return export_tiny(tiny_student, tiny_corpus, tiny_corpus.parent / "bundle")
