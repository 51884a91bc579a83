"""The screening figure of ``acula screen --plot`` and ``acula demo``: waveform, spectrogram, cough probability
with the on threshold, detected events shaded across all three; drawn with :mod:`sdk.png` (no matplotlib).

:class:`SignalSketch` takes a recording block by block and keeps only what the figure draws (a min/max
envelope and one spectrum per pixel column), so a file of any length is drawn in bounded memory.
"""

from __future__ import annotations

import numpy as np
from acula.sdk.model import ScreenResult
from acula.sdk.png import BLACK, GREY, LIGHT, RED, Canvas, colour_map

WIDTH_PX = 900  # plot area
LEFT_PX, RIGHT_PX, TOP_PX = 80, 20, 28
N_FFT = 512
MAX_FREQ_HZ = 8000.0
#: candidate spacings of the time ticks, seconds
TICK_STEPS_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)


class SignalSketch:
    """What the figure needs of ``n_samples`` mono samples at ``sample_rate_hz``, fed in blocks of any length:
    per pixel column the min and max sample and the power spectrum (dB) of N_FFT samples around its centre."""

    def __init__(self, sample_rate_hz: int, n_samples: int, width: int = WIDTH_PX) -> None:
        self.rate, self.n = sample_rate_hz, max(1, n_samples)
        self.n_cols = max(1, min(width, self.n))
        self.edges = np.round(np.arange(self.n_cols + 1) * self.n / self.n_cols).astype(np.int64)
        self.centres = (self.edges[:-1] + self.edges[1:]) // 2
        self.lo = np.full(self.n_cols, np.nan, np.float32)
        self.hi = np.full(self.n_cols, np.nan, np.float32)
        n_bins = int(min(MAX_FREQ_HZ, sample_rate_hz / 2) / sample_rate_hz * N_FFT) + 1
        self.spec_db = np.full((n_bins, self.n_cols), np.nan, np.float32)
        self.max_freq_hz = (n_bins - 1) * sample_rate_hz / N_FFT
        self._buf = np.zeros(0, np.float32)
        self._base = 0  # sample index of _buf[0]
        self._col = 0  # next column to compute
        self._window = np.hanning(N_FFT).astype(np.float32)

    def _needs(self, c: int) -> tuple[int, int]:
        """Sample range column c reads."""
        a = min(int(self.edges[c]), int(self.centres[c]) - N_FFT // 2)
        b = max(int(self.edges[c + 1]), int(self.centres[c]) + N_FFT // 2)
        return max(0, a), min(self.n, b)

    def add(self, samples: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        self._columns(self._base + self._buf.size)

    def finish(self) -> None:
        """Draw the columns the samples reached (a file shorter than its header said leaves the rest blank)."""
        self._columns(self._base + self._buf.size, final=True)

    def _columns(self, available: int, final: bool = False) -> None:
        while self._col < self.n_cols:
            c = self._col
            a, b = self._needs(c)
            if b > available and not final:
                break
            seg = self._buf
            lo, hi = int(self.edges[c]) - self._base, int(self.edges[c + 1]) - self._base
            if 0 <= lo < min(hi, seg.size):
                part = seg[lo : min(hi, seg.size)]
                self.lo[c], self.hi[c] = part.min(), part.max()
            start = int(self.centres[c]) - N_FFT // 2 - self._base
            frame = np.zeros(N_FFT, np.float32)
            src = seg[max(0, start) : max(0, start + N_FFT)]
            frame[max(0, -start) : max(0, -start) + src.size] = src
            if src.size:
                power = np.abs(np.fft.rfft(frame * self._window)[: self.spec_db.shape[0]]) ** 2
                self.spec_db[:, c] = 10 * np.log10(power + 1e-10)
            self._col += 1
            if self._col < self.n_cols:
                keep = self._needs(self._col)[0] - self._base
                if keep > 0:
                    self._buf, self._base = self._buf[keep:], self._base + keep


def _tick_step(duration_s: float) -> float:
    return next((s for s in TICK_STEPS_S if duration_s / s <= 10), TICK_STEPS_S[-1])


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.1f}"


def screening_figure(sketch: SignalSketch, result: ScreenResult, threshold: float, title: str) -> Canvas:
    """Three panels over time: waveform, spectrogram (0 to 8 kHz), cough probability per window with the
    detector's on ``threshold``; detected events shaded red across all three."""
    sketch.finish()
    heights = (100, 120, 120)
    gap = 14
    bottom = 44
    canvas = Canvas(LEFT_PX + WIDTH_PX + RIGHT_PX, TOP_PX + sum(heights) + gap * (len(heights) - 1) + bottom)
    tops = [TOP_PX + sum(heights[:i]) + gap * i for i in range(len(heights))]
    duration = max(result.duration_s, sketch.n / sketch.rate, 1e-3)

    def x_of(t_s: float | np.ndarray) -> np.ndarray:
        return LEFT_PX + np.asarray(t_s) / duration * WIDTH_PX

    canvas.text(LEFT_PX, 8, title)
    n_ev = len(result.events)
    canvas.text(LEFT_PX + WIDTH_PX, 8, f"red: {n_ev} detected cough event{'s' if n_ev != 1 else ''}", RED,
                anchor="right")
    # 1. waveform: min/max envelope per column
    top, h = tops[0], heights[0]
    peak = float(np.nanmax(np.abs(np.concatenate([sketch.lo, sketch.hi])))) if np.isfinite(sketch.hi).any() else 1.0
    peak = peak or 1.0
    mid = top + h / 2
    cols = np.arange(sketch.n_cols)
    xs = LEFT_PX + cols * WIDTH_PX / sketch.n_cols
    col_w = max(1.0, WIDTH_PX / sketch.n_cols)
    for x, lo, hi in zip(xs.tolist(), sketch.lo.tolist(), sketch.hi.tolist(), strict=True):
        if np.isfinite(lo):
            canvas.rect(x, mid - hi / peak * h / 2 - 0.5, x + col_w, mid - lo / peak * h / 2 + 0.5, (70, 70, 70))
    canvas.text(LEFT_PX - 6, top, f"{_fmt(peak)}", GREY, anchor="right")
    canvas.text(LEFT_PX - 6, top + h - 7, f"-{_fmt(peak)}", GREY, anchor="right")
    canvas.text(14, mid, "amplitude", vertical=True)
    # 2. spectrogram: dB over the top 80 dB, low frequencies at the bottom
    top, h = tops[1], heights[1]
    spec = sketch.spec_db
    if np.isfinite(spec).any():
        ceiling = float(np.nanmax(spec))
        img = colour_map((spec - (ceiling - 80.0)) / 80.0)[::-1]
        rows = np.linspace(0, img.shape[0] - 1, h).round().astype(int)
        colx = np.minimum((np.arange(WIDTH_PX) * sketch.n_cols) // WIDTH_PX, sketch.n_cols - 1)
        canvas.image(LEFT_PX, top, img[rows][:, colx])
    canvas.text(LEFT_PX - 6, top, f"{sketch.max_freq_hz / 1000:g}k", GREY, anchor="right")
    canvas.text(LEFT_PX - 6, top + h - 7, "0", GREY, anchor="right")
    canvas.text(14, top + h / 2, "freq (Hz)", vertical=True)
    # 3. cough probability per window, the on threshold dashed
    top, h = tops[2], heights[2]

    def y_of(p: float | np.ndarray) -> np.ndarray:
        return top + h - 1 - np.asarray(p) * (h - 1)

    for p in (0.0, 0.5, 1.0):
        canvas.hline(LEFT_PX, LEFT_PX + WIDTH_PX, float(y_of(p)), LIGHT)
        canvas.text(LEFT_PX - 6, float(y_of(p)) - 3, f"{p:.1f}", GREY, anchor="right")
    canvas.hline(LEFT_PX, LEFT_PX + WIDTH_PX, float(y_of(threshold)), RED, dashed=True)
    canvas.text(LEFT_PX + WIDTH_PX - 4, float(y_of(threshold)) - 10, f"threshold {threshold:.2f}", RED,
                anchor="right")
    scored = [w for w in result.windows if w.cough_probability is not None]
    if scored:
        tx = x_of(np.array([(w.start_s + w.end_s) / 2 for w in scored]))
        ty = y_of(np.array([float(w.cough_probability or 0.0) for w in scored]))
        canvas.polyline(tx, ty, (31, 119, 180))
        for x, y in zip(tx, ty, strict=True):
            canvas.rect(x - 2, y - 2, x + 3, y + 3, (31, 119, 180))
    for w in result.windows:
        if w.cough_probability is None:  # gated by signal quality: a grey tick on the axis
            canvas.rect(float(x_of(w.start_s)), top + h - 4, float(x_of(w.end_s)), top + h, GREY)
    canvas.text(14, top + h / 2, "cough prob", vertical=True)
    # events across all panels, then frames and the time axis
    for e in result.events:
        for t, hh in zip(tops, heights, strict=True):
            canvas.rect(float(x_of(e.start_s)), t, max(float(x_of(e.end_s)), float(x_of(e.start_s)) + 2), t + hh,
                        RED, alpha=0.22)
    for t, hh in zip(tops, heights, strict=True):
        canvas.hline(LEFT_PX - 1, LEFT_PX + WIDTH_PX + 1, t - 1, BLACK)
        canvas.hline(LEFT_PX - 1, LEFT_PX + WIDTH_PX + 1, t + hh, BLACK)
        canvas.vline(LEFT_PX - 1, t - 1, t + hh + 1, BLACK)
        canvas.vline(LEFT_PX + WIDTH_PX, t - 1, t + hh + 1, BLACK)
    axis_y = tops[-1] + heights[-1]
    step = _tick_step(duration)
    for tick_s in np.arange(0.0, duration + 1e-9, step).tolist():
        x = float(x_of(tick_s))
        canvas.vline(x, axis_y, axis_y + 4, BLACK)
        canvas.text(x, axis_y + 8, _fmt(round(tick_s, 3)), anchor="centre")
    canvas.text(LEFT_PX + WIDTH_PX / 2, axis_y + 24, "time (s)", anchor="centre")
    return canvas


def stack(*canvases: Canvas) -> Canvas:
    """Canvases one under the other (widths padded to the widest)."""
    width = max(c.width for c in canvases)
    out = Canvas(width, sum(c.height for c in canvases))
    y = 0
    for c in canvases:
        out.image(0, y, c.pixels)
        y += c.height
    return out
