"""Cough events split into single coughs on the energy envelope: bouts, long bursts, chunking, real singles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.screening import Event, EventDetector, ScreeningConfig

RATE = 16000
HOP_S, WINDOW_S = 0.48, 1.98
CFG = ScreeningConfig(on=0.6, off=0.4, min_duration_s=0.25, refractory_s=1.0)


def burst(duration_s: float, decay_s: float, seed: int) -> np.ndarray:
    """Broadband noise with a sharp onset and an exponential decay, like a cough's explosive phase."""
    t = np.arange(int(duration_s * RATE)) / RATE
    return (0.5 * np.exp(-t / decay_s) * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def recording(duration_s: float, parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """A -60 dBFS noise floor with ``parts`` (onset in seconds, samples) added."""
    x = 1e-3 * np.random.default_rng(99).standard_normal(int(duration_s * RATE)).astype(np.float32)
    for onset_s, part in parts:
        i = int(onset_s * RATE)
        x[i : i + part.size] += part[: x.size - i]
    return x


def three_coughs() -> np.ndarray:
    # 300 ms bursts 400 ms apart: 100 ms gaps, shorter than min_gap_s, so only the onsets tell them apart
    return recording(5.0, [(1.0 + 0.4 * k, burst(0.3, 0.08, k)) for k in range(3)])


def probability(start_s: float, end_s: float, onsets_s: list[float]) -> float:
    return 0.9 if any(start_s < t + 0.3 and end_s > t for t in onsets_s) else 0.1


def detect(x: np.ndarray, onsets_s: list[float], chunk: int | list[int], cfg: ScreeningConfig = CFG
           ) -> list[Event]:
    """Samples in chunks, then each window once its last sample has been seen, as sdk.Stream feeds them."""
    det, events, seen, k, i = EventDetector(cfg, sample_rate_hz=RATE), [], 0, 0, 0
    sizes = chunk if isinstance(chunk, list) else [chunk]
    while seen < x.size:
        n = sizes[i % len(sizes)]
        det.accept_samples(x[seen : seen + n])
        seen, i = min(x.size, seen + n), i + 1
        while round((k * HOP_S + WINDOW_S) * RATE) <= seen:
            s = round(k * HOP_S, 4)
            events += det.update(s, round(s + WINDOW_S, 4), probability(s, s + WINDOW_S, onsets_s))
            k += 1
    return events + det.flush()


def test_three_bursts_400_ms_apart_in_one_window_are_three_coughs():
    events = detect(three_coughs(), [1.0, 1.4, 1.8], RATE)
    assert len(events) == 3
    for e, onset in zip(events, [1.0, 1.4, 1.8], strict=True):
        assert abs(e.start_s - onset) <= 0.03 and e.end_s <= onset + 0.41
        assert e.confidence == 0.9


def test_without_the_split_the_bout_is_one_event():
    events = detect(three_coughs(), [1.0, 1.4, 1.8], RATE, replace(CFG, split_coughs=False))
    assert len(events) == 1 and events[0].start_s < 1.0 < 1.8 < events[0].end_s


def test_one_long_burst_is_one_cough():
    t = np.arange(int(1.2 * RATE)) / RATE
    wobble = 10 ** (3 * np.sin(2 * np.pi * 3 * t) / 20)  # +-3 dB, slow: no onset inside
    long = (0.3 * wobble * np.random.default_rng(5).standard_normal(t.size)).astype(np.float32)
    events = detect(recording(5.0, [(1.5, long)]), [1.5], RATE)
    assert len(events) == 1
    assert abs(events[0].start_s - 1.5) <= 0.03 and abs(events[0].end_s - 2.7) <= 0.05


def test_refined_events_do_not_depend_on_chunking():
    x = recording(9.0, [(1.0 + 0.4 * k, burst(0.3, 0.08, k)) for k in range(3)] + [(6.0, burst(0.5, 0.15, 7))])
    onsets = [1.0, 1.4, 1.8, 6.0]
    whole = detect(x, onsets, x.size)
    assert len(whole) == 4
    for chunk in (1, 160, 511, 7680, [7, 3000, 1, 999]):
        assert detect(x, onsets, chunk) == whole, chunk


def test_without_samples_the_window_level_event_is_kept_whole():
    det = EventDetector(CFG, sample_rate_hz=RATE)  # feature mode: no accept_samples
    events = det.update(0.0, 1.98, 0.9) + det.update(0.48, 2.46, 0.1) + det.flush()
    assert [(e.start_s, e.end_s, e.confidence) for e in events] == [(0.0, 1.98, 0.9)]


def test_a_stream_splits_coughs_whatever_the_chunking(tmp_path: Path):
    pytest.importorskip("onnx")
    from acula import sdk
    from tests.toy_bundle import make_toy_bundle

    model = sdk.load(make_toy_bundle(tmp_path / "bundle"), precision="fp32")
    # every scored window is "cough": the split alone decides the events (the toy bundle's windows are
    # 0.54 s; where the quiet floor alone is "cough", no burst stands out and the window-level event stays)
    model.screening = replace(CFG, on=0.0, off=0.0)
    x = three_coughs()
    whole = model.screen(x, RATE)
    bout = [e for e in whole.events if e.start_s < 2.5]
    assert [round(e.start_s, 1) for e in bout] == [1.0, 1.4, 1.8]
    assert whole.coughs_per_hour == pytest.approx(len(whole.events) / 5.0 * 3600)
    for chunk in (160, 4096, 12345):
        stream = model.stream()
        for i in range(0, x.size, chunk):
            stream.accept(x[i : i + chunk], RATE)
        stream.flush()
        assert stream.events == whole.events, chunk


@pytest.mark.shared_data
@pytest.mark.parametrize("channel", ["none", "mulaw8k"])
def test_each_smith2006_recording_is_exactly_one_cough(data_dir: Path, channel: str):
    from acula.aligner.invariance import apply_transform

    from acula import sdk

    files = sorted((data_dir / "smith2006_cough" / "audio").glob("*.flac"))
    if not files:
        pytest.skip("smith2006_cough is absent from the shared data")
    counts = {}
    for path in files:
        x = apply_transform(channel, sdk.load_audio(path, RATE).samples, RATE)
        det = EventDetector(CFG, sample_rate_hz=RATE)
        det.accept_samples(x)
        counts[path.stem] = len(det.update(0.0, round(x.size / RATE, 4), 0.9) + det.flush())
    assert counts == {p.stem: 1 for p in files}
