"""A tiny CNN for fast tests: four conv-BN-ReLU stages, 16x downsampling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Log-mel (batch, n_frames, n_mels) -> feature map (batch, width * 4, n_mels / 16, n_frames / 16)."""

    def __init__(self, width: int = 16, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "group"):
            raise ValueError(f"norm must be 'batch' or 'group' (batch-independent, for exact DDP tests), got {norm!r}")
        chans = [1, width, width * 2, width * 4, width * 4]

        def make_norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(4, c)

        self.features = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1, bias=False), make_norm(chans[i + 1]), nn.ReLU())
            for i in range(4)
        ])
        self.out_channels = chans[-1]

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.features(logmel.transpose(1, 2).unsqueeze(1))


def build(cfg: Any, weights: Path | None) -> TinyCNN:
    """The registry's builder (``aligner.encoders.ENCODERS``); the tiny CNN has no pretrained weights."""
    return TinyCNN(norm=cfg.tiny_norm)
