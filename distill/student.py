"""The streaming student: a small depthwise-separable CNN over one analysis window.

It maps a log-mel window of shape (batch, window_frames, n_mels) to one
embedding in the teacher's joint space plus optional head logits.  Every layer
exports to ONNX and TFLite and quantises to int8: convolutions with batch norm
(folded at export), ReLU-family activations, mean pooling (optionally with a max over time), linear layers.
Options that would break streaming, export or quantisation are refused here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from acula.aligner.config import check_level_norm_db, known_fields
from acula.aligner.frontend_torch import level_normalise
from torch import nn

TIME_POOLS = ("mean", "mean+max", "mean|max", "gated")
ALLOWED_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}
REFUSED_ACTIVATIONS = {
    "gelu": "GELU has no int8 kernel in TFLite and is approximated in ONNX QDQ; use relu or relu6.",
    "swish": "swish/SiLU quantises poorly (unbounded negative tail); use relu or relu6.",
    "hardswish": "hardswish is not fused with convolutions by every int8 runtime; use relu or relu6.",
}
REFUSED_NORMS = {
    "layer": "LayerNorm over the window depends on the whole window's statistics and does not fold into the "
             "convolution at export; use norm='batch'.",
    "instance": "InstanceNorm normalises each clip by its own statistics, which a stream does not have; "
                "use norm='batch'.",
}


@dataclass(frozen=True)
class StudentConfig:
    channels: tuple[int, ...] = (24, 32, 48, 64, 96, 128)
    strides: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
    n_freq_bins: int = 2
    embed_dim: int = 512
    #: width of a linear bottleneck before the embedding (None: one linear layer).  The teacher's clip
    #: embeddings keep 99.5 % of their variance in 128 directions, so a bottleneck frees parameters for the
    #: convolutional trunk at no cost in reachable embeddings.
    embed_rank: int | None = None
    n_mels: int = 64
    window_frames: int = 62  # 1.98 s at the default 32 ms hop
    hop_frames: int = 15  # 0.48 s
    activation: str = "relu"
    norm: str = "batch"
    heads: tuple[str, ...] = ("cough",)
    max_params: int = 300_000
    #: level invariance by design: each window is shifted so its loudest cell is 0 and floored this many dB
    #: below it, inside the graph (ReduceMax, Sub, Clip: every runtime and TFLite Micro has them).  A gain
    #: change then moves no input cell as long as the window's peak stays this far above the front end's
    #: amin floor (-100 dB; body-sound windows peak near +10..+25 dB, so down to about -40 dB of gain at
    #: 60 dB).  Per window, so streaming stays exact.  None: the fixed affine map alone (level-sensitive).
    level_norm_db: float | None = None
    #: the front end's norm_std_db, to turn level_norm_db into the normalised feature scale
    norm_std_db: float = 36.8
    #: pooling over the window's time steps after the trunk: "mean" (one average over frequency blocks and time)
    #: or "mean+max" (average over frequency blocks, then the time mean plus the time maximum, as PANNs do), so
    #: a transient that fills one time step (a crackle lasts < 20 ms) is not diluted by the quiet ones; or
    #: "mean|max", the two side by side (twice the pooled width), so the layers after them weigh each per output.
    #: "gated": a learned weighting of the time steps, per frequency block: a 1x1 convolution scores each step and
    #: the step counts 2 * sigmoid(score) times (0 to 2) in the time average.  Initialised to zero scores, so
    #: training starts from "mean" exactly and moves only as far as the loss pulls it toward the steps that
    #: carry a transient.  (A softmax over the steps converts to seven float ops, five of them outside the MCU
    #: kit's kernels; a sigmoid gate is one LOGISTIC and one MUL, int8 everywhere.)
    #: All are plain ops (AVERAGE_POOL_2D, MAX_POOL_2D, ADD, CONCATENATION; CONV_2D, LOGISTIC, MUL) with int8
    #: kernels in every runtime.
    time_pool: str = "mean"

    def __post_init__(self) -> None:
        if self.activation in REFUSED_ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is refused: {REFUSED_ACTIVATIONS[self.activation]}")
        if self.activation not in ALLOWED_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ALLOWED_ACTIVATIONS)}, got {self.activation!r}")
        if self.norm in REFUSED_NORMS:
            raise ValueError(f"norm={self.norm!r} is refused: {REFUSED_NORMS[self.norm]}")
        if self.norm != "batch":
            raise ValueError(f"norm must be 'batch', got {self.norm!r}")
        if len(self.channels) != len(self.strides):
            raise ValueError("channels and strides need the same length")
        if self.embed_rank is not None and not 0 < self.embed_rank < self.embed_dim:
            raise ValueError(f"embed_rank must be between 1 and embed_dim - 1 ({self.embed_dim - 1}), "
                             f"got {self.embed_rank}")
        check_level_norm_db(self.level_norm_db)
        if self.time_pool not in TIME_POOLS:
            raise ValueError(f"time_pool must be one of {sorted(TIME_POOLS)}, got {self.time_pool!r}")
        if self.window_frames * 0.032 > 2.0 + 1e-9 or self.hop_frames * 0.032 > 0.5 + 1e-9:
            raise ValueError("the analysis window must be <= 2 s and the hop <= 0.5 s (at 32 ms a frame)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentConfig:
        data = dict(known_fields(cls, data))
        for key in ("channels", "strides", "heads"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def _block(c_in: int, c_out: int, stride: int, act: type[nn.Module]) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and activation."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), act(),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), act(),
    )


class StreamingStudent(nn.Module):
    """(batch, window_frames, n_mels) log-mel -> (embedding (batch, embed_dim), head logits (batch, n_heads))."""

    def __init__(self, cfg: StudentConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or StudentConfig()
        act = ALLOWED_ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(1, cfg.channels[0], 3, cfg.strides[0], 1, bias=False),
                                                 nn.BatchNorm2d(cfg.channels[0]), act())]
        for c_in, c_out, s in zip(cfg.channels[:-1], cfg.channels[1:], cfg.strides[1:], strict=True):
            layers.append(_block(c_in, c_out, s, act))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((cfg.n_freq_bins, 1))
        self.time_pools: nn.ModuleList | None = None
        self.time_score: nn.Conv2d | None = None
        if cfg.time_pool != "mean":
            with torch.no_grad():
                _, _, n_freq, n_time = self.features(torch.zeros(1, 1, cfg.n_mels, cfg.window_frames)).shape
            if n_freq % cfg.n_freq_bins:
                raise ValueError(f"time_pool={cfg.time_pool!r} needs the trunk's {n_freq} frequency rows to split into "
                                 f"n_freq_bins={cfg.n_freq_bins} equal blocks")
            # static kernels (the window's size is fixed), so every exporter writes plain pooling ops
            self.time_pools = nn.ModuleList([nn.AvgPool2d((n_freq // cfg.n_freq_bins, 1)),
                                             nn.AvgPool2d((1, n_time)), nn.MaxPool2d((1, n_time))])
            if cfg.time_pool == "gated":
                self.time_score = nn.Conv2d(cfg.channels[-1], 1, 1)
                nn.init.zeros_(self.time_score.weight)
                nn.init.zeros_(self.time_score.bias)
        pooled = cfg.channels[-1] * cfg.n_freq_bins * (2 if cfg.time_pool == "mean|max" else 1)
        self.embed: nn.Module = (nn.Linear(pooled, cfg.embed_dim) if cfg.embed_rank is None else
                                 nn.Sequential(nn.Linear(pooled, cfg.embed_rank, bias=False),
                                               nn.Linear(cfg.embed_rank, cfg.embed_dim)))
        self.heads = nn.Linear(pooled, max(1, len(cfg.heads)))
        n_params = sum(p.numel() for p in self.parameters())
        if n_params > cfg.max_params:
            raise ValueError(f"student has {n_params} parameters, over max_params={cfg.max_params}; "
                             "reduce channels or embed_dim")

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logmel = level_normalise(logmel, self.cfg.level_norm_db, self.cfg.norm_std_db)
        x = self.features(logmel.transpose(1, 2).unsqueeze(1))
        if self.time_pools is None:
            pooled = self.pool(x).flatten(1)
        else:
            per_freq, time_mean, time_max = self.time_pools
            blocks = per_freq(x)
            if self.cfg.time_pool == "mean+max":
                pooled = (time_mean(blocks) + time_max(blocks)).flatten(1)
            elif self.cfg.time_pool == "gated":
                # each time step of each frequency block weighted 0..2 (1 at zero score: the plain mean)
                assert self.time_score is not None
                # (the factor 2 after the average: before it, int8 TFLite conversion fails a same-scale check)
                pooled = (time_mean(blocks * torch.sigmoid(self.time_score(blocks))) * 2.0).flatten(1)
            else:
                pooled = torch.cat([time_mean(blocks).flatten(1), time_max(blocks).flatten(1)], dim=1)
        return self.embed(pooled), self.heads(pooled)
