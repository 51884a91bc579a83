"""Cough events: hysteresis, minimum duration, refractory period, quality gating."""

from __future__ import annotations

from acula.sdk.screening import EventDetector, ScreeningConfig


def run(probs, cfg=None, hop=0.5, width=1.0):
    d = EventDetector(cfg or ScreeningConfig(on=0.6, off=0.4, min_duration_s=1.2, refractory_s=2.0))
    events = []
    for i, p in enumerate(probs):
        events += d.update(i * hop, i * hop + width, p)
    return events + d.flush()


def test_hysteresis_keeps_an_event_open_between_off_and_on():
    events = run([0.1, 0.7, 0.5, 0.45, 0.1, 0.1])
    assert [(e.start_s, e.end_s, e.confidence) for e in events] == [(0.5, 2.5, 0.7)]


def test_short_blips_are_dropped():
    assert run([0.1, 0.9, 0.1, 0.1]) == []


def test_refractory_period_suppresses_a_second_onset():
    events = run([0.7, 0.7, 0.7, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9])
    assert [e.start_s for e in events] == [0.0, 5.5]


def test_gated_windows_close_an_open_event_and_never_open_one():
    assert [(e.start_s, e.end_s) for e in run([0.9, 0.9, 0.9, None, 0.9])] == [(0.0, 2.0)]
    assert run([None, None, None]) == []


def test_smoothing_averages_over_recent_windows():
    cfg = ScreeningConfig(on=0.6, off=0.4, min_duration_s=0.0, refractory_s=0.0, smoothing_windows=2)
    assert run([0.1, 0.9, 0.1, 0.1], cfg) == []  # the average never reaches 0.6
