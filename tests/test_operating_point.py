"""The cough operating point: the lowest threshold meeting every group's flagged-fraction target."""

from __future__ import annotations

import numpy as np
import pytest
from acula.export.calibration import choose_operating_point, screening_group


def burst(peak: float, n: int = 12) -> np.ndarray:
    """A recording whose windows 4..6 reach ``peak`` (an event of 3 windows, longer than 0.25 s)."""
    seq = np.full(n, 0.05)
    seq[4:7] = peak
    return seq


def groups(phone_peaks: list[float], steth_peaks: list[float]) -> dict[str, list[np.ndarray]]:
    return {"cough": [burst(0.97), burst(0.9), burst(0.7)],
            "phone non-cough": [burst(p) for p in phone_peaks],
            "stethoscope": [burst(p) for p in steth_peaks]}


def test_lowest_threshold_that_meets_every_target() -> None:
    # 40 phone recordings: three confusable ones at 0.88, 0.8 and 0.6.  At most 3 % (1 of 40) may be flagged,
    # so 'on' must rise above 0.8 (one left: 1/40 = 2.5 %), not above 0.88.
    phone = [0.88, 0.8, 0.6] + [0.1] * 37
    op = choose_operating_point(groups(phone, [0.1] * 100), 1.0, 1.98, 0.48, candidates=np.arange(0.5, 1.0, 0.01))
    assert 0.8 < op["cough_on"] <= 0.81 and op["targets_met"]
    assert op["val_fraction_flagged"]["phone non-cough"] == pytest.approx(1 / 40)
    assert op["val_cough_recording_recall"] == pytest.approx(2 / 3)
    assert op["cough_off"] == pytest.approx(0.8 * op["cough_on"], abs=1e-4)
    # the stethoscope target (1 %) binds when one of 50 stethoscope recordings peaks at 0.93
    op = choose_operating_point(groups(phone, [0.93] + [0.1] * 49), 1.0, 1.98, 0.48,
                                candidates=np.arange(0.5, 1.0, 0.01))
    assert op["cough_on"] > 0.93 and op["val_fraction_flagged"]["stethoscope"] == 0.0
    assert op["val_cough_recording_recall"] == pytest.approx(1 / 3)


def test_unreachable_targets_are_reported_not_hidden() -> None:
    op = choose_operating_point(groups([0.999] * 10, []), 1.0, 1.98, 0.48, candidates=[0.5, 0.9, 0.99])
    assert op["cough_on"] == 0.99 and op["targets_met"] is False
    assert op["val_fraction_flagged"]["phone non-cough"] == 1.0


def test_gated_windows_never_raise_an_event() -> None:
    gated = burst(0.95)
    gated[4:7] = np.nan  # the quality gate dropped the loud windows
    op = choose_operating_point({"cough": [burst(0.95), gated], "phone non-cough": [burst(0.1)]}, 1.0, 1.98, 0.48,
                                candidates=[0.5])
    assert op["val_cough_recording_recall"] == 0.5


def test_groups_of_corpus_rows() -> None:
    assert [screening_group({"modality": m}) for m in ("cough", "speech", "breathing", "heart", "lung",
                                                        "environment")] == \
        ["cough", "phone non-cough", "phone non-cough", "stethoscope", "stethoscope", "other"]


def test_the_threshold_grid_replays_the_sdks_own_event_decisions_on_a_real_cough() -> None:
    """``cough_screening --grid`` replays window probabilities through ``events_at``: at the bundle's own
    threshold it must flag what the SDK's screen flagged, on the shipped real cough and on a quiet breath."""
    from pathlib import Path

    from acula.benchmarks.cough_screening import GROUPS, grid_table, threshold_grid
    from acula.sdk.synth import synth_recording

    from acula import sdk

    model = sdk.load("default", "onnxruntime", "int8")
    cough = sdk.load_audio(Path(sdk.__file__).parent / "data" / "cough_smith2006_p05.flac")
    breath, _ = synth_recording(12.0, seed=3)
    seqs: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
    flagged = {}
    for group, x in (("cough (phone)", cough.samples), ("breathing + speech (phone)", breath)):
        result = model.screen(x, 16000)
        seqs[group].append(np.array([np.nan if w.cough_probability is None else w.cough_probability
                                     for w in result.windows]))
        flagged[group] = bool(result.events)
    assert flagged["cough (phone)"]  # the real cough raises an event at the shipped point
    grid = threshold_grid(seqs, model)
    own = next(r for r in grid["rows"] if r["on"] == grid["bundle_on"])
    assert {g: own["flagged"][g] for g in flagged} == {g: int(v) for g, v in flagged.items()}
    # the cough's peak window sets the highest threshold at which it still raises an event
    peak = float(np.nanmax(seqs["cough (phone)"][0]))
    above = [r for r in grid["rows"] if r["on"] > peak]
    assert all(r["flagged"]["cough (phone)"] == 0 for r in above)
    # no stethoscope recording here: the targets cannot be judged, and no threshold is said to meet them
    assert all(r["meets_targets"] is None for r in grid["rows"]) and grid["lowest_meeting_targets"] is None
    assert any("(the bundle's)" in line for line in grid_table(grid))
