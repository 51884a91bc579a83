"""Device-robustness augmentations, applied to normalised log-mel batches.

Working on the log-mel rather than the waveform keeps the features cached and
costs nothing on a CPU: a linear filter is a per-band gain in dB (exact up to
the mel resolution) and additive noise adds in the power domain.

* band-limiting: a stethoscope-like low-pass, either 24 dB per octave above 1, 2 or 4 kHz ("rolloff") or a
  Butterworth magnitude of random order 2-8 at a random cutoff in 0.8-4 kHz ("butterworth");
* gain: a uniform level change of +-``gain_db``;
* EQ: a random spectral tilt of +-``eq_db`` across the band range;
* noise: stationary pink-ish noise at 10-30 dB below the clip's mean power.

The same function serves the aligner and the distiller.
"""

from __future__ import annotations

import numpy as np
import torch
from acula.aligner.config import AugmentFields
from acula.sdk.frontend import mel_to_hz
from acula.sdk.frontend_config import FrontendConfig

CUTOFFS_HZ = (1000.0, 2000.0, 4000.0)
BUTTERWORTH_CUTOFF_HZ = (800.0, 4000.0)
BUTTERWORTH_ORDERS = (2, 8)
_DEFAULT = AugmentFields()


def band_centres_hz(cfg: FrontendConfig) -> torch.Tensor:
    from acula.sdk.frontend import hz_to_mel

    mels = np.linspace(hz_to_mel(cfg.f_min_hz), hz_to_mel(cfg.f_max_hz), cfg.n_mels + 2)[1:-1]
    return torch.from_numpy(mel_to_hz(mels)).float()


def augment_logmel(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator,
                   p_band_limit: float = _DEFAULT.p_band_limit, gain_db: float = _DEFAULT.gain_db,
                   eq_db: float = _DEFAULT.eq_db, p_noise: float = _DEFAULT.p_noise,
                   band_filter: str = _DEFAULT.band_filter) -> torch.Tensor:
    """x: (batch, n_frames, n_mels) normalised log-mel -> augmented copy, same shape.  The defaults are
    ``aligner.config.AugmentFields``'; a config passes its own with ``**cfg.augment_options()``."""
    b = x.shape[0]
    scale = cfg.norm_std_db
    db = x * scale + cfg.norm_mean_db
    centres = band_centres_hz(cfg).to(x.device)
    octave = torch.log2(centres / centres[0]) / torch.log2(centres[-1] / centres[0])  # 0..1 across bands

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(x.device)

    shift = (rand(b, 1, 1) * 2 - 1) * gain_db + (rand(b, 1, 1) * 2 - 1) * eq_db * (octave - 0.5)
    if band_filter == "butterworth":
        lo, hi = np.log(BUTTERWORTH_CUTOFF_HZ[0]), np.log(BUTTERWORTH_CUTOFF_HZ[1])
        cutoff = torch.exp(lo + (hi - lo) * rand(b, 1, 1))
        order = torch.randint(BUTTERWORTH_ORDERS[0], BUTTERWORTH_ORDERS[1] + 1, (b, 1, 1),
                              generator=generator).to(x.device).float()
        rolloff = -10.0 * torch.log10(1.0 + (centres / cutoff) ** (2.0 * order))
    elif band_filter == "rolloff":
        cutoff_idx = torch.randint(0, len(CUTOFFS_HZ), (b,), generator=generator)
        cutoff = torch.tensor(CUTOFFS_HZ)[cutoff_idx].to(x.device)[:, None, None]
        rolloff = -24.0 * torch.log2(torch.clamp(centres / cutoff, min=1.0))
    else:
        raise ValueError(f"band_filter must be 'rolloff' or 'butterworth', got {band_filter!r}")
    limit = rand(b, 1, 1) < p_band_limit
    db = db + shift + torch.where(limit, rolloff, torch.zeros_like(rolloff))
    noisy = rand(b, 1, 1) < p_noise
    if bool(noisy.any()):
        power = torch.pow(10.0, db / 10.0)
        snr_db = 10 + 20 * rand(b, 1, 1)
        level = power.mean((1, 2), keepdim=True) / torch.pow(10.0, snr_db / 10.0)
        noise = level * (1.0 + octave) ** -1 * (0.5 + rand(*x.shape))
        db = torch.where(noisy, 10 * torch.log10(power + noise), db)
    floor_db = 10 * float(np.log10(cfg.amin_power))
    return (db.clamp_min(floor_db) - cfg.norm_mean_db) / scale
