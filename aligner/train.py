"""``acula align``: post-train an audio encoder to align with a frozen text teacher (AcuLa).

    acula align --config default-cpu --corpus runs/corpus --out runs/align
    torchrun --nproc-per-node 2 -m acula.aligner.train --config default-cpu --corpus ... --out ...

Loss = w_cka (1 - linear CKA) + w_nce InfoNCE + w_mask masked-patch MSE.  Under
torchrun every rank draws the same seeded global batch and trains on its own
contiguous slice; CKA and InfoNCE see the gathered global batch.  Checkpoints
(safetensors + JSON) are written every ``ckpt_every`` steps and a rerun resumes
from the last one.  Metrics go to ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from acula.aligner.augment import augment_logmel, background_crops, background_pool
from acula.aligner.checkpoint import resume_from, run_config, save_checkpoint
from acula.aligner.config import AlignConfig, resolve_config
from acula.aligner.corpus import Corpus, load_corpus
from acula.aligner.data import FeatureBank, dataset_balanced_weights, sample_batch
from acula.aligner.losses import cka_loss, info_nce
from acula.aligner.model import AcuLaModel
from acula.sdk.frontend_config import FrontendConfig


def default_weights_dir() -> str:
    return os.environ.get("ACULA_WEIGHTS", "../shared/weights")


def lr_factor(step: int, cfg: AlignConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def global_value(name: str, value: torch.Tensor) -> float:
    """The loss term's value over the global batch.  CKA and InfoNCE are already
    global (identical on every rank); the masked term is a local share, so sum."""
    v = value.detach().clone()
    if dist.is_initialized():
        world = dist.get_world_size()
        if name == "mask":
            v /= world  # undo the gradient scaling of loss_terms
        dist.all_reduce(v)
        if name != "mask":
            v /= world
    return float(v)


def loss_terms(model: AcuLaModel, feats: torch.Tensor, text: torch.Tensor,
               mask: torch.Tensor | None, sup: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
    """Every loss term for one (local slice of a) batch; CKA/InfoNCE gather across ranks.  ``sup``: (labels,
    mask) of the supervised heads, each (batch, n_heads)."""
    cfg = model.cfg
    feats = model.level_normalised(feats)  # the masked term reconstructs what the encoder sees
    fmap, recon = model.masked_forward(feats, mask)
    pooled = model.pool(fmap)
    audio = model.audio_proj(pooled)
    text_z = model.text_proj(text)
    terms: dict[str, torch.Tensor] = {}
    if cfg.w_sup and sup is not None and model.sup_head is not None:
        labels, known = sup
        bce = F.binary_cross_entropy_with_logits(model.sup_head(pooled), labels, reduction="none")
        # each head averaged over the records that answer it, then the heads averaged: a rare head is not drowned
        per_head = (bce * known).sum(0) / known.sum(0).clamp_min(1.0)
        terms["sup"] = per_head[known.sum(0) > 0].mean() if bool((known.sum(0) > 0).any()) else bce.sum() * 0
    if cfg.w_cka:
        terms["cka"] = cka_loss(audio, text_z)
    if cfg.w_nce:
        terms["nce"] = info_nce(audio, text_z, model.logit_scale)
    if cfg.w_mask and recon is not None and mask is not None:
        count = mask.sum().detach().clone()
        if dist.is_initialized():
            dist.all_reduce(count)
            world = dist.get_world_size()
        else:
            world = 1
        # local share of the global mean; times world so DDP's gradient averaging gives the global gradient
        terms["mask"] = ((recon - feats).square() * mask).sum() / count.clamp_min(1.0) * world
    return terms


def total_loss(cfg: AlignConfig, terms: dict[str, torch.Tensor]) -> torch.Tensor:
    weights = {"cka": cfg.w_cka, "nce": cfg.w_nce, "mask": cfg.w_mask, "sup": cfg.w_sup}
    return sum((weights[k] * v for k, v in terms.items()), torch.zeros(()))


def make_batch(step: int, cfg: AlignConfig, bank: FeatureBank, corpus: Corpus, train_idx: list[int],
               weights: np.ndarray, front: FrontendConfig, model: AcuLaModel, bg_pool: list[int]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """The global batch of one step, identical on every rank (seeded by step); ``bg_pool``: the corpus
    indices background crops come from (``aligner.augment.background_pool``)."""
    rng = np.random.default_rng([cfg.seed, step])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    chosen, crops = sample_batch(bank, train_idx, weights, cfg.batch_size, cfg.crop_frames, rng)
    background = background_crops(cfg, bank, bg_pool, cfg.batch_size, cfg.crop_frames, cfg.seed, step)
    feats = augment_logmel(torch.from_numpy(crops), front, gen, **cfg.augment_options(), background=background)
    text = torch.from_numpy(corpus.embeddings[chosen])
    mask = model.patch_mask(cfg.batch_size, gen) if cfg.w_mask else None
    sup = None
    if cfg.w_sup:
        from acula.aligner.supervised import head_labels

        labels, known = head_labels([corpus.rows[int(i)] for i in chosen])
        sup = (torch.from_numpy(labels), torch.from_numpy(known))
    return feats, text, mask, sup


def train(cfg: AlignConfig, corpus_dir: Path, out: Path, weights_dir: str | None = None, device: str = "cpu",
          progress: bool = True, resume: bool = True) -> dict[str, Any]:
    rank, world = distributed()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over {world} processes")
    torch.manual_seed(cfg.seed)
    corpus = load_corpus(corpus_dir)
    front = FrontendConfig.from_dict(corpus.info.get("frontend", FrontendConfig().to_dict()))
    bank = FeatureBank.for_corpus(corpus, front, progress=progress and rank == 0)
    train_idx = corpus.indices("train")
    weights = dataset_balanced_weights([corpus.rows[i]["dataset"] for i in train_idx])
    bg_pool = background_pool(corpus) if cfg.p_background > 0 else []
    model = AcuLaModel(cfg, corpus.embeddings.shape[1], front.n_mels, weights_dir or default_weights_dir()).to(device)
    model.train()
    enc_params = list(model.encoder.parameters())
    enc_ids = {id(p) for p in enc_params}
    head_params = [p for p in model.parameters() if id(p) not in enc_ids and p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in enc_params if p.requires_grad], "lr": cfg.encoder_lr},
                                   {"params": head_params, "lr": cfg.lr}], weight_decay=cfg.weight_decay)
    base_lrs = [cfg.encoder_lr, cfg.lr]
    found = resume_from(out, "align_config", cfg, model, optimizer) if resume else None
    start, resumed = found or (0, {})  # resumed: a resumed run's last metrics (returned if no step is left)
    if found and progress and rank == 0:
        print(f"resuming {out} at step {start} of {cfg.max_steps}", file=sys.stderr)
    ddp_model: torch.nn.Module = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    meta_base = {"align_config": cfg.to_dict(), "frontend": front.to_dict(), "text_dim": corpus.embeddings.shape[1],
                 "teacher_id": corpus.info.get("teacher_id"), "corpus": str(corpus_dir)}
    log = open(out / "metrics.jsonl", "a") if rank == 0 else None
    from tqdm import tqdm

    bar = tqdm(range(start, cfg.max_steps), desc=f"align {cfg.name}", unit="step", disable=not progress or rank)
    t0 = time.perf_counter()
    last = resumed
    per_rank = cfg.batch_size // world
    for step in bar:
        feats, text, mask, sup = make_batch(step, cfg, bank, corpus, train_idx, weights, front, model, bg_pool)
        sl = slice(rank * per_rank, (rank + 1) * per_rank)
        feats, text = feats[sl].to(device), text[sl].to(device)
        mask = mask[sl].to(device) if mask is not None else None
        sup = (sup[0][sl].to(device), sup[1][sl].to(device)) if sup is not None else None
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * lr_factor(step, cfg)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.startswith("cuda")):
            module = ddp_model.module if world > 1 else ddp_model
            terms = (loss_terms(module, feats, text, mask, sup) if world == 1
                     else _ddp_terms(ddp_model, feats, text, mask, sup))
            loss = total_loss(cfg, terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        last = {k: global_value(k, v) for k, v in terms.items()}
        last["loss"] = sum({"cka": cfg.w_cka, "nce": cfg.w_nce, "mask": cfg.w_mask, "sup": cfg.w_sup}[k] * v
                           for k, v in last.items() if k != "loss")
        if log is not None and (step % cfg.log_every == 0 or step == cfg.max_steps - 1):
            row = {"step": step, **last, "lr": optimizer.param_groups[1]["lr"],
                   "temperature": float(1 / model.logit_scale.detach().exp()), "elapsed_s": time.perf_counter() - t0}
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{last['loss']:.4f}")
        if rank == 0 and ((step + 1) % cfg.ckpt_every == 0 or step == cfg.max_steps - 1):
            save_checkpoint(out, model, {**meta_base, "step": step + 1, "last_metrics": last}, optimizer)
    if log is not None:
        log.close()
    return last


def _ddp_terms(ddp_model: torch.nn.Module, feats: torch.Tensor, text: torch.Tensor,
               mask: torch.Tensor | None, sup: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
    """Run loss_terms through DDP's forward so gradient hooks fire."""
    model = ddp_model.module
    original = model.forward

    def forward(f: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> Any:
        return loss_terms(model, f, t, m, sup)

    model.forward = forward  # type: ignore[method-assign]
    try:
        return ddp_model(feats, text, mask)
    finally:
        model.forward = original  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    from acula.aligner.config import PRESETS

    presets = "\n".join(f"  {name:<17} {c.encoder} encoder, {c.pooling} pooling, loss weights cka {c.w_cka:g} "
                         f"nce {c.w_nce:g} mask {c.w_mask:g} sup {c.w_sup:g}, {c.max_steps} steps, batch "
                         f"{c.batch_size}{', amp' if c.amp else ''}" for name, c in PRESETS.items())
    parser = argparse.ArgumentParser(prog="acula align", description=__doc__, epilog=f"presets:\n{presets}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help=f"preset name ({', '.join(PRESETS)}; listed below), or a JSON file of fields over the "
                             "preset it names as \"preset\" (default-cpu when it names none); unknown fields are "
                             "refused (default: default-cpu)")
    parser.add_argument("--corpus", required=True, help="corpus directory from 'acula corpus build'")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl)")
    parser.add_argument("--weights", default=None, help="pretrained weights folder (default $ACULA_WEIGHTS or "
                                                        "../shared/weights)")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device to train on (default: cuda when available, else cpu)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint instead of resuming")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        cfg = run_config("acula align", resolve_config, args.config, args.max_steps, out, "align_config", args.fresh)
    except ValueError as exc:
        print(f"acula align: {exc}", file=sys.stderr)
        return 1
    if not (Path(args.corpus) / "manifest.jsonl").is_file():  # before the run folder is made
        print(f"acula align: {args.corpus} is not a corpus directory (no manifest.jsonl); run 'acula corpus build'",
              file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    device = args.device
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    last = train(cfg, Path(args.corpus), out, args.weights, device, resume=not args.fresh)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"final": last}))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
