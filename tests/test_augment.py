"""Device-robustness augmentations on normalised log-mel batches: seeded, shape-keeping, doing what they say."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from acula.aligner.augment import CUTOFFS_HZ, augment_logmel, augment_logmel_views, band_centres_hz  # noqa: E402
from acula.sdk.frontend_config import FrontendConfig  # noqa: E402

CFG = FrontendConfig()


def batch(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(0.0, 0.3, (4, 20, CFG.n_mels)).astype(np.float32))


def test_band_centres_rise_between_the_front_end_limits():
    c = band_centres_hz(CFG)
    assert c.shape == (CFG.n_mels,) and bool(torch.all(torch.diff(c) > 0))
    assert CFG.f_min_hz < float(c[0]) and float(c[-1]) < CFG.f_max_hz


def test_augmentation_keeps_the_shape_and_is_seeded():
    x = batch()
    a = augment_logmel(x, CFG, torch.Generator().manual_seed(3))
    b = augment_logmel(x, CFG, torch.Generator().manual_seed(3))
    c = augment_logmel(x, CFG, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_with_everything_off_it_is_the_identity():
    x = batch()
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(0), p_band_limit=0.0, gain_db=0.0, eq_db=0.0,
                         p_noise=0.0)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_gain_alone_shifts_every_band_of_a_clip_by_the_same_decibels():
    x = batch()
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(1), p_band_limit=0.0, gain_db=6.0, eq_db=0.0,
                         p_noise=0.0)
    shift_db = (out - x) * CFG.norm_std_db
    per_clip = shift_db.reshape(4, -1)
    assert torch.allclose(per_clip, per_clip[:, :1].expand_as(per_clip), atol=1e-3)
    assert float(per_clip.abs().max()) <= 6.0 + 1e-3


def test_band_limiting_cuts_only_above_the_cutoff():
    x = batch()
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(2), p_band_limit=1.0, gain_db=0.0, eq_db=0.0,
                         p_noise=0.0)
    drop_db = ((x - out) * CFG.norm_std_db).mean(1)  # (batch, n_mels), >= 0
    centres = band_centres_hz(CFG)
    assert float(drop_db.min()) > -1e-3
    below = centres < min(CUTOFFS_HZ)
    assert float(drop_db[:, below].abs().max()) < 1e-3  # bands under every cutoff pass untouched
    assert float(drop_db[:, -1].min()) > 10.0  # the top band (near 8 kHz) is at least 1 octave above any cutoff


def test_noise_only_adds_power():
    x = batch() - 1.0  # quiet clips, so the added noise shows
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(5), p_band_limit=0.0, gain_db=0.0, eq_db=0.0,
                         p_noise=1.0)
    assert bool(torch.all(out >= x - 1e-5)) and float((out - x).max()) > 0.0


def test_butterworth_band_limit_is_seeded_cuts_more_above_than_below_and_never_boosts():
    x = batch()
    kw = dict(p_band_limit=1.0, gain_db=0.0, eq_db=0.0, p_noise=0.0, band_filter="butterworth")
    a = augment_logmel(x, CFG, torch.Generator().manual_seed(5), **kw)
    b = augment_logmel(x, CFG, torch.Generator().manual_seed(5), **kw)
    assert torch.equal(a, b)
    drop_db = ((x - a) * CFG.norm_std_db).mean(1)  # (batch, n_mels)
    centres = band_centres_hz(CFG)
    assert float(drop_db.min()) > -1e-3
    assert float(drop_db[:, centres < 200].abs().max()) < 0.1  # far below the lowest cutoff (0.8 kHz): flat
    assert float(drop_db[:, -1].min()) > 10.0  # near 8 kHz, at least an octave above the highest cutoff
    for row in drop_db:  # a low-pass: the cut only grows with frequency (until the front end's floor stops it)
        unfloored = row[row < 30.0]
        assert bool(torch.all(torch.diff(unfloored) > -1e-3))


def test_butterworth_band_limit_is_the_analogue_filter_response_at_the_band_centres():
    from acula.aligner.augment import BUTTERWORTH_CUTOFF_HZ, BUTTERWORTH_ORDERS
    from scipy.signal import butter, freqs

    # one clip, everything else off.  A Butterworth magnitude obeys 10^(drop/10) - 1 = (f / fc)^(2n): recover n
    # and fc from the drop by a line in log-log, then compare every band with scipy's analogue filter response
    x = torch.full((1, 4, CFG.n_mels), 3.0)  # loud enough that no band reaches the floor
    centres = band_centres_hz(CFG).double().numpy()
    for seed in range(6):
        out = augment_logmel(x, CFG, torch.Generator().manual_seed(seed), p_band_limit=1.0, gain_db=0.0,
                             eq_db=0.0, p_noise=0.0, band_filter="butterworth")
        drop = ((x - out) * CFG.norm_std_db)[0, 0].double().numpy()
        ok = (drop > 0.5) & (drop < 60)
        slope, icpt = np.polyfit(np.log(centres[ok]), np.log(10 ** (drop[ok] / 10) - 1), 1)
        order, cutoff = slope / 2, float(np.exp(-icpt / slope))
        assert abs(order - round(order)) < 0.05 and BUTTERWORTH_ORDERS[0] <= round(order) <= BUTTERWORTH_ORDERS[1]
        assert BUTTERWORTH_CUTOFF_HZ[0] * 0.99 <= cutoff <= BUTTERWORTH_CUTOFF_HZ[1] * 1.01
        b, a = butter(int(round(order)), 2 * np.pi * cutoff, "lowpass", analog=True)
        _, h = freqs(b, a, worN=2 * np.pi * centres)
        scipy_db = -20 * np.log10(np.abs(h))
        keep = scipy_db < 60
        assert np.max(np.abs(scipy_db - drop)[keep]) < 0.1, (seed, order, cutoff)


def test_an_unknown_band_filter_is_refused():
    from acula.aligner.config import AlignConfig

    with pytest.raises(ValueError, match="band_filter"):
        augment_logmel(batch(), CFG, torch.Generator().manual_seed(0), band_filter="brickwall")
    with pytest.raises(ValueError, match="band_filter"):
        AlignConfig(band_filter="brickwall")


@pytest.mark.parametrize(("seed", "total", "cell", "next_draw"), [
    (0, -832.0834224411592, -0.5818127393722534, 0.7305143475532532),
    (1, -178.964764006545, -0.3013484477996826, 0.393856406211853),
    (2, -525.5538296097875, -0.409679114818573, 0.6813408136367798),
])
def test_the_rolloff_path_draws_as_it_did_before_butterworth_existed(seed, total, cell, next_draw):
    # values of the augmentation as it stood at f316775 (before band_filter), band limit and noise always on: a
    # stored config must train the same model, so neither the values nor the generator's later draws may move
    g = torch.Generator().manual_seed(seed)
    out = augment_logmel(batch(), CFG, g, p_band_limit=1.0, p_noise=1.0)
    # tolerances for float32 rounding that may differ between CPUs; a draw moved changes these entirely
    assert float(out.double().sum()) == pytest.approx(total, abs=1e-2)
    assert float(out[1, 3, 60]) == pytest.approx(cell, rel=1e-5)
    assert float(torch.rand(1, generator=g)) == next_draw


# ------------------------------------------------------------------------------------------ real backgrounds


def _db(x: torch.Tensor) -> torch.Tensor:
    return x * CFG.norm_std_db + CFG.norm_mean_db


def test_background_off_draws_as_before():
    # p_background 0 (the default) or no crops: the same values and the same later draws as without the field
    x, bg = batch(0), batch(5)
    g0, g1, g2 = (torch.Generator().manual_seed(7) for _ in range(3))
    a = augment_logmel(x, CFG, g0, p_band_limit=1.0, p_noise=1.0)
    b = augment_logmel(x, CFG, g1, p_band_limit=1.0, p_noise=1.0, background=bg)
    c = augment_logmel(x, CFG, g2, p_band_limit=1.0, p_noise=1.0, p_background=1.0, background=None)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert len({float(torch.rand(1, generator=g)) for g in (g0, g1, g2)}) == 1


def test_a_background_adds_power_at_5_to_30_db_snr():
    x, bg = batch(0), batch(5) + 1.0  # backgrounds well above the floor
    off = dict(p_band_limit=0.0, gain_db=0.0, eq_db=0.0, p_noise=0.0)
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(0), **off, p_background=1.0, background=bg)
    p_in, p_out = torch.pow(10.0, _db(x) / 10), torch.pow(10.0, _db(out) / 10)
    assert bool(torch.all(p_out >= p_in * (1 - 1e-4)))  # power only adds
    snr_db = 10 * torch.log10(p_in.mean((1, 2)) / (p_out - p_in).mean((1, 2)))
    assert bool(torch.all(snr_db > 5 - 0.05)) and bool(torch.all(snr_db < 30 + 0.05)), snr_db
    # the added power follows the background's spectrum: its loudest band gains the most
    added = (p_out - p_in).mean(1)
    bg_power = torch.pow(10.0, _db(bg) / 10).mean(1)
    assert bool(torch.all(added.argmax(1) == bg_power.argmax(1)))


def test_the_loudest_background_is_set_by_background_snr_min_db():
    x, bg = batch(0), batch(5) + 1.0
    off = dict(p_band_limit=0.0, gain_db=0.0, eq_db=0.0, p_noise=0.0, p_background=1.0, background=bg)

    def snr(out: torch.Tensor) -> torch.Tensor:
        p_in, p_out = torch.pow(10.0, _db(x) / 10), torch.pow(10.0, _db(out) / 10)
        return 10 * torch.log10(p_in.mean((1, 2)) / (p_out - p_in).mean((1, 2)))

    mild = snr(augment_logmel(x, CFG, torch.Generator().manual_seed(0), **off, background_snr_min_db=10.0))
    assert bool(torch.all(mild > 10 - 0.05)) and bool(torch.all(mild < 30 + 0.05)), mild
    # the same draws, mapped onto 10-30 instead of 5-30 dB: every crop's SNR rises, none falls
    wide = snr(augment_logmel(x, CFG, torch.Generator().manual_seed(0), **off))
    assert bool(torch.all(mild >= wide - 0.05)) and float((mild - wide).max()) > 0.5
    with pytest.raises(ValueError, match="background_snr_min_db"):
        from acula.aligner.config import AlignConfig

        AlignConfig(p_background=0.2, background_snr_min_db=35.0).check_augment()


def test_a_silent_background_crop_is_left_out_not_amplified():
    x = batch(0)
    silent = torch.full_like(x, (10 * float(np.log10(CFG.amin_power)) - CFG.norm_mean_db) / CFG.norm_std_db)
    out = augment_logmel(x, CFG, torch.Generator().manual_seed(0), p_band_limit=0.0, gain_db=0.0, eq_db=0.0,
                         p_noise=0.0, p_background=1.0, background=silent)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_background_crops_must_match_the_batch():
    with pytest.raises(ValueError, match="shaped like the batch"):
        augment_logmel(batch(0), CFG, torch.Generator().manual_seed(0), p_background=1.0, background=batch(0)[:2])
    with pytest.raises(ValueError, match="p_background"):
        from acula.aligner.config import AlignConfig

        AlignConfig(p_background=1.5).check_augment()


def test_background_crops_are_seeded_and_need_a_pool():
    from acula.aligner.augment import background_crops
    from acula.aligner.config import AlignConfig
    from acula.aligner.data import FeatureBank

    frames = np.random.default_rng(0).normal(size=(300, CFG.n_mels)).astype(np.float16)
    bank = FeatureBank(frames, np.array([0, 100, 250, 300]))
    on = AlignConfig(p_background=0.5)
    a = background_crops(on, bank, [0, 1, 2], 4, 120, seed=0, step=3)
    b = background_crops(on, bank, [0, 1, 2], 4, 120, seed=0, step=3)
    c = background_crops(on, bank, [0, 1, 2], 4, 120, seed=0, step=4)
    assert a is not None and a.shape == (4, 120, CFG.n_mels) and torch.equal(a, b) and not torch.equal(a, c)
    assert background_crops(AlignConfig(), bank, [], 4, 120, seed=0, step=0) is None
    with pytest.raises(ValueError, match="ESC-10 background clips"):
        background_crops(on, bank, [], 4, 120, seed=0, step=0)


def test_the_background_pool_never_holds_an_evaluation_noise_clip(data_dir):
    from pathlib import Path

    from acula.aligner.augment import background_pool
    from acula.aligner.corpus import load_corpus
    from acula.aligner.invariance import NoiseBank

    corpus_dir = Path(__file__).resolve().parents[1] / "runs" / "corpus"
    if not (corpus_dir / "manifest.jsonl").is_file():
        pytest.skip("runs/corpus (acula corpus build on ../shared/data) is absent")
    corpus = load_corpus(corpus_dir)
    pool = background_pool(corpus)
    held = NoiseBank.esc10_files(corpus.data_root / "esc10")
    assert len(pool) > 100 and held
    assert all(corpus.rows[i]["split"] == "train" and corpus.rows[i]["dataset"] == "esc10" for i in pool)
    assert not {corpus.audio_path(i).resolve() for i in pool} & {f.resolve() for _, f in held}
    # nor another take of an evaluation clip's source recording (1-172649-E beside 1-172649-A)
    sources = {"-".join(f.stem.split("-")[:2]) for _, f in held}
    assert not {"-".join(corpus.audio_path(i).stem.split("-")[:2]) for i in pool} & sources
    classes = {NoiseBank.class_of(corpus.audio_path(i).parent.name) for i in pool}
    assert classes == set(NoiseBank.CLASSES)
    # a subset of the classes draws from those classes' clips only, and an unknown class is refused
    steady = ("rain", "sea_waves", "helicopter", "chainsaw")
    some = background_pool(corpus, steady)
    assert set(some) < set(pool) and {NoiseBank.class_of(corpus.audio_path(i).parent.name) for i in some} == set(steady)
    with pytest.raises(ValueError, match="non-empty subset"):
        background_pool(corpus, ("dog_bark",))


def test_the_background_pool_fails_closed_without_the_esc10_folder(tmp_path):
    from acula.aligner.augment import background_pool
    from acula.aligner.corpus import Corpus

    class _Record:  # the one field background_pool reads of a corpus record
        path = "esc10/002 - Rain/1-17367-A.ogg"

    corpus = Corpus(tmp_path, tmp_path / "absent", [_Record()], [{"dataset": "esc10", "split": "train"}],  # type: ignore[list-item]
                    np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="not a directory"):
        background_pool(corpus)


def test_the_two_views_share_every_draw_and_differ_only_by_the_background():
    # the denoising distillation's teacher view is the crop without its background, its student view the crop
    # with it: each equals augment_logmel's own output under the same seed
    x, bg = batch(0), batch(5) + 1.0
    kw = dict(p_band_limit=1.0, p_noise=1.0, p_background=1.0)
    clean, mixed = augment_logmel_views(x, CFG, torch.Generator().manual_seed(7), **kw, background=bg)
    assert torch.equal(mixed, augment_logmel(x, CFG, torch.Generator().manual_seed(7), **kw, background=bg))
    assert torch.equal(clean, augment_logmel(x, CFG, torch.Generator().manual_seed(7), **kw, background=None))
    assert float((mixed - clean).abs().max()) > 0.1 and bool(torch.all(mixed >= clean - 1e-5))
    same = augment_logmel_views(x, CFG, torch.Generator().manual_seed(7), **kw, background=None)
    assert torch.equal(same[0], same[1])


def test_follow_noise_off_is_the_identity_and_draws_nothing():
    from acula.aligner.augment import follow_noise

    x, g = batch(), torch.Generator().manual_seed(5)
    assert follow_noise(x, CFG, g, 0.0) is x
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_follow_noise_sits_snr_db_under_each_frames_own_power_and_stops_at_max_hz():
    """A loud frame and a frame 40 dB quieter each get noise at the same SNR below their own power (a codec's
    floor follows the signal), white up to 4 kHz and none in the bands above."""
    from acula.aligner.augment import follow_noise
    from acula.sdk.frontend import mel_filterbank

    db = torch.full((1, 2, CFG.n_mels), -90.0)  # near the floor everywhere but the lowest band
    db[0, 0, 0], db[0, 1, 0] = 0.0, -40.0
    x = (db - CFG.norm_mean_db) / CFG.norm_std_db
    y = follow_noise(x, CFG, torch.Generator().manual_seed(0), 1.0, (30.0, 30.0))
    added = torch.pow(10.0, (y * CFG.norm_std_db + CFG.norm_mean_db) / 10) - torch.pow(10.0, db / 10)
    total = added.sum(2)  # noise power per frame
    assert torch.allclose(10 * torch.log10(total / torch.pow(10.0, db.max(2).values / 10)),
                          torch.full((1, 2), -30.0), atol=0.05)
    centres = band_centres_hz(CFG)
    above = centres > 4000 * 1.05
    assert float(added[0, 0, above].max()) < 1e-3 * float(added[0, 0, ~above].max())
    # white: above the lowest band, each band's share follows its filter's weight on the bins below 4 kHz
    bins_hz = np.linspace(0.0, CFG.sample_rate_hz / 2, CFG.n_freqs)
    w = mel_filterbank(CFG)[bins_hz <= 4000].sum(0)
    share = (added[0, 0] / total[0, 0]).numpy()
    np.testing.assert_allclose(share[1:40], (w / w.sum())[1:40], rtol=0.02)


def test_follow_noise_reaches_about_a_share_p_of_the_crops_and_is_seeded():
    from acula.aligner.augment import follow_noise

    x = torch.from_numpy(np.random.default_rng(1).normal(0.0, 0.3, (400, 4, CFG.n_mels)).astype(np.float32))
    a = follow_noise(x, CFG, torch.Generator().manual_seed(2), 0.5)
    b = follow_noise(x, CFG, torch.Generator().manual_seed(2), 0.5)
    changed = (a != x).flatten(1).any(1).float().mean()
    assert torch.equal(a, b) and 0.4 < float(changed) < 0.6
    assert bool(torch.all(a >= x - 1e-6))  # noise only adds power


def test_follow_noise_takes_a_frames_power_over_all_its_bands_and_one_snr_per_crop_within_the_range():
    """A frame whose energy is spread over many bands gets noise at the SNR below their sum (not below its loudest
    band); the SNR is drawn once per crop, inside ``snr_db``."""
    from acula.aligner.augment import follow_noise

    db = torch.full((64, 3, CFG.n_mels), -95.0)
    db[:, 0, :40] = -20.0  # spread: 40 bands at -20 dB
    db[:, 1, 5] = 0.0  # one band
    db[:, 2, :40] = -50.0
    x = (db - CFG.norm_mean_db) / CFG.norm_std_db
    y = follow_noise(x, CFG, torch.Generator().manual_seed(1), 1.0, (20.0, 40.0))
    power = torch.pow(10.0, db / 10)
    added = torch.pow(10.0, (y * CFG.norm_std_db + CFG.norm_mean_db) / 10) - power
    snr = 10 * torch.log10(power.sum(2) / added.sum(2))  # (crops, frames)
    assert float((snr - snr[:, :1]).abs().max()) < 0.05  # one SNR per crop, the same for every frame
    assert 20.0 - 0.05 < float(snr.min()) and float(snr.max()) < 40.0 + 0.05
    assert float(snr[:, 0].std()) > 3.0  # drawn across the range, not fixed


def test_follow_noise_refuses_a_max_hz_below_the_front_end():
    from acula.aligner.augment import follow_noise

    with pytest.raises(ValueError, match="max_hz"):
        follow_noise(batch(), CFG, torch.Generator().manual_seed(0), 1.0, max_hz=10.0)


def test_p_codec_adds_the_codec_floor_last_and_is_refused_beside_backgrounds():
    """``p_codec``: the codec's floor (``follow_noise``) on top of every other augmentation, drawn last (the crop
    without it is what the same generator gives with p_codec 0); refused with real backgrounds for now."""
    from acula.aligner.augment import follow_noise
    from acula.aligner.config import AugmentFields

    x = batch()
    g0, g1 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    plain = augment_logmel(x, CFG, g0)
    coded = augment_logmel(x, CFG, g1, p_codec=1.0)
    torch.testing.assert_close(coded, follow_noise(plain, CFG, g0, 1.0))
    assert bool(torch.all(coded >= plain - 1e-6)) and float((coded - plain).max()) > 0.1
    with pytest.raises(ValueError, match="p_codec"):
        AugmentFields(p_codec=0.5, p_background=0.2).check_augment()
    with pytest.raises(ValueError, match="p_codec"):
        AugmentFields(p_codec=1.5).check_augment()


def test_phone_channel_off_is_the_identity_and_draws_nothing():
    from acula.aligner.augment import phone_channel

    x, gen = batch(), torch.Generator().manual_seed(5)
    state = gen.get_state()
    assert phone_channel(x, CFG, gen, 0.0) is x and torch.equal(gen.get_state(), state)
    # (the recipes without it draw as before: test_the_rolloff_path_draws_as_it_did_before_butterworth_existed pins
    # the generator's next draw after augment_logmel, whose default p_phone is 0)


def test_phone_channel_keeps_the_bands_under_4_khz_and_floors_those_above():
    from acula.aligner.augment import phone_channel

    x = batch()
    out = phone_channel(x, CFG, torch.Generator().manual_seed(0), 1.0)
    centres = band_centres_hz(CFG)
    drop_db = ((x - out) * CFG.norm_std_db)  # >= 0 everywhere
    floor = (10 * np.log10(CFG.amin_power) - CFG.norm_mean_db) / CFG.norm_std_db
    assert float(drop_db.min()) > -1e-3
    assert float(drop_db[..., centres < 3500].abs().max()) < 1e-3
    assert torch.allclose(out[..., centres > 4600], torch.full_like(out[..., centres > 4600], floor))


def test_phone_channel_matches_real_8_khz_audio_in_the_log_mel():
    """White noise through a real phone call (``aligner.invariance.phone_call_8k``, back at 16 kHz through the
    SDK's resampler) against phone_channel on the clean noise's log-mel: the bands under 3.5 kHz agree within
    0.5 dB; the bands over 4.6 kHz are at least 30 dB down in the call (its anti-aliasing filter's stop band leaks
    a little) and at the front end's floor in the augmented crop."""
    from acula.aligner.augment import phone_channel
    from acula.aligner.invariance import phone_call_8k
    from acula.sdk.audio import resample
    from acula.sdk.frontend import LogMelFrontend

    fe = LogMelFrontend(CFG)
    noise = (np.random.default_rng(0).normal(0, 0.1, 16000 * 3)).astype(np.float32)
    call = resample(phone_call_8k(noise, 16000).astype(np.float32), 8000, 16000)
    clean, real = fe(noise)[10:-10], fe(call)[10:-10]
    aug = phone_channel(torch.from_numpy(clean[None]), CFG, torch.Generator().manual_seed(0), 1.0)[0].numpy()
    centres = band_centres_hz(CFG).numpy()
    to_db = CFG.norm_std_db
    low, high = centres < 3500, centres > 4600
    assert np.abs((aug - real)[:, low].mean(0) * to_db).max() < 0.5
    assert ((clean - real)[:, high].mean(0) * to_db).min() > 30 and ((clean - aug)[:, high].mean(0) * to_db).min() > 60


def test_p_phone_is_drawn_last_and_refused_beside_backgrounds():
    x = batch()
    base = augment_logmel(x, CFG, torch.Generator().manual_seed(8))
    phone = augment_logmel(x, CFG, torch.Generator().manual_seed(8), p_phone=1.0)
    centres = band_centres_hz(CFG)
    # every earlier draw is the same: the bands under 3.5 kHz are those of the recipe without it
    assert torch.equal(base[..., centres < 3500], phone[..., centres < 3500])
    assert not torch.equal(base, phone)
    with pytest.raises(ValueError, match="p_phone"):
        augment_logmel(x, CFG, torch.Generator().manual_seed(8), p_phone=0.5, p_background=0.5, background=x)
    from acula.aligner.config import AugmentFields

    with pytest.raises(ValueError, match="p_phone"):
        AugmentFields(p_phone=1.5).check_augment()


def test_lowpass_off_is_the_identity_and_draws_nothing():
    from acula.aligner.augment import lowpass

    x, g = batch(), torch.Generator().manual_seed(5)
    assert lowpass(x, CFG, g, 0.0) is x
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_lowpass_is_a_butterworth_magnitude_at_each_band_centre_on_the_allowed_crops_only():
    """Each chosen crop loses 10 log10(1 + (f / cutoff) ** 12) dB per band (a 6th-order Butterworth at its band's
    centre frequency, the cutoff in the range given), floored as the front end floors; crops not allowed are
    untouched."""
    from acula.aligner.augment import lowpass

    db = torch.full((3, 2, CFG.n_mels), -20.0)
    x = (db - CFG.norm_mean_db) / CFG.norm_std_db
    allowed = torch.tensor([True, False, True])
    y = lowpass(x, CFG, torch.Generator().manual_seed(0), 1.0, (1500.0, 1500.0), allowed=allowed)
    assert torch.equal(y[1], x[1])
    centres = band_centres_hz(CFG)
    want = -20.0 - 10.0 * torch.log10(1.0 + (centres / 1500.0) ** 12)
    floor_db = 10 * float(np.log10(CFG.amin_power))
    got = y[0, 0] * CFG.norm_std_db + CFG.norm_mean_db
    torch.testing.assert_close(got, want.clamp_min(floor_db), atol=1e-3, rtol=0)
    assert torch.equal(y[0], y[2])
    # the cutoff is drawn inside the range, log-uniformly: every chosen crop's 3 dB point lies in 1-2 kHz
    many = lowpass(torch.zeros(64, 1, CFG.n_mels), CFG, torch.Generator().manual_seed(1), 1.0)
    lost = -(many[:, 0] * CFG.norm_std_db)  # dB lost per band
    third = torch.stack([centres[int(torch.nonzero(row >= 3.0)[0])] for row in lost])
    assert float(third.min()) >= 1000.0 and float(third.max()) <= 2000.0 * 1.1 and float(third.std()) > 50.0
