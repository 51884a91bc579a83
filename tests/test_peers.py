"""Peer baselines: MFCC statistics and the YAMNet runner (sdk.yamnet, re-exported by aligner.peers)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from acula.aligner.peers import YAMNET_HOP, YAMNET_PATCH, MFCCStats, YAMNet, dct_matrix

WEIGHTS = Path(os.environ.get("ACULA_WEIGHTS", Path(__file__).resolve().parents[1].parent / "shared" / "weights"))


def test_the_dct_is_orthonormal():
    m = dct_matrix(64, 64)
    np.testing.assert_allclose(m.T @ m, np.eye(64), atol=1e-10)


def test_mfcc_stats_are_eighty_finite_values_even_for_a_tiny_clip():
    mfcc = MFCCStats()
    rng = np.random.default_rng(0)
    for n in (100, 16000):
        v = mfcc((rng.standard_normal(n) * 0.1).astype(np.float32))
        assert v.shape == (80,) and v.dtype == np.float32 and np.all(np.isfinite(v))
    loud, quiet = (mfcc(np.sin(np.arange(16000) / 5.0).astype(np.float32) * a) for a in (0.5, 0.005))
    assert loud[0] > quiet[0]  # the first coefficient follows level


def runner(max_patches: int | None) -> YAMNet:
    yam = object.__new__(YAMNet)  # the patching needs no interpreter
    yam.max_patches = max_patches
    return yam


def test_patches_cover_the_clip_by_the_hop_and_pad_a_short_one():
    x = np.arange(YAMNET_PATCH + 3 * YAMNET_HOP, dtype=np.float32)
    p = runner(None).patches(x)
    assert p.shape == (4, YAMNET_PATCH) and p[1, 0] == YAMNET_HOP and p.dtype == np.float32
    short = runner(None).patches(np.ones(100, np.float32))
    assert short.shape == (1, YAMNET_PATCH) and short[0, 99] == 1 and short[0, 100] == 0
    spread = runner(2).patches(x)
    assert spread.shape == (2, YAMNET_PATCH) and spread[0, 0] == 0 and spread[1, 0] == 3 * YAMNET_HOP


def test_a_file_that_is_not_yamnet_is_refused(tmp_path: Path):
    bad = tmp_path / "yamnet.tflite"
    bad.write_bytes(b"not yamnet")
    with pytest.raises(ValueError, match="sha256 does not match"):
        YAMNet(bad)


@pytest.mark.skipif(not (WEIGHTS / "yamnet.tflite").is_file(), reason="needs ../shared/weights/yamnet.tflite")
def test_yamnet_gives_an_embedding_and_class_scores():
    pytest.importorskip("ai_edge_litert")
    yam = YAMNet(WEIGHTS / "yamnet.tflite", max_patches=3)
    emb, scores = yam.run(np.zeros(16000 * 2, np.float32))
    assert emb.shape == (1024,) and scores.shape == (521,) and np.all((scores >= 0) & (scores <= 1))
    fast = YAMNet(WEIGHTS / "yamnet.tflite", embedding=False)
    with pytest.raises(ValueError, match="embedding=True"):
        fast.run(np.zeros(16000, np.float32))
