"""The primary protocol's statistics and transforms on synthetic data where the right answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from acula.aligner import protocol as P
from acula.aligner.invariance import TRANSFORMS, NoiseBank, apply_transform


def _data(n_groups: int = 40, per: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per)
    y = (rng.random(groups.size) < 0.4).astype(int)
    return y, rng.normal(size=groups.size), groups


def test_auroc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.integers(0, 2, 60)
        s = rng.integers(0, 6, 60).astype(float)  # many ties
        if len(set(y)) == 2:
            assert P.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(P.auroc(np.ones(5), np.arange(5)))


def test_a_perfect_scorer_gets_one_with_a_degenerate_interval_and_an_inverted_one_zero():
    y, _, g = _data()
    assert P.auroc(y, y) == 1.0 and P.group_bootstrap(y, y.astype(float), g, n=200) == (1.0, 1.0)
    assert P.auroc(y, -y) == 0.0


def test_a_random_scorer_interval_covers_chance():
    y, s, g = _data(n_groups=60)
    lo, hi = P.group_bootstrap(y, s, g, n=300)
    assert lo < 0.5 < hi and hi - lo > 0.08  # whole groups resampled: a real interval, not a point


def test_paired_difference_of_identical_systems_is_exactly_zero_and_a_better_one_wins():
    y, s, g = _data(n_groups=60)
    same = P.paired_bootstrap(y, s, s, g, n=200)
    assert same["diff"] == 0 and same["lo"] == 0 and same["hi"] == 0
    better = P.paired_bootstrap(y, s + 2 * y, s, g, n=200)
    assert better["diff"] > 0.2 and better["lo"] > 0 and better["p_a_better"] == 1.0


def test_a_site_identity_scorer_is_exposed_by_the_within_database_view():
    """Databases with different abnormal rates; the score knows only the database.  Pooled it looks good; within
    each database it is at chance, and the database-prior baseline is exactly this scorer."""
    rng = np.random.default_rng(2)
    db = np.repeat(np.array(["a", "b", "c"]), 100)
    rate = {"a": 0.7, "b": 0.2, "c": 0.4}
    y = np.asarray([rng.random() < rate[d] for d in db], int)
    site = np.asarray([rate[d] for d in db])
    assert P.auroc(y, site) > 0.7
    assert P.auroc(y, P.within_group_standardise(site, db)) == 0.5
    per = P.per_group_auroc(y, site, db)
    assert all(v["auroc"] == 0.5 for v in per.values())
    prior = P.prior_baseline(db, y, db)
    assert P.auroc(y, prior) == pytest.approx(P.auroc(y, site))
    # a real signal survives standardisation
    real = y + rng.normal(0, 0.5, y.size) + site * 3
    assert P.auroc(y, P.within_group_standardise(real, db)) > 0.8
    assert P.worst_group(P.per_group_auroc(y, real, db))[1] > 0.8


def test_aggregate_takes_any_positive_and_max_or_mean():
    ids = np.array(["r1", "r1", "r2", "r2", "r2"])
    s = np.array([0.1, 0.9, 0.2, 0.3, 0.4])
    y = np.array([0, 1, 0, 0, 0])
    u, agg, lab = P.aggregate(s, ids, y, "max")
    assert list(u) == ["r1", "r2"] and list(agg) == [0.9, 0.4] and list(lab) == [1, 0]
    assert P.aggregate(s, ids, how="mean")[1] == pytest.approx([0.5, 0.3])
    with pytest.raises(ValueError):
        P.aggregate(s, ids, how="median")


def test_nested_group_cv_cannot_memorise_a_group():
    """Labels are per group and random; each group has its own feature fingerprint.  Grouped CV never scores a
    group it trained on, so memorising fingerprints buys nothing: chance."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(50), 6)
    y = np.repeat(rng.integers(0, 2, 50), 6)
    x = rng.normal(size=(50, 30))[groups] + rng.normal(0, 0.05, (groups.size, 30))
    s = P.nested_group_cv(x, y, groups)
    assert abs(P.auroc(y, s) - 0.5) < 0.2


def test_fit_probe_learns_a_linear_signal_and_chooses_c_on_training_records():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(40), 5)
    y = rng.integers(0, 2, groups.size)
    x = rng.normal(size=(groups.size, 8))
    x[:, 0] += 1.5 * y
    probe = P.fit_probe(x, y, groups)
    assert probe.chosen_c_ in P.PROBE_C_GRID
    xt = rng.normal(size=(100, 8))
    yt = rng.integers(0, 2, 100)
    xt[:, 0] += 1.5 * yt
    assert P.auroc(yt, probe.decision_function(xt)) > 0.8


# -------------------------------------------------------------------------------------------- transforms


def _tone(rate: int = 16000, seconds: float = 2.0, high_hz: float = 3000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * high_hz * t)).astype(np.float32)


def _band_ratio(x: np.ndarray, rate: int = 16000) -> float:
    """A scale-invariant scorer: share of energy below 1 kHz."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    return float(spec[f < 1000].sum() / spec.sum())


def _bank() -> NoiseBank:
    rng = np.random.default_rng(0)
    return NoiseBank([("rain", rng.normal(0, 0.1, 8000).astype(np.float32)),
                      ("dog_bark", rng.normal(0, 0.5, 8000).astype(np.float32))])


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_keeps_length_type_and_is_deterministic(name: str):
    x = _tone()
    a = apply_transform(name, x, 16000, seed=[0, 7], noise=_bank())
    b = apply_transform(name, x, 16000, seed=[0, 7], noise=_bank())
    assert a.dtype == np.float32 and a.shape == x.shape and np.all(np.isfinite(a))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["gain-6", "gain-12", "gain-24", "gain-40", "peak-1"])
def test_gain_transforms_leave_a_scale_invariant_scorer_unchanged(name: str):
    x = _tone()
    assert _band_ratio(apply_transform(name, x, 16000)) == pytest.approx(_band_ratio(x), rel=1e-4)


def test_peak_normalisation_and_gain_levels():
    x = _tone()
    assert 20 * np.log10(np.abs(apply_transform("peak-1", x, 16000)).max()) == pytest.approx(-1.0, abs=1e-3)
    ratio = np.abs(apply_transform("gain-24", x, 16000)).max() / np.abs(x).max()
    assert 20 * np.log10(ratio) == pytest.approx(-24.0, abs=1e-3)


def test_low_pass_and_phone_band_remove_the_high_tone():
    x = _tone()
    for name in ("lp1k", "lp2k", "bell"):
        assert _band_ratio(apply_transform(name, x, 16000)) > 0.98, name
    x6k = _tone(high_hz=6000.0)  # above a phone line's 4 kHz
    for name in ("phone8k", "mulaw8k"):
        assert _band_ratio(apply_transform(name, x6k, 16000)) > 0.98, name
        assert _band_ratio(apply_transform(name, x, 16000)) < 0.95, name  # 3 kHz passes a phone line
    assert _band_ratio(apply_transform("diaphragm", x, 16000)) < _band_ratio(x)


def test_a_phone_call_delivers_8_khz_mu_law_codes_and_the_mulaw8k_transform_is_that_call_brought_back():
    from acula.aligner.invariance import phone_call_8k

    x = _tone(high_hz=6000.0)
    call = phone_call_8k(x, 16000)
    assert call.shape == (x.size // 2,)
    assert _band_ratio(np.repeat(call, 2).astype(np.float32)) > 0.98  # the 6 kHz tone is gone at 8 kHz
    coded = phone_call_8k(x, 16000, mulaw=True)
    assert coded.shape == call.shape and not np.array_equal(coded, call)
    # 8-bit mu-law: at most 256 distinct values, each a G.711 code's level
    assert np.unique(coded).size <= 256
    assert np.max(np.abs(coded - call)) < 0.05 * np.max(np.abs(call))
    back = apply_transform("mulaw8k", x, 16000)
    assert np.array_equal(back, apply_transform("mulaw8k", x, 16000)) and back.shape == x.shape
    # at 8 kHz or below a call is the samples themselves (mu-law coded with mulaw), in their own dtype
    low = x[::4].copy()
    assert phone_call_8k(low, 4000) is low
    coded_low = phone_call_8k(low, 4000, mulaw=True).astype(np.float32)
    assert np.array_equal(coded_low, apply_transform("mulaw8k", low, 4000))


def test_noise_reaches_its_snr_and_never_adds_the_scored_clips_own_class():
    x = _tone()
    y = apply_transform("noise10", x, 16000, noise=_bank(), exclude="dog_bark")
    noise = y - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.1)
    assert np.std(noise) < 0.2 * np.std(x) * 3  # the quiet "rain" clip scaled, not the dog bark


def test_unknown_transform_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown transform 'gain\+6'"):
        apply_transform("gain+6", _tone(), 16000)


def test_esc10_noise_bank_loads_non_body_classes(data_dir: Path):
    bank = NoiseBank.from_esc10(str(data_dir / "esc10"), per_class=1)
    names = {k for k, _ in bank.clips}
    assert names and names <= set(NoiseBank.CLASSES)


# -------------------------------------------------------------------------------------------- supervised labels


def test_supervised_heads_mask_records_that_cannot_answer():
    from acula.aligner.supervised import SUPERVISED_HEADS, head_labels

    rows = [{"dataset": "coswara", "modality": "cough", "metadata": {}},
            {"dataset": "physionet2016", "modality": "heart", "outcome": "abnormal", "metadata": {}},
            {"dataset": "icbhi", "modality": "lung", "metadata": {"crackles": 1, "wheezes": 0, "diagnosis": "COPD"}}]
    labels, mask = head_labels(rows)
    heads = list(SUPERVISED_HEADS)
    assert mask[0].tolist() == [1, 0, 0, 0, 0] and labels[0, heads.index("cough")] == 1
    assert mask[1].tolist() == [0, 1, 0, 0, 0] and labels[1, heads.index("heart_abnormal")] == 1
    assert mask[2].tolist() == [0, 0, 1, 1, 1]
    assert labels[2, heads.index("crackles")] == 1 and labels[2, heads.index("wheezes")] == 0
    assert labels[2, heads.index("copd")] == 1


def test_a_source_clipped_record_is_hidden_by_resampling_and_not_counted_as_a_valid_record_lost():
    """An 8 kHz recording on the rails whose flat tops wobble by a few 16-bit steps (as ICBHI's Meditron
    recordings do): at its own rate the gate flags it; in its 16 kHz copy the wobble rings at 4 kHz across the
    flat tops and it passes; a 2 kHz low-pass removes the ringing and the gate flags it again.  The invariance
    count keeps such records apart from valid recordings that lost their score."""
    from types import SimpleNamespace

    from acula.aligner.primary import TaskData, invariance_row
    from acula.sdk.audio import resample
    from acula.sdk.quality import assess_quality

    t = np.arange(16000) / 8000
    source = np.clip(2.5 * np.sin(2 * np.pi * 150 * t), -1, 1)
    rail = np.abs(source) >= 1
    source[rail] *= 1 - 4e-4 * (np.random.default_rng(0).random(rail.sum()) < 0.3)
    source = source.astype(np.float32)
    assert assess_quality(source).clipped
    copy = resample(source, 8000, 16000)
    assert not assess_quality(copy).clipped
    assert assess_quality(apply_transform("lp2k", copy, 16000)).clipped

    rows = [{"dataset": "icbhi", "record_id": f"icbhi/r{k}/c1", "group_id": f"g{k}", "split": "test",
             "audio": {"clipped": k == 0}, "metadata": {"crackles": k % 2}} for k in range(4)]
    task = {"name": "crackles", "datasets": ["icbhi"], "field": "crackles", "positive": ["1"]}
    td = TaskData(SimpleNamespace(rows=rows), task)
    assert td.source_valid.tolist() == [False, True, True, True]
    probe = SimpleNamespace(predict_proba=lambda f: np.c_[1 - f[:, :1], f[:, :1]], decision_function=lambda f: f[:, 0])
    feats = np.linspace(0.1, 0.9, 4)[:, None]
    clean = np.array([0.2, 0.7, 0.4, 0.9])
    moved = np.array([np.nan, np.nan, 0.4, 0.9])  # the clipped record and one valid record lost their score
    row = invariance_row(td, probe, (feats, clean, clean), (feats, moved, moved))
    assert row["n_lost"] == 1 and row["n_lost_source_clipped"] == 1
    # the gain target read without the record clipped at source: its shift is kept apart, named
    moved = np.array([0.5, 0.75, 0.41, 0.9])
    row = invariance_row(td, probe, (feats, clean, clean), (feats, moved, moved))
    assert row["native_shift_max"] == pytest.approx(0.3)
    assert row["native_shift_max_unclipped"] == pytest.approx(0.05)
    assert row["native_shift_mean_unclipped"] == pytest.approx((0.05 + 0.01 + 0.0) / 3)
    assert row["native_shift_source_clipped"] == {"icbhi/r0/c1": 0.3}
    # what the SDK scores at the source rate decides where it was measured: record 1 is not scorable there
    td = TaskData(SimpleNamespace(rows=rows), task, scorable={0: True, 1: False})
    assert td.source_valid.tolist() == [True, False, True, True]
