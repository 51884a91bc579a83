"""Cached log-mel features for a corpus, and seeded batch sampling for training."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from acula.aligner.corpus import Corpus
from acula.sdk.audio import load_audio
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.frontend_config import FrontendConfig
from tqdm import tqdm


def record_features(corpus: Corpus, i: int, frontend: LogMelFrontend) -> np.ndarray:
    """float32 log-mel of one corpus record, loaded as the SDK loads audio (a record shorter than one frame is
    padded with silence to one frame)."""
    cfg = frontend.config
    r = corpus.records[i]
    samples = load_audio(corpus.audio_path(i), cfg.sample_rate_hz, r.start_s, r.end_s).samples
    if samples.size < cfg.n_fft:
        samples = np.pad(samples, (0, cfg.n_fft - samples.size))
    return frontend(samples)


class FeatureBank:
    """Log-mel of every corpus record, float16, concatenated; ``get(i)`` -> (n_frames, n_mels) float32.

    Cached next to the corpus as ``features_<hash of the front-end config>.npy``.
    """

    def __init__(self, frames: np.ndarray, offsets: np.ndarray) -> None:
        self.frames, self.offsets = frames, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i] : self.offsets[i + 1]].astype(np.float32)

    @classmethod
    def for_corpus(cls, corpus: Corpus, cfg: FrontendConfig | None = None, progress: bool = True) -> FeatureBank:
        cfg = cfg or FrontendConfig()
        key = hashlib.sha256(cfg.to_json().encode()).hexdigest()[:12]
        path, off_path = corpus.root / f"features_{key}.npy", corpus.root / f"features_{key}_offsets.npy"
        if path.is_file() and off_path.is_file():
            offsets = np.load(off_path)
            if len(offsets) == len(corpus.records) + 1:
                return cls(np.load(path, mmap_mode="r"), offsets)
        frontend = LogMelFrontend(cfg)
        chunks, offsets = [], [0]
        for i in tqdm(range(len(corpus.records)), desc="log-mel features", unit="file", disable=not progress):
            feats = record_features(corpus, i, frontend).astype(np.float16)
            chunks.append(feats)
            offsets.append(offsets[-1] + feats.shape[0])
        frames = np.concatenate(chunks)
        np.save(path, frames)
        np.save(off_path, np.asarray(offsets, dtype=np.int64))
        return cls(frames, np.asarray(offsets, dtype=np.int64))


def crop_start(total: int, n_frames: int, rng: np.random.Generator | None) -> int | None:
    """The first frame of :func:`crop_or_tile`'s crop of a clip of ``total`` frames (one draw from ``rng``), or None
    when the clip is shorter than ``n_frames`` and is tiled (no draw)."""
    if total < n_frames:
        return None
    return (total - n_frames) // 2 if rng is None else int(rng.integers(0, total - n_frames + 1))


def crop_or_tile(feats: np.ndarray, n_frames: int, rng: np.random.Generator | None) -> np.ndarray:
    """A window of exactly ``n_frames``: a random (or centred, rng=None) crop, or the clip tiled."""
    start = crop_start(feats.shape[0], n_frames, rng)
    if start is not None:
        return feats[start : start + n_frames]
    reps = int(np.ceil(n_frames / max(feats.shape[0], 1)))
    return np.tile(feats, (reps, 1))[:n_frames]


def windows(feats: np.ndarray, n_frames: int, hop_frames: int) -> np.ndarray:
    """All windows of a clip, shape (n_windows, n_frames, n_mels); a short clip gives one tiled window."""
    if feats.shape[0] <= n_frames:
        return crop_or_tile(feats, n_frames, None)[None]
    starts = range(0, feats.shape[0] - n_frames + 1, hop_frames)
    return np.stack([feats[s : s + n_frames] for s in starts])


def dataset_balanced_weights(datasets: list[str], power: float = 0.5) -> np.ndarray:
    """Sampling weights ~ size^-power per data set, so small sets (coughs) are not drowned out."""
    names, counts = np.unique(datasets, return_counts=True)
    size = dict(zip(names, counts, strict=True))
    w = np.array([size[d] ** -power for d in datasets], dtype=np.float64)
    return w / w.sum()


def sample_batch(bank: FeatureBank, indices: list[int], weights: np.ndarray, batch_size: int, n_frames: int,
                 rng: np.random.Generator, with_starts: bool = False) -> Any:
    """(chosen corpus indices, crops of shape (batch, n_frames, n_mels)); ``with_starts``: and each crop's first
    frame in its record (0 for a tiled short record), the same draws either way."""
    chosen = rng.choice(indices, size=batch_size, replace=len(indices) < batch_size, p=weights)
    crops, starts = [], []
    for i in chosen:
        feats = bank.get(int(i))
        start = crop_start(feats.shape[0], n_frames, rng)
        crops.append(crop_or_tile(feats, n_frames, None) if start is None else feats[start : start + n_frames])
        starts.append(0 if start is None else start)
    return (chosen, np.stack(crops), np.asarray(starts, np.int64)) if with_starts else (chosen, np.stack(crops))
