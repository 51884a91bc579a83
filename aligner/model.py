"""The AcuLa model: audio encoder, frequency-preserving pooling, projection heads,
masked-patch decoder, learnable temperature.  Architecture only."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from acula.aligner.config import AlignConfig
from acula.aligner.encoders import AudioEncoder, MaskedAutoencoder, build_encoder
from acula.aligner.frontend_torch import level_normalise
from acula.sdk.frontend_config import FrontendConfig
from torch import nn

__all__ = ["AcuLaModel", "build_encoder"]


class AcuLaModel(nn.Module):
    def __init__(self, cfg: AlignConfig, text_dim: int, n_mels: int = 64,
                 weights_dir: str | Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm_std_db = FrontendConfig().norm_std_db  # level_normalised's dB -> feature scale
        self.encoder: AudioEncoder = build_encoder(cfg, weights_dir)
        channels = int(self.encoder.out_channels)
        pooled_dim = channels * cfg.n_freq_bins if cfg.pooling == "freq" else channels
        self.pooled_dim = pooled_dim
        self.audio_proj = nn.Sequential(nn.LayerNorm(pooled_dim), nn.Linear(pooled_dim, cfg.embed_dim))
        self.text_proj = nn.Linear(text_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        # Supervised heads (the control, or an extra loss): one logit per aligner.supervised head
        self.sup_head: nn.Module | None = None
        if cfg.w_sup > 0:
            from acula.aligner.supervised import SUPERVISED_HEADS

            self.sup_head = nn.Sequential(nn.LayerNorm(pooled_dim), nn.Linear(pooled_dim, len(SUPERVISED_HEADS)))
        # Masked-patch decoder for CNN encoders: each feature-map cell predicts its input patch.
        self.n_mels = n_mels
        self.decoder: nn.Module | None = None
        if not isinstance(self.encoder, MaskedAutoencoder):  # it reconstructs itself
            with torch.no_grad():
                fmap = self.encoder(torch.zeros(1, cfg.crop_frames, n_mels)).shape
            self.grid = (int(fmap[2]), int(fmap[3]))
            self.cell = (n_mels // self.grid[0], cfg.crop_frames // self.grid[1])
            self.decoder = nn.Conv2d(channels, self.cell[0] * self.cell[1], 1)

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        """Feature map (batch, channels, freq, time) -> (batch, pooled_dim)."""
        if self.cfg.pooling == "gap":
            return fmap.mean((2, 3))
        per_freq = F.adaptive_avg_pool2d(fmap, (self.cfg.n_freq_bins, 1))
        return per_freq.flatten(1)

    def level_normalised(self, logmel: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``logmel`` itself, or with cfg.level_norm_db its level taken out (idempotent)."""
        return level_normalise(logmel, self.cfg.level_norm_db, self.norm_std_db)

    def pooled(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encoder(self.level_normalised(logmel)))

    def embed_audio(self, logmel: torch.Tensor) -> torch.Tensor:
        """Joint-space audio embedding, (batch, embed_dim), not normalised."""
        return self.audio_proj(self.pooled(logmel))

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_proj(text)

    def patch_mask(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, n_frames, n_mels) with 1 on hidden cells of the encoder's output grid (the ViT: on hidden
        patches, the same number in every row, as MAE draws them)."""
        if isinstance(self.encoder, MaskedAutoencoder):
            return self.encoder.random_mask(batch, self.cfg.mask_ratio, generator)
        grid = torch.rand(batch, 1, self.grid[1], self.grid[0], generator=generator) < self.cfg.mask_ratio
        return F.interpolate(grid.float(), scale_factor=(self.cell[1], self.cell[0]), mode="nearest")[:, 0]

    def masked_forward(self, feats: torch.Tensor, mask: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The feature map the alignment terms pool and, given a ``patch_mask``, the reconstruction the masked
        term scores on the hidden cells.  A CNN sees the masked input once and its 1x1 decoder predicts each
        hidden cell from the feature map.  The ViT is trained as an MAE: its encoder sees the visible patches
        only and its decoder fills in the rest, so the alignment terms get a second pass over the whole input."""
        if mask is None:
            return self.encoder(feats), None
        if isinstance(self.encoder, MaskedAutoencoder):
            return self.encoder(feats), self.encoder.reconstruct(feats, mask)
        fmap = self.encoder(feats * (1 - mask))
        return fmap, self.reconstruct(fmap)

    def reconstruct(self, fmap: torch.Tensor) -> torch.Tensor:
        """Decoder output folded back into a log-mel of shape (batch, n_frames, n_mels)."""
        assert self.decoder is not None
        b = fmap.shape[0]
        patches = self.decoder(fmap)  # (b, cell_f * cell_t, grid_f, grid_t)
        patches = patches.reshape(b, self.cell[0], self.cell[1], self.grid[0], self.grid[1])
        return patches.permute(0, 4, 2, 3, 1).reshape(b, self.grid[1] * self.cell[1], self.grid[0] * self.cell[0])
