"""The project front end in torch, for training (batched, on GPU when there is one).

It derives every table from :class:`sdk.frontend_config.FrontendConfig` and the
numpy reference in :mod:`sdk.frontend`; ``tests/test_frontend.py`` checks parity
against that reference and against ``torchaudio.transforms.MelSpectrogram``.
"""

from __future__ import annotations

import torch
from acula.sdk.frontend import hann_window, mel_filterbank
from acula.sdk.frontend_config import FrontendConfig
from torch import nn


class TorchLogMel(nn.Module):
    """Waveforms of shape (batch, n_samples) -> log-mel (batch, n_frames, n_mels)."""

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__()
        self.config = config or FrontendConfig()
        self.register_buffer("window", torch.from_numpy(hann_window(self.config.n_fft)).float(), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(self.config)).float(), persistent=False)

    def power_spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, n_samples) -> power (batch, n_freqs, n_frames)."""
        cfg = self.config
        spec = torch.stft(
            wave.to(self.window.dtype), cfg.n_fft, hop_length=cfg.hop_length, window=self.window,
            center=False, return_complex=True,
        )
        return spec.real.square() + spec.imag.square()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        power = self.power_spectrum(wave)
        mel = torch.matmul(power.transpose(1, 2), self.fb)
        db = 10.0 * torch.log10(mel.clamp_min(cfg.amin_power))
        return (db - cfg.norm_mean_db) / cfg.norm_std_db


def level_normalise(logmel: torch.Tensor, floor_db: float | None, norm_std_db: float) -> torch.Tensor:
    """Each window's log-mel (batch, frames, mels) shifted so its loudest cell is 0, floored ``floor_db`` below it:
    a gain change moves every cell by the same amount and the shift takes it out, so the result does not depend on
    the recording level (down to where the floor or the noise floor bites).  Per window, so it streams exactly;
    idempotent, so applying it twice is harmless.  ``floor_db`` None: unchanged."""
    if floor_db is None:
        return logmel
    peak = logmel.amax(dim=(1, 2), keepdim=True)
    return torch.clamp(logmel - peak, min=-floor_db / norm_std_db)
