"""The one front-end configuration that every consumer derives from.

``FrontendConfig`` is frozen and serialisable; it is stored inside every
checkpoint and bundle so that a model file describes the features it expects.
The defaults follow OPERA / AcuLa (16 kHz, n_fft 1024, hop 512, 64 mel bands
50-8000 Hz, log power) so OPERA checkpoints stay usable.

Normalisation differs from the released OPERA code on purpose: OPERA min-max
normalises each clip with ``ref=max``, which needs the whole clip (the future)
and so cannot stream.  Here the log-mel is normalised with a fixed affine map,
``(db - norm_mean_db) / norm_std_db``, whose statistics live in the config.
Whole-clip and streaming features are then identical by construction.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FrontendConfig:
    """Log-mel front end.  Frames are not centred: frame ``i`` covers samples
    ``[i * hop_length, i * hop_length + n_fft)``, so a frame is emitted as soon
    as its last sample arrives."""

    sample_rate_hz: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    f_min_hz: float = 50.0
    f_max_hz: float = 8000.0
    amin_power: float = 1e-10
    # Measured on the shared data, every data set weighted equally:
    # `python -m acula.aligner.frontend_stats --data ../shared/data`.
    norm_mean_db: float = -38.7
    norm_std_db: float = 36.8

    def __post_init__(self) -> None:
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 16, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft], got {self.hop_length}")
        if not 0 <= self.f_min_hz < self.f_max_hz <= self.sample_rate_hz / 2:
            raise ValueError(
                "need 0 <= f_min_hz < f_max_hz <= sample_rate_hz / 2, got "
                f"{self.f_min_hz}, {self.f_max_hz}, {self.sample_rate_hz}"
            )
        if self.n_mels < 1 or self.norm_std_db <= 0 or self.amin_power <= 0:
            raise ValueError("n_mels, norm_std_db and amin_power must be positive")

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def hop_s(self) -> float:
        return self.hop_length / self.sample_rate_hz

    @property
    def window_s(self) -> float:
        return self.n_fft / self.sample_rate_hz

    def n_frames(self, n_samples: int) -> int:
        """Frames that ``n_samples`` samples yield (0 when shorter than n_fft)."""
        if n_samples < self.n_fft:
            return 0
        return 1 + (n_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontendConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FrontendConfig fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
