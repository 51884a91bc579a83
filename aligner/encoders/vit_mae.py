"""OPERA-GT-compatible ViT-S masked autoencoder (architecture only).

Input: a log-mel of 256 frames x 64 mels cut into 4x4 patches (64 x 16 = 1024
patches), width 384, 12 blocks, 6 heads, plus an MAE decoder.  Parameter names
follow the timm layout OPERA-GT uses (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv``, ``blocks.{i}.attn.proj``,
``blocks.{i}.norm2``, ``blocks.{i}.mlp.fc1``, ``blocks.{i}.mlp.fc2``, ``norm``,
``decoder_*``), so an OPERA checkpoint's state dict loads into it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViTMAE(nn.Module):
    """Log-mel (batch, 256, 64) -> encoder tokens; ``forward`` returns a feature map
    (batch, width, n_mels / patch, n_frames / patch) for the shared pooling heads."""

    def __init__(self, n_frames: int = 256, n_mels: int = 64, patch: int = 4, width: int = 384, depth: int = 12,
                 n_heads: int = 6, decoder_width: int = 512, decoder_depth: int = 8, decoder_heads: int = 16) -> None:
        super().__init__()
        self.patch, self.grid = patch, (n_frames // patch, n_mels // patch)
        n_patches = self.grid[0] * self.grid[1]
        self.patch_embed = PatchEmbed(patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, width), requires_grad=False)
        self.blocks = nn.ModuleList([Block(width, n_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.decoder_embed = nn.Linear(width, decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, decoder_width), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_width, decoder_heads) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_width, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_width, patch * patch)
        self.out_channels = width
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.decoder_pos_embed, std=0.02)

    def patchify(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, n_mels) -> (batch, n_patches, patch * patch) in patch_embed's order."""
        b, p = logmel.shape[0], self.patch
        x = logmel.reshape(b, self.grid[0], p, self.grid[1], p)
        return x.permute(0, 1, 3, 2, 4).reshape(b, self.grid[0] * self.grid[1], p * p)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(batch, n_patches, patch * patch) -> (batch, n_frames, n_mels): the inverse of ``patchify``."""
        b, p = patches.shape[0], self.patch
        x = patches.reshape(b, self.grid[0], self.grid[1], p, p).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.grid[0] * p, self.grid[1] * p)

    def random_mask(self, batch: int, mask_ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, n_frames, n_mels) with 1 on hidden patches.  As in MAE, every row hides the same number of
        patches (all but ``int(n * (1 - mask_ratio))``), the ones with the highest noise."""
        n = self.grid[0] * self.grid[1]
        rank = torch.rand(batch, n, generator=generator).argsort(1).argsort(1)
        hidden = (rank >= int(n * (1 - mask_ratio))).float()
        return self.unpatchify(hidden.unsqueeze(-1).expand(-1, -1, self.patch * self.patch))

    def encode(self, logmel: torch.Tensor, mask_ratio: float = 0.0, mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Tokens (cls first) of the visible patches.  Hidden patches come from ``mask`` (as ``random_mask``
        draws it; every row must hide the same number) or, failing that, are drawn at ``mask_ratio``."""
        x = self.patch_embed(logmel.unsqueeze(1)) + self.pos_embed[:, 1:]
        ids_restore = keep = None
        if mask is None and mask_ratio > 0:
            mask = self.random_mask(x.shape[0], mask_ratio).to(x.device)
        if mask is not None:
            b, n, d = x.shape
            hidden = self.patchify(mask)[..., 0] > 0.5
            n_keep = int((~hidden[0]).sum())
            if bool((hidden.sum(1) != n - n_keep).any()):
                raise ValueError("every row of an MAE mask must hide the same number of patches")
            ids_shuffle = hidden.to(torch.uint8).argsort(dim=1, stable=True)  # visible patches first, in order
            ids_restore = ids_shuffle.argsort(1)
            keep = ids_shuffle[:, :n_keep]
            x = torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, d))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), ids_restore, keep

    def decode(self, tokens: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(tokens)
        b, n = ids_restore.shape
        masks = self.mask_token.expand(b, n + 1 - x.shape[1], -1)
        body = torch.cat([x[:, 1:], masks], 1)
        body = torch.gather(body, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], body], 1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def reconstruct(self, logmel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE: encode the visible patches only, decode every patch; a log-mel of ``logmel``'s shape."""
        tokens, ids_restore, _ = self.encode(logmel, mask=mask)
        assert ids_restore is not None
        return self.unpatchify(self.decode(tokens, ids_restore))

    def fit_length(self, logmel: torch.Tensor) -> torch.Tensor:
        """The ViT's positional embedding fixes its input length: a shorter log-mel (a student's 62-frame
        window under distillation) is tiled to it, as the evaluation tiles a short clip; a longer one is
        refused (window it first)."""
        n, t = self.grid[0] * self.patch, logmel.shape[1]
        if t > n:
            raise ValueError(f"the ViT takes at most {n} frames, got {t}: cut the input into windows")
        return logmel if t == n else logmel.repeat(1, -(-n // t), 1)[:, :n]

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        logmel = self.fit_length(logmel)
        tokens, _, _ = self.encode(logmel)
        b, d = tokens.shape[0], tokens.shape[2]
        return tokens[:, 1:].transpose(1, 2).reshape(b, d, self.grid[0], self.grid[1]).transpose(2, 3)


def load_vit(path: str | Path, n_frames: int = 256) -> ViTMAE:
    """A ViTMAE initialised from a checkpoint in the OPERA-GT / timm layout (an OPERA release, a Lightning
    ``.ckpt`` with ``state_dict``, a ``{"model": ...}`` file, or a bare state dict; ``.safetensors`` too).

    Keys may carry a prefix (``model.``, ``encoder.``...): the prefix in front of ``patch_embed.proj.weight`` is
    stripped and keys without it are ignored.  Every encoder tensor must be present with our shape (a
    different input size or width is refused by name); the MAE decoder is loaded when the file has one and
    otherwise keeps its fresh initialisation.  Prints the file's sha256 and what was left out."""
    from acula.sdk.bundle import sha256_of

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ViT checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw: object = load_file(str(path))
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a state dict")
    anchor = "patch_embed.proj.weight"
    prefixes = sorted((k[: -len(anchor)] for k in raw if isinstance(k, str) and k.endswith(anchor)), key=len)
    if not prefixes:
        raise ValueError(f"{path}: no '{anchor}' key, so not a ViT in the OPERA-GT / timm layout")
    prefix = prefixes[0]
    state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
    model = ViTMAE(n_frames=n_frames)
    own = model.state_dict()
    decoder = {k for k in own if k.startswith("decoder_") or k == "mask_token"}
    missing = sorted(k for k in own if k not in state and k not in decoder)
    if missing:
        raise ValueError(f"{path}: encoder tensors missing: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{path}: shapes differ from this ViT ({n_frames} frames x 64 mels, 4x4 patches, width "
                         f"384): {wrong[:3]}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    fresh = sorted(decoder - set(state))
    ignored = sorted(set(state) - set(own))
    print(f"ViT initialised from {path} (sha256 {sha256_of(path)}, prefix {prefix!r}); "
          f"decoder {'kept fresh' if fresh else 'loaded'}; {len(ignored)} other tensors ignored"
          + (f" ({', '.join(ignored[:3])}{' ...' if len(ignored) > 3 else ''})" if ignored else ""), file=sys.stderr)
    return model


def build(cfg: Any, weights: Path | None) -> ViTMAE:
    """The registry's builder (``aligner.encoders.ENCODERS``): ``cfg.crop_frames`` long, from an OPERA-GT-layout
    checkpoint when given."""
    return ViTMAE(n_frames=cfg.crop_frames) if weights is None else load_vit(weights, n_frames=cfg.crop_frames)
