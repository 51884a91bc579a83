"""Audio encoders (architecture only), found by name in ``ENCODERS``.

Each maps a log-mel batch of shape (batch, n_frames, n_mels) to a feature map (batch, channels, freq, time)
and says its channel count: the :class:`AudioEncoder` contract.  An encoder that masks its own input and
reconstructs it (the ViT, trained as an MAE) also meets :class:`MaskedAutoencoder`; the others get the
model's 1x1 patch decoder.

A new encoder is one module here with a ``build(cfg, weights)`` function and one line in ``ENCODERS``.
The registry holds "module:function" strings, imported on use, so reading it (``aligner.config`` checks
names against it) imports no torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

#: encoder name -> "module:function" that builds it from (AlignConfig, weights file or None)
ENCODERS: dict[str, str] = {
    "mn04": "acula.aligner.encoders.mobilenet:build",  # EfficientAT mn04; weights: the AudioSet checkpoint
    "tiny": "acula.aligner.encoders.tiny_cnn:build",  # seconds on a laptop, for tests; no weights
    "vit": "acula.aligner.encoders.vit_mae:build",  # OPERA-GT-layout ViT-S MAE; weights: an OPERA-GT checkpoint
}


class AudioEncoder(Protocol):
    """Log-mel (batch, n_frames, n_mels) -> feature map (batch, out_channels, freq, time)."""

    out_channels: int

    def __call__(self, logmel: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class MaskedAutoencoder(Protocol):
    """An encoder that draws its own patch mask and reconstructs the hidden patches (MAE)."""

    def random_mask(self, batch: int, mask_ratio: float, generator: torch.Generator | None = None
                    ) -> torch.Tensor: ...

    def reconstruct(self, logmel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


def build_encoder(cfg: Any, weights_dir: str | Path | None = None) -> AudioEncoder:
    """The encoder ``cfg.encoder`` names; ``cfg.encoder_weights`` (relative to ``weights_dir`` unless absolute,
    None: random initialisation) is handed to its builder."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {cfg.encoder!r}")
    weights = None if cfg.encoder_weights is None else Path(cfg.encoder_weights)
    if weights is not None and not weights.is_absolute() and weights_dir is not None:
        weights = Path(weights_dir) / weights
    module, _, function = ENCODERS[cfg.encoder].partition(":")
    encoder: AudioEncoder = getattr(importlib.import_module(module), function)(cfg, weights)
    return encoder
