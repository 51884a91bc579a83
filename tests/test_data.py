"""Cached log-mel features and seeded batch sampling."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("soundfile")

from acula.aligner.data import (  # noqa: E402
    FeatureBank,
    crop_or_tile,
    dataset_balanced_weights,
    record_features,
    sample_batch,
    windows,
)
from acula.sdk.frontend import LogMelFrontend  # noqa: E402


def feats(n: int) -> np.ndarray:
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2)


def test_a_long_clip_is_cropped_and_a_short_one_tiled():
    assert crop_or_tile(feats(10), 4, None).tolist() == feats(10)[3:7].tolist()  # centred
    crop = crop_or_tile(feats(10), 4, np.random.default_rng(0))
    assert crop.shape == (4, 2) and any(np.array_equal(crop, feats(10)[s : s + 4]) for s in range(7))
    tiled = crop_or_tile(feats(3), 7, None)
    assert tiled[:, 0].tolist() == [0, 2, 4, 0, 2, 4, 0]


def test_windows_step_by_the_hop_and_a_short_clip_gives_one():
    w = windows(feats(10), 4, 3)
    assert w.shape == (3, 4, 2) and w[1, 0, 0] == feats(10)[3, 0]
    assert windows(feats(2), 4, 3).shape == (1, 4, 2)


def test_small_data_sets_are_weighted_up():
    w = dataset_balanced_weights(["big"] * 9 + ["small"])
    assert np.isclose(w.sum(), 1.0)
    assert w[-1] == pytest.approx(3 * w[0])  # (1/9)^-0.5 = 3 times the per-record weight
    assert np.isclose(w[:9].sum() / w[-1], 3.0)


def test_sampling_is_seeded_and_crops_to_the_window():
    bank = FeatureBank(np.concatenate([feats(10), feats(3)]).astype(np.float16), np.array([0, 10, 13]))
    assert len(bank) == 2 and bank.get(1).dtype == np.float32 and bank.get(1).shape == (3, 2)
    a = sample_batch(bank, [0, 1], np.array([0.5, 0.5]), 6, 4, np.random.default_rng(1))
    b = sample_batch(bank, [0, 1], np.array([0.5, 0.5]), 6, 4, np.random.default_rng(1))
    assert a[1].shape == (6, 4, 2) and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def tiny_corpus(root: Path) -> SimpleNamespace:
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for k, n in enumerate((16000, 300)):  # one second, and a clip shorter than one frame
        paths.append(root / f"r{k}.wav")
        sf.write(paths[-1], (rng.standard_normal(n) * 0.1).astype(np.float32), 16000)
    records = [SimpleNamespace(start_s=None, end_s=None) for _ in paths]
    return SimpleNamespace(root=root, records=records, audio_path=lambda i: paths[i])


def test_the_feature_bank_is_computed_once_and_then_read_from_its_cache(tmp_path: Path):
    corpus = tiny_corpus(tmp_path)
    bank = FeatureBank.for_corpus(corpus, progress=False)  # type: ignore[arg-type]
    assert len(bank) == 2 and bank.get(1).shape == (1, 64)  # the short clip padded to one frame
    expected = record_features(corpus, 0, LogMelFrontend())  # type: ignore[arg-type]
    np.testing.assert_allclose(bank.get(0), expected, atol=2e-2)  # stored as float16
    cached = list(tmp_path.glob("features_*.npy"))
    assert len(cached) == 2
    again = FeatureBank.for_corpus(corpus, progress=False)  # type: ignore[arg-type]
    assert isinstance(again.frames, np.memmap) and np.array_equal(again.get(0), bank.get(0))
