"""One graph from waveform to embedding, for runtimes that cannot run the SDK front end.

The front end goes inside the graph: the short-time Fourier transform is a 1-D convolution whose kernels are
the Hann-windowed cosine and sine of every FFT bin (stride = hop, no centring, as in
:class:`sdk.frontend_config.FrontendConfig`), followed by the power, the mel filterbank, ``10 log10`` with the
config's floor and the fixed normalisation.  Every table comes from :mod:`sdk.frontend`, so the graph and the
SDK front end cannot drift apart; ``tests/test_waveform_graph.py`` checks parity.

Input: ``waveform`` (batch, n_samples) at the front end's rate, n_samples = n_fft + (window_frames - 1) * hop
(2.016 s for the default student); output: the student's ``embedding`` and ``heads`` for that window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.student import StreamingStudent
from sdk.frontend import hann_window, mel_filterbank
from sdk.frontend_config import FrontendConfig

INPUT_NAME = "waveform"


def dft_kernels(config: FrontendConfig) -> np.ndarray:
    """(2 * n_freqs, 1, n_fft): windowed cosines, then windowed negative sines, of every rfft bin."""
    n = np.arange(config.n_fft)
    k = np.arange(config.n_fft // 2 + 1)[:, None]
    phase = 2 * np.pi * k * n / config.n_fft
    win = hann_window(config.n_fft)
    return np.concatenate([np.cos(phase) * win, -np.sin(phase) * win])[:, None, :].astype(np.float32)


class WaveformLogMel(nn.Module):
    """(batch, n_samples) -> (batch, n_frames, n_mels), the SDK front end as convolution and matrix products."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.n_freqs = config.n_fft // 2 + 1
        self.register_buffer("kernels", torch.from_numpy(dft_kernels(config)))
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(config).astype(np.float32)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        spec = nn.functional.conv1d(wave.unsqueeze(1), self.kernels, stride=cfg.hop_length)
        power = spec[:, : self.n_freqs].square() + spec[:, self.n_freqs :].square()  # (batch, n_freqs, frames)
        mel = torch.matmul(power.transpose(1, 2), self.fb)
        db = 10.0 * torch.log10(mel.clamp_min(cfg.amin_power))
        return (db - cfg.norm_mean_db) / cfg.norm_std_db


class WaveformStudent(nn.Module):
    def __init__(self, student: StreamingStudent, config: FrontendConfig) -> None:
        super().__init__()
        if student.cfg.n_mels != config.n_mels:
            raise ValueError(f"the student takes {student.cfg.n_mels} mels, the front end gives {config.n_mels}")
        self.frontend = WaveformLogMel(config)
        self.student = student.eval()

    @property
    def n_samples(self) -> int:
        cfg = self.frontend.config
        return cfg.n_fft + (self.student.cfg.window_frames - 1) * cfg.hop_length

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb, heads = self.student(self.frontend(wave))
        return emb, heads


def export_waveform_onnx(student: StreamingStudent, config: FrontendConfig, path: Path) -> Path:
    model = WaveformStudent(student, config).eval()
    example = torch.zeros(1, model.n_samples)
    torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=["embedding", "heads"],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, "embedding": {0: "batch"}, "heads": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path
