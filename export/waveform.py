"""One graph from waveform to embedding, for runtimes that cannot run the SDK front end.

The front end goes inside the graph: the short-time Fourier transform is a 1-D convolution whose kernels are
the Hann-windowed cosine and sine of every FFT bin (stride = hop, no centring, as in
:class:`sdk.frontend_config.FrontendConfig`), followed by the power, the mel filterbank, ``10 log10`` with the
config's floor and the fixed normalisation.  Only the STFT is new here: the rest is the training front end
(:class:`aligner.frontend_torch.TorchLogMel`), and every table comes from :mod:`sdk.frontend`, so the graph
and the SDK front end cannot drift apart; ``tests/test_waveform_graph.py`` checks parity.

Input: ``waveform`` (batch, n_samples) at the front end's rate, n_samples = n_fft + (window_frames - 1) * hop
(2.016 s for the default student); output: the student's ``embedding`` and ``heads`` for that window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from acula.aligner.frontend_torch import TorchLogMel
from acula.distill.student import StreamingStudent
from acula.export.writers import export_onnx
from acula.sdk.frontend import hann_window
from acula.sdk.frontend_config import FrontendConfig
from torch import nn

INPUT_NAME = "waveform"


def dft_kernels(config: FrontendConfig) -> np.ndarray:
    """(2 * n_freqs, 1, n_fft): windowed cosines, then windowed negative sines, of every rfft bin."""
    n = np.arange(config.n_fft)
    k = np.arange(config.n_fft // 2 + 1)[:, None]
    phase = 2 * np.pi * k * n / config.n_fft
    win = hann_window(config.n_fft)
    return np.concatenate([np.cos(phase) * win, -np.sin(phase) * win])[:, None, :].astype(np.float32)


def window_samples(config: FrontendConfig, window_frames: int) -> int:
    """Samples in one analysis window of ``window_frames`` frames (frames are not centred)."""
    return config.n_fft + (window_frames - 1) * config.hop_length


class WaveformLogMel(TorchLogMel):
    """The training front end with its STFT as a strided convolution (exports to ONNX as plain Conv)."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__(config)
        self.n_freqs = config.n_fft // 2 + 1
        self.register_buffer("kernels", torch.from_numpy(dft_kernels(config)))

    def power_spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(wave.unsqueeze(1), self.kernels, stride=self.config.hop_length)
        return spec[:, : self.n_freqs].square() + spec[:, self.n_freqs :].square()


class WaveformStudent(nn.Module):
    def __init__(self, student: StreamingStudent, config: FrontendConfig) -> None:
        super().__init__()
        if student.cfg.n_mels != config.n_mels:
            raise ValueError(f"the student takes {student.cfg.n_mels} mels, the front end gives {config.n_mels}")
        self.frontend = WaveformLogMel(config)
        self.student = student.eval()

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb, heads = self.student(self.frontend(wave))
        return emb, heads


def export_waveform_onnx(student: StreamingStudent, config: FrontendConfig, path: Path) -> Path:
    example = torch.zeros(1, window_samples(config, student.cfg.window_frames))
    return export_onnx(WaveformStudent(student, config), example, INPUT_NAME, path)


def check_windows(config: FrontendConfig, window_frames: int, hop_frames: int, seconds: float = 8.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(waveform windows, the SDK front end's log-mel windows) of one synthetic recording, aligned."""
    from acula.aligner.data import windows
    from acula.sdk.frontend import LogMelFrontend
    from acula.sdk.synth import synth_recording

    x = synth_recording(seconds, config.sample_rate_hz, seed=7)[0].astype(np.float32)
    logmel = windows(LogMelFrontend(config)(x), window_frames, hop_frames)
    n, step = window_samples(config, window_frames), hop_frames * config.hop_length
    waves = np.stack([x[k * step : k * step + n] for k in range(logmel.shape[0])])
    return waves, logmel.astype(np.float32)
