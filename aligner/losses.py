"""AcuLa's losses: linear CKA, symmetric InfoNCE, masked reconstruction.

Under ``torch.distributed`` the batch losses (CKA, InfoNCE) see the global batch:
features are gathered from every rank with gradients
(``torch.distributed.nn.functional.all_gather``), so a 2-process run computes
the same loss as one process on the concatenated batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over ranks in rank order; gradients flow back to each rank's part."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), 0)


def linear_cka(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Linear CKA between (n, d1) and (n, d2) batches: ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)."""
    xc = x - x.mean(0, keepdim=True)
    yc = y - y.mean(0, keepdim=True)
    cross = (yc.T @ xc).square().sum()
    return cross / ((xc.T @ xc).square().sum().sqrt() * (yc.T @ yc).square().sum().sqrt() + eps)


def cka_loss(audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    return 1.0 - linear_cka(gather_with_grad(audio), gather_with_grad(text))


def info_nce(audio: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch with a learnable temperature (CLAP).

    Records that share a report have identical text embeddings, so each one's
    duplicates already score as high as its own pair: no special target is needed.
    """
    a = F.normalize(gather_with_grad(audio), dim=-1)
    t = F.normalize(gather_with_grad(text), dim=-1)
    logits = logit_scale.exp().clamp(max=100.0) * a @ t.T
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked elements only; mask is 1 where hidden, broadcastable to pred."""
    mask = mask.expand_as(pred).to(pred.dtype)
    return ((pred - target).square() * mask).sum() / mask.sum().clamp_min(1.0)
