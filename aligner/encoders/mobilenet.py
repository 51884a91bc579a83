"""EfficientAT MobileNetV3 ("mn", Schmid et al., ICASSP 2023) in its published state-dict layout.

The layout (``features.{i}.block.{j}``, ``conc_se_layers``, ``classifier.{2,5}``)
matches the released AudioSet checkpoints, so ``mn04_as_mAP_432.pt`` loads with
a strict key match.  Architecture only; the loading helper checks the sha256.

Adapting it to the project front end (16 kHz, 64 mels 50-8000 Hz, 32 ms hop,
``(dB + 38.7) / 36.8``) instead of EfficientAT's (32 kHz, 128 mels, 10 ms hop,
``(ln mel + 4.5) / 5``) is sound because:

* the network is fully convolutional and ends in global pooling, and its
  squeeze-excitation acts on channels only, so any input size is accepted;
* ``freq_upsample=2`` interpolates the 64 bands to 128 rows, so each filter
  again spans about as many mel rows as in pre-training (the 64 bands cover
  50-8000 Hz, where body sounds live, at a density close to the original's);
* :data:`INPUT_SCALE`/:data:`INPUT_SHIFT` map our normalised dB onto the scale
  the weights expect: ``ln P = (36.8 n - 38.7) / 10 log10(e)`` and then
  ``(ln P + 4.5) / 5``, i.e. ``1.695 n - 0.882``;
* the coarser hop only lengthens each frame's time span; alignment training
  then adapts the batch-norm statistics and weights to the new front end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from acula.sdk.bundle import sha256_of
from torch import nn

MN04_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
INPUT_SCALE = 36.8 / (10.0 * math.log10(math.e)) / 5.0
INPUT_SHIFT = (-38.7 / (10.0 * math.log10(math.e)) + 4.5) / 5.0

# (in, kernel, expanded, out, squeeze-excite, hard-swish, stride) of MobileNetV3-Large at width 1.0
BLOCKS: Sequence[tuple[int, int, int, int, bool, bool, int]] = (
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ChannelSE(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * scale[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's wrapper (channel SE only, max-aggregated: a single layer is the identity aggregate)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, make_divisible(channels // 4))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([layer(x) for layer in self.conc_se_layers]).max(0).values


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, kernel: int, c_exp: int, c_out: int, se: bool, hs: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if c_exp != c_in:
            layers.append(conv_bn_act(c_in, c_exp, 1, act=act))
        layers.append(conv_bn_act(c_exp, c_exp, kernel, stride, groups=c_exp, act=act))
        if se:
            layers.append(ConcurrentSE(c_exp))
        layers.append(conv_bn_act(c_exp, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class MobileNetAudio(nn.Module):
    """Log-mel (batch, n_frames, n_mels) -> feature map (batch, 6 * last_block_width, freq, time)."""

    def __init__(self, width_mult: float = 0.4, n_classes: int = 527, freq_upsample: int = 2,
                 adapt_input: bool = True) -> None:
        super().__init__()
        ch = [(make_divisible(a * width_mult), k, make_divisible(e * width_mult), make_divisible(o * width_mult),
               se, hs, s) for a, k, e, o, se, hs, s in BLOCKS]
        layers: list[nn.Module] = [conv_bn_act(1, ch[0][0], 3, 2, act=nn.Hardswish)]
        layers += [InvertedResidual(*c) for c in ch]
        self.out_channels = 6 * ch[-1][3]
        layers.append(conv_bn_act(ch[-1][3], self.out_channels, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        last = make_divisible(1280 * width_mult)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(self.out_channels, last),
                                        nn.Hardswish(), nn.Dropout(0.2), nn.Linear(last, n_classes))
        self.freq_upsample = freq_upsample
        self.adapt_input = adapt_input

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel.transpose(1, 2).unsqueeze(1)  # (batch, 1, n_mels, n_frames)
        if self.adapt_input:
            x = x * INPUT_SCALE + INPUT_SHIFT
        if self.freq_upsample > 1:
            x = F.interpolate(x, scale_factor=(self.freq_upsample, 1), mode="bilinear", align_corners=False)
        return self.features(x)

    def audioset_logits(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward(logmel))


def load_mn04(path: str | Path, expected_sha256: str = MN04_SHA256, **kwargs: object) -> MobileNetAudio:
    """Build mn04 and load the AudioSet checkpoint with a strict key match after checking its sha256."""
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ValueError(f"{path}: sha256 {actual} does not match the expected {expected_sha256}")
    model = MobileNetAudio(width_mult=0.4, **kwargs)  # type: ignore[arg-type]
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model


def build(cfg: Any, weights: Path | None) -> MobileNetAudio:
    """The registry's builder (``aligner.encoders.ENCODERS``): mn04, from the AudioSet checkpoint when given."""
    return MobileNetAudio(width_mult=0.4) if weights is None else load_mn04(weights)
