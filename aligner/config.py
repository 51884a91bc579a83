"""Alignment configs: frozen dataclasses with named presets, stored in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def known_fields(cls: type, data: Any) -> dict[str, Any]:
    """``data``, after refusing what is not a dict of fields of the dataclass ``cls`` with values of their
    types: a misspelt key or a ``"max_steps": "many"`` in a JSON config must stop the run with its name, not be
    ignored or end in a TypeError deep inside training."""
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} must be a JSON object of fields, got {type(data).__name__}")
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        expected = _type_problem(hints[key], value)
        if expected:
            raise ValueError(f"{cls.__name__}.{key} must be {expected}, got {value!r}")
    return data


#: JSON values a scalar annotation accepts (an int is a valid float; a bool is not a number)
_SCALARS: dict[Any, tuple[type, ...]] = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}
_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _type_problem(annotation: Any, value: Any) -> str | None:
    """What ``value`` should have been for ``annotation`` (scalars, optional scalars, tuples of scalars), or None
    when it fits or the annotation is not one this checks (a nested config checks itself)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if value is None or len(inner) != 1:
            return None
        problem = _type_problem(inner[0], value)
        return f"{problem} or null" if problem else None
    if annotation in _SCALARS:
        ok = isinstance(value, _SCALARS[annotation]) and (annotation is bool or not isinstance(value, bool))
        return None if ok else _NAMES[annotation]
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
        if isinstance(value, (list, tuple)) and not any(_type_problem(args[0], v) for v in value):
            return None
        return f"a list of {_NAMES[args[0]].removeprefix('an ').removeprefix('a ')}s"
    return None


def preset_of(data: dict[str, Any], presets: dict[str, Any], default: str, path: Path) -> Any:
    """The preset a JSON config names under ``"preset"`` (removed from ``data``), ``default`` when it names none;
    an unknown name is an error, not a silent fallback."""
    name = data.pop("preset", default)
    if name not in presets:
        raise ValueError(f"{path}: unknown preset {name!r} (presets: {', '.join(presets)})")
    return presets[name]


def check_level_norm_db(value: float | None) -> None:
    """The one bound on a level-normalisation floor (``aligner.frontend_torch.level_normalise``), for the
    teacher's and the student's configs alike."""
    if value is not None and not 10.0 <= value <= 100.0:
        raise ValueError(f"level_norm_db must be in [10, 100] dB or None, got {value!r}")


BAND_FILTERS = ("rolloff", "butterworth")
#: the quietest real background's SNR in dB (``AugmentFields.background_snr_min_db`` sets the loudest)
BACKGROUND_SNR_MAX_DB = 30.0


@dataclass(frozen=True)
class AugmentFields:
    """The device-robustness augmentations (``aligner.augment.augment_logmel``): the one place their defaults and
    bounds live.  Alignment and distillation configs inherit these fields, flat, so a stored config keeps its
    keys."""

    p_band_limit: float = 0.5
    gain_db: float = 6.0
    eq_db: float = 3.0
    p_noise: float = 0.3
    #: the low-pass's shape: "rolloff" (24 dB per octave from a cutoff of 1, 2 or 4 kHz, nothing below it) or
    #: "butterworth" (the magnitude of a Butterworth filter of random order 2-8 at a cutoff drawn log-uniformly
    #: from 0.8-4 kHz, which already attenuates below its cutoff, as a device's filter does)
    band_filter: str = "rolloff"
    #: probability that a crop gets a real background (rain, sea waves, helicopter, chainsaw, clock, fire:
    #: ESC-10's training clips, never the evaluation's noise clips) mixed in at an SNR drawn uniformly from
    #: ``background_snr_min_db`` to 30 dB (0: off)
    p_background: float = 0.0
    #: the background's lowest SNR in dB (the loudest background); the highest is ``BACKGROUND_SNR_MAX_DB``
    background_snr_min_db: float = 5.0
    #: probability that a crop gets a codec's quantisation floor (``aligner.augment.follow_noise``: white noise to
    #: 4 kHz at 22-38 dB under each frame's own power, as 8-bit mu-law adds), last, after every other augmentation;
    #: not combined with real backgrounds yet (0: off, and nothing drawn)
    p_codec: float = 0.0
    #: probability that a crop goes through a phone call's channel (``aligner.augment.phone_channel``): nothing
    #: above 4 kHz, as audio resampled to 8 kHz (anti-aliased) keeps; drawn last, after every other augmentation
    #: (0: off, and nothing drawn).  The 24 dB-per-octave roll-off of ``p_band_limit`` leaves a 4 kHz low-pass
    #: crop's 8 kHz band only 24 dB down, where an 8 kHz phone call has none of it.
    p_phone: float = 0.0

    def augment_options(self) -> dict[str, float | str]:
        """The keyword arguments of ``augment_logmel``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(AugmentFields)}

    def check_augment(self) -> None:
        for name in ("p_band_limit", "p_noise", "p_background", "p_codec", "p_phone"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.gain_db < 0 or self.eq_db < 0:
            raise ValueError(f"gain_db and eq_db must be non-negative, got {self.gain_db!r} and {self.eq_db!r}")
        if not 0.0 <= self.background_snr_min_db <= BACKGROUND_SNR_MAX_DB:
            raise ValueError(f"background_snr_min_db must be in [0, {BACKGROUND_SNR_MAX_DB:g}] dB (the highest SNR "
                             f"is {BACKGROUND_SNR_MAX_DB:g} dB), got {self.background_snr_min_db!r}")
        if (self.p_codec > 0 or self.p_phone > 0) and self.p_background > 0:
            raise ValueError("p_codec and p_phone are not combined with p_background yet: set one of them to 0")
        if self.band_filter not in BAND_FILTERS:
            raise ValueError(f"band_filter must be one of {BAND_FILTERS}, got {self.band_filter!r}")


@dataclass(frozen=True)
class AlignConfig(AugmentFields):
    name: str = "default-cpu"
    encoder: str = "mn04"  # a name of aligner.encoders.ENCODERS
    encoder_weights: str | None = "mn04_as_mAP_432.pt"  # file name under --weights, or a path; None = random init
    tiny_norm: str = "batch"
    pooling: str = "freq"  # freq: pool over time, keep frequency; gap: global average
    n_freq_bins: int = 4
    embed_dim: int = 512
    crop_frames: int = 96  # 3.1 s at the default hop; a multiple of the encoder stride (32)
    batch_size: int = 48
    max_steps: int = 1500
    lr: float = 1e-3
    encoder_lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    w_cka: float = 1.0
    w_nce: float = 0.0
    w_mask: float = 0.5
    w_sup: float = 0.0  # supervised heads (aligner.supervised): the control, or an extra loss beside alignment
    mask_ratio: float = 0.3
    #: each crop's log-mel shifted so its loudest cell is 0 and floored this many dB below it, in training and
    #: in every embedding (aligner.frontend_torch.level_normalise); None: the absolute level reaches the encoder
    level_norm_db: float | None = None
    seed: int = 0
    amp: bool = False
    log_every: int = 10
    ckpt_every: int = 100

    def __post_init__(self) -> None:
        from acula.aligner.encoders import ENCODERS  # the registry's names; no torch imported

        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.pooling not in ("freq", "gap"):
            raise ValueError(f"pooling must be 'freq' or 'gap', got {self.pooling!r}")
        weights = (self.w_cka, self.w_nce, self.w_mask, self.w_sup)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError("loss weights must be non-negative and not all zero")
        for name in ("n_freq_bins", "embed_dim", "crop_frames", "batch_size", "max_steps", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if min(self.lr, self.encoder_lr) <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("lr and encoder_lr must be positive, weight_decay and warmup_steps non-negative")
        check_level_norm_db(self.level_norm_db)
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio!r}")
        self.check_augment()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignConfig:
        return cls(**known_fields(cls, data))


_BASE = AlignConfig()
PRESETS: dict[str, AlignConfig] = {
    # AcuLa on CPU: mn04 from AudioSet, CKA + masked modelling, frequency-preserving pooling.
    "default-cpu": _BASE,
    "cka-nce-mask-cpu": dataclasses.replace(_BASE, name="cka-nce-mask-cpu", w_nce=0.5),
    "nce-cpu": dataclasses.replace(_BASE, name="nce-cpu", w_cka=0.0, w_nce=1.0, w_mask=0.0),
    "gap-cpu": dataclasses.replace(_BASE, name="gap-cpu", pooling="gap"),
    # The supervised control: (iii)'s records, steps, augmentations and masked term, with supervised heads
    # (cough, heart abnormal, crackles, wheezes, COPD) in place of the text alignment.
    "supervised-cpu": dataclasses.replace(_BASE, name="supervised-cpu", w_cka=0.0, w_nce=0.0, w_sup=1.0),
    # Seconds on a laptop: for tests and the end-to-end pipeline check.
    "tiny-test": dataclasses.replace(_BASE, name="tiny-test", encoder="tiny", encoder_weights=None, embed_dim=32,
                                     crop_frames=32, batch_size=8, max_steps=4, warmup_steps=1, log_every=1,
                                     ckpt_every=2, p_band_limit=0.0, p_noise=0.0),
    # The full model on a GPU: OPERA-GT-compatible ViT-S MAE, 256-frame input, mixed precision.
    "opera-gt-gpu": dataclasses.replace(_BASE, name="opera-gt-gpu", encoder="vit", encoder_weights=None,
                                        crop_frames=256, batch_size=128, max_steps=20000, lr=2e-4,
                                        encoder_lr=5e-5, warmup_steps=500, w_nce=0.5, mask_ratio=0.75,
                                        amp=True, log_every=50, ckpt_every=1000),
}


def resolve(name_or_file: str, cls: Any, presets: dict[str, Any], nested: tuple[str, ...] = ()) -> Any:
    """The one config resolution of every command: a preset name, or a JSON file of ``cls`` fields over a base.
    The base is the preset the file names under ``"preset"``, else the dataclass defaults (``AlignConfig()`` is
    the default-cpu preset; ``DistillConfig()`` is the first, narrow student of configs/distill/*.json).  The
    nested configs named in ``nested`` (e.g. a student) are changed field by field, not replaced."""
    if name_or_file in presets:
        return presets[name_or_file]
    path = Path(name_or_file)
    if not path.is_file():
        raise ValueError(f"{name_or_file!r} is neither a preset ({', '.join(presets)}) nor a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON
        raise ValueError(f"{path} is not a readable JSON config: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of {cls.__name__} fields, got a {type(data).__name__}")
    base = (preset_of(data, presets, "", path) if "preset" in data else cls()).to_dict()
    for part in nested:
        data[part] = {**base[part], **data.get(part, {})}
    return cls.from_dict({**base, **data})


def resolve_config(name_or_file: str) -> AlignConfig:
    config: AlignConfig = resolve(name_or_file, AlignConfig, PRESETS)
    return config
