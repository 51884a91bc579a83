"""Device-robustness augmentations, applied to normalised log-mel batches.

Working on the log-mel rather than the waveform keeps the features cached and
costs nothing on a CPU: a linear filter is a per-band gain in dB (exact up to
the mel resolution) and additive noise adds in the power domain.

* band-limiting: a stethoscope-like low-pass, either 24 dB per octave above 1, 2 or 4 kHz ("rolloff") or a
  Butterworth magnitude of random order 2-8 at a random cutoff in 0.8-4 kHz ("butterworth");
* gain: a uniform level change of +-``gain_db``;
* EQ: a random spectral tilt of +-``eq_db`` across the band range;
* noise: stationary pink-ish noise at 10-30 dB below the clip's mean power;
* background: a real background crop (ESC-10 rain, sea waves, helicopter, chainsaw, clock, fire from the
  training split, never the clips the invariance suite's noise transforms use) at ``background_snr_min_db``
  (5 unless set) to 30 dB SNR, added in the power domain (``background_crops`` draws them; off unless
  ``p_background`` > 0);
* signal-following noise (``follow_noise``): white noise at a fixed SNR below each frame's own power, as a
  mu-law codec's quantisation adds (its SQNR is nearly level-independent, about 38 dB for 8-bit mu-law); the
  distiller gives it to the student's input only (``DistillConfig.p_student_codec``);
* a phone call's channel (``phone_channel``, ``p_phone``): nothing above 4 kHz, as 8 kHz audio keeps;
* a stethoscope's low-pass (``lowpass``): a 6th-order Butterworth magnitude at a cutoff drawn in 1-2 kHz, the
  invariance suite's lp1k / lp2k family; the distiller gives it to the student's input only
  (``DistillConfig.p_student_lowpass``).

The same function serves the aligner and the distiller.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from acula.aligner.config import BACKGROUND_SNR_MAX_DB, AugmentFields
from acula.aligner.corpus import Corpus
from acula.aligner.data import FeatureBank, crop_or_tile
from acula.sdk.frontend import mel_filterbank, mel_to_hz
from acula.sdk.frontend_config import FrontendConfig

CUTOFFS_HZ = (1000.0, 2000.0, 4000.0)
BUTTERWORTH_CUTOFF_HZ = (800.0, 4000.0)
BUTTERWORTH_ORDERS = (2, 8)
_DEFAULT = AugmentFields()


def band_centres_hz(cfg: FrontendConfig) -> torch.Tensor:
    from acula.sdk.frontend import hz_to_mel

    mels = np.linspace(hz_to_mel(cfg.f_min_hz), hz_to_mel(cfg.f_max_hz), cfg.n_mels + 2)[1:-1]
    return torch.from_numpy(mel_to_hz(mels)).float()


#: the SNR range, in dB below each frame's power, of :func:`follow_noise` (8-bit mu-law's SQNR is about 38 dB).
#: 8-bit mu-law at 8 kHz (``aligner.invariance``'s mulaw8k) on heart recordings raises the log-mel bands between
#: 0.5 and 4 kHz by 45-66 dB; this noise at 30 dB comes within about 3-7 dB of that on 10 PhysioNet recordings by
#: groups of 8 bands (4.5-7.9 dB mean absolute difference cell by cell; ``python scripts/follow_noise_calibration.py``)
FOLLOW_NOISE_SNR_DB = (22.0, 38.0)
#: the noise's upper band edge: a codec at 8 kHz makes none above its Nyquist frequency
FOLLOW_NOISE_MAX_HZ = 4000.0


@functools.lru_cache(maxsize=8)
def _white_band_shares(cfg: FrontendConfig, max_hz: float) -> np.ndarray:
    """Each mel band's share of white noise from 0 to ``max_hz``: its filter's weight on the FFT bins up to
    ``max_hz``, normalised to sum 1 (built once per front end, not at every distillation step)."""
    bins_hz = np.linspace(0.0, cfg.sample_rate_hz / 2, cfg.n_freqs)
    weights = mel_filterbank(cfg)[bins_hz <= max_hz].sum(0)
    shares = weights / weights.sum()
    shares.flags.writeable = False
    return shares


#: a phone call's upper band edge: audio resampled to 8 kHz keeps nothing above it
PHONE_MAX_HZ = 4000.0


@functools.lru_cache(maxsize=8)
def _kept_band_shares(cfg: FrontendConfig, max_hz: float) -> np.ndarray:
    """Each mel band's share of a flat spectrum that lies at or below ``max_hz``: its filter's weight on those FFT
    bins over its whole weight (1 for a band wholly below, 0 wholly above; built once per front end)."""
    bins_hz = np.linspace(0.0, cfg.sample_rate_hz / 2, cfg.n_freqs)
    fb = mel_filterbank(cfg)
    shares = fb[bins_hz <= max_hz].sum(0) / np.maximum(fb.sum(0), 1e-12)
    shares[fb[bins_hz > max_hz].sum(0) == 0] = 1.0  # wholly below: exactly 1, whatever the sums' rounding
    shares.flags.writeable = False
    return shares


def phone_channel(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator, p: float,
                  max_hz: float = PHONE_MAX_HZ) -> torch.Tensor:
    """Normalised log-mel (batch, n_frames, n_mels) with, for each crop with probability ``p``, a phone call's band
    limit: each band keeps only its share at or below ``max_hz`` (``_kept_band_shares``: a brick wall, as 8 kHz
    resampling's anti-aliasing filter nearly is), the bands above it fall to the front end's floor.  Crops not
    chosen come back unchanged.  Draws 1 number per crop from ``generator`` (none when ``p`` is 0)."""
    if p <= 0:
        return x
    chosen = torch.rand(x.shape[0], 1, 1, generator=generator).to(x.device) < p
    shares = _kept_band_shares(cfg, max_hz)
    cut = torch.from_numpy(np.flatnonzero(shares < 1.0)).to(x.device)  # the bands that lose anything (the rest: as is)
    loss_db = torch.tensor(10 * np.log10(np.maximum(shares[shares < 1.0], 1e-30)), dtype=x.dtype, device=x.device)
    floor_db = 10 * float(np.log10(cfg.amin_power))
    db = x[..., cut] * cfg.norm_std_db + cfg.norm_mean_db
    kept = ((db + loss_db).clamp_min(floor_db) - cfg.norm_mean_db) / cfg.norm_std_db
    out = x.clone()
    out[..., cut] = torch.where(chosen, kept, x[..., cut])
    return out


def butterworth_db(freq_hz: torch.Tensor, cutoff_hz: torch.Tensor | float, order: torch.Tensor | float
                   ) -> torch.Tensor:
    """A Butterworth low-pass's gain in dB at ``freq_hz``: ``-10 log10(1 + (f / cutoff) ** (2 order))`` (the band-limit
    augmentation's "butterworth" filter and :func:`lowpass`, each at its bands' centre frequencies)."""
    return -10.0 * torch.log10(1.0 + (freq_hz / cutoff_hz) ** (2.0 * order))


#: the cutoff range (Hz, drawn log-uniformly) and order of :func:`lowpass`: the invariance suite's lp1k and lp2k are
#: 6th-order Butterworth low-passes at 1 and 2 kHz (``aligner.invariance``)
LOWPASS_CUTOFF_HZ = (1000.0, 2000.0)
LOWPASS_ORDER = 6


def lowpass(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator, p: float,
            cutoff_hz: tuple[float, float] = LOWPASS_CUTOFF_HZ, order: int = LOWPASS_ORDER,
            allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised log-mel (batch, n_frames, n_mels) with, for each crop with probability ``p`` (and only where
    ``allowed``, shape (batch,), is true), a Butterworth low-pass's magnitude of ``order`` at a cutoff drawn
    log-uniformly in ``cutoff_hz``: each band loses ``10 log10(1 + (f / cutoff) ** (2 order))`` dB at its centre
    frequency ``f``, floored as the front end floors.  Crops not chosen come back unchanged.  Draws 2 numbers per
    crop from ``generator`` (none when ``p`` is 0)."""
    if p <= 0:
        return x
    chosen = torch.rand(x.shape[0], 1, 1, generator=generator).to(x.device) < p
    lo, hi = np.log(cutoff_hz[0]), np.log(cutoff_hz[1])
    cutoff = torch.exp(lo + (hi - lo) * torch.rand(x.shape[0], 1, 1, generator=generator)).to(x.device)
    if allowed is not None:
        chosen = chosen & allowed.reshape(-1, 1, 1).to(device=x.device, dtype=torch.bool)
    loss_db = butterworth_db(band_centres_hz(cfg).to(x.device), cutoff, order)
    floor = (10 * float(np.log10(cfg.amin_power)) - cfg.norm_mean_db) / cfg.norm_std_db
    return torch.where(chosen, (x + loss_db.to(x.dtype) / cfg.norm_std_db).clamp_min(floor), x)


def follow_noise(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator, p: float,
                 snr_db: tuple[float, float] = FOLLOW_NOISE_SNR_DB, max_hz: float = FOLLOW_NOISE_MAX_HZ
                 ) -> torch.Tensor:
    """Normalised log-mel (batch, n_frames, n_mels) with, for each crop with probability ``p``, white noise that
    follows the signal, as a mu-law codec's quantisation noise does (its SQNR hardly depends on level): each
    frame gets noise whose power is the frame's own power (summed over bands) ``snr`` dB down, ``snr`` drawn per
    crop uniformly from ``snr_db``, white from 0 to ``max_hz`` (each band gets its filter's weight on the FFT bins
    below ``max_hz``).  It fills the quiet 0.5-4 kHz bands of a heart recording, which stationary noise at the
    clip's mean power leaves nearly untouched in its loud frames.  Floored as the front end floors; crops not
    chosen come back unchanged.  Draws 2 numbers per crop from ``generator`` (none when ``p`` is 0)."""
    if p <= 0:
        return x
    if not cfg.f_min_hz < max_hz:
        raise ValueError(f"max_hz must be above the front end's f_min_hz ({cfg.f_min_hz:g}), got {max_hz!r}")
    b = x.shape[0]
    chosen = torch.rand(b, 1, 1, generator=generator).to(x.device) < p
    lo, hi = snr_db
    snr = lo + (hi - lo) * torch.rand(b, 1, 1, generator=generator).to(x.device)
    weights = torch.tensor(_white_band_shares(cfg, max_hz), dtype=x.dtype, device=x.device)
    power = torch.pow(10.0, (x * cfg.norm_std_db + cfg.norm_mean_db) / 10.0)
    noise = power.sum(2, keepdim=True) * torch.pow(10.0, -snr / 10.0) * weights
    floor_db = 10 * float(np.log10(cfg.amin_power))
    noisy = ((10 * torch.log10(power + noise)).clamp_min(floor_db) - cfg.norm_mean_db) / cfg.norm_std_db
    return torch.where(chosen, noisy, x)


def augment_logmel(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator,
                   p_band_limit: float = _DEFAULT.p_band_limit, gain_db: float = _DEFAULT.gain_db,
                   eq_db: float = _DEFAULT.eq_db, p_noise: float = _DEFAULT.p_noise,
                   band_filter: str = _DEFAULT.band_filter, p_background: float = _DEFAULT.p_background,
                   background_snr_min_db: float = _DEFAULT.background_snr_min_db,
                   background: torch.Tensor | None = None, p_codec: float = _DEFAULT.p_codec,
                   p_phone: float = _DEFAULT.p_phone) -> torch.Tensor:
    """x: (batch, n_frames, n_mels) normalised log-mel -> augmented copy, same shape.  The defaults are
    ``aligner.config.AugmentFields``'; a config passes its own with ``**cfg.augment_options()``.
    ``background``: normalised log-mel crops shaped like ``x`` (``background_crops``), mixed into a crop with
    probability ``p_background``; with it None or ``p_background`` 0 the generator draws what it drew before
    the background existed."""
    return augment_logmel_views(x, cfg, generator, p_band_limit, gain_db, eq_db, p_noise, band_filter,
                                p_background, background_snr_min_db, background, p_codec, p_phone)[1]


def augment_logmel_views(x: torch.Tensor, cfg: FrontendConfig, generator: torch.Generator,
                         p_band_limit: float = _DEFAULT.p_band_limit, gain_db: float = _DEFAULT.gain_db,
                         eq_db: float = _DEFAULT.eq_db, p_noise: float = _DEFAULT.p_noise,
                         band_filter: str = _DEFAULT.band_filter, p_background: float = _DEFAULT.p_background,
                         background_snr_min_db: float = _DEFAULT.background_snr_min_db,
                         background: torch.Tensor | None = None, p_codec: float = _DEFAULT.p_codec,
                         p_phone: float = _DEFAULT.p_phone) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment_logmel`` in two views from the same draws: (the crop with every augmentation but the real
    background, the crop with it as well).  The second is exactly ``augment_logmel``'s output; the first is what
    it returns with ``background`` None.  A denoising distillation (``DistillConfig.background_student_only``)
    teaches the student on the second with the teacher's target taken from the first."""
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
        rolloff = butterworth_db(centres, cutoff, order)
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
    clean = (db.clamp_min(floor_db) - cfg.norm_mean_db) / scale
    if background is None or p_background <= 0:
        if p_codec > 0:  # last, so every earlier draw is what it was without it
            clean = follow_noise(clean, cfg, generator, p_codec)
        if p_phone > 0:  # the channel after the codec's noise (which stops at 4 kHz too); drawn last of all
            clean = phone_channel(clean, cfg, generator, p_phone)
        return clean, clean
    if p_codec > 0 or p_phone > 0:
        raise ValueError("p_codec and p_phone are not combined with p_background yet: set one of them to 0")
    db = _mix_background(db, background.to(x.device) * scale + cfg.norm_mean_db, cfg, p_background,
                         (background_snr_min_db, BACKGROUND_SNR_MAX_DB), rand)
    return clean, (db.clamp_min(floor_db) - cfg.norm_mean_db) / scale


def _mix_background(db: torch.Tensor, background_db: torch.Tensor, cfg: FrontendConfig, p: float,
                    snr_range_db: tuple[float, float], rand: Callable[..., torch.Tensor]) -> torch.Tensor:
    """Each crop of ``db`` (log-mel in dB) gets its background crop with probability ``p``, scaled to an SNR
    drawn uniformly from ``snr_range_db`` against the crop's mean power.  A background crop within 30 dB
    of the front end's floor (a silent stretch of a clock-tick clip) is left out rather than amplified."""
    if background_db.shape != db.shape:
        raise ValueError(f"background crops must be shaped like the batch {tuple(db.shape)}, "
                         f"got {tuple(background_db.shape)}")
    b = db.shape[0]
    mixed = rand(b, 1, 1) < p
    lo, hi = snr_range_db
    snr_db = lo + (hi - lo) * rand(b, 1, 1)
    power, bg = torch.pow(10.0, db / 10.0), torch.pow(10.0, background_db / 10.0)
    bg_mean = bg.mean((1, 2), keepdim=True)
    mixed = mixed & (bg_mean > cfg.amin_power * 1e3)
    scale = power.mean((1, 2), keepdim=True) / bg_mean.clamp_min(cfg.amin_power) / torch.pow(10.0, snr_db / 10.0)
    return torch.where(mixed, 10 * torch.log10(power + bg * scale), db)


def background_pool(corpus: Corpus, classes: Sequence[str] | None = None) -> list[int]:
    """Corpus indices of the background clips training may mix in: ESC-10 records of the training split whose
    class is one of the invariance suite's noise classes (``classes``, a subset of ``NoiseBank.CLASSES``: only
    those; None: all six), less every clip cut from the same source recording
    as a clip that suite's noise transforms use (``NoiseBank.esc10_files``; ESC's file stem is fold-source-take,
    and takes of one source sound alike), so no evaluation noise is ever mixed in as a background.  (17 of those
    24 clips lie in the corpus's training split and are trained on as ordinary ESC-10 records, as before this
    augmentation existed.)  Raises ValueError when ESC-10's folder cannot be read: the exclusion never fails
    open."""
    from acula.aligner.invariance import NoiseBank

    classes = checked_background_classes(classes)
    rows = [i for i in corpus.indices("train", "esc10")
            if NoiseBank.class_of(corpus.audio_path(i).parent.name) in classes]
    held: set[str] = set()
    for root in {corpus.audio_path(i).parent.parent for i in rows}:
        if not root.is_dir():
            raise ValueError(f"background_pool needs ESC-10's folder to leave the evaluation's noise clips out; "
                             f"{root} is not a directory (the corpus's data root is {corpus.data_root}; run from the "
                             "directory it is relative to)")
        held |= {esc_source(f) for _, f in NoiseBank.esc10_files(root)}
    return [i for i in rows if esc_source(corpus.audio_path(i)) not in held]


def checked_background_classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    """The ESC-10 classes a background pool draws from: ``classes`` as a tuple (None: all of
    ``NoiseBank.CLASSES``).  Raises ValueError unless it is a non-empty subset of those."""
    from acula.aligner.invariance import NoiseBank

    if classes is None:
        return NoiseBank.CLASSES
    chosen = tuple(classes)
    if not chosen or not set(chosen) <= set(NoiseBank.CLASSES):
        raise ValueError(f"background_classes must be a non-empty subset of {NoiseBank.CLASSES}, got {chosen!r}")
    return chosen


def esc_source(path: Path) -> str:
    """ESC-10's source recording of a clip: "1-17367" of ".../1-17367-A.ogg"."""
    return "-".join(path.stem.split("-")[:2])


def background_crops(cfg: AugmentFields, bank: FeatureBank, pool: list[int], batch_size: int, n_frames: int,
                     seed: int, step: int) -> torch.Tensor | None:
    """One step's background crops, (batch, n_frames, n_mels) normalised log-mel, from the clips of ``pool``
    (``background_pool``), seeded by (seed, step) on a generator of their own, so a config without background
    draws its batches as before; None when ``cfg.p_background`` is 0."""
    if cfg.p_background <= 0:
        return None
    if not pool:
        raise ValueError("p_background > 0 needs ESC-10 background clips (rain, sea waves, helicopter, chainsaw, "
                         "clock tick, fire crackling) in the corpus's training split; none were found")
    rng = np.random.default_rng([seed, step, 0xB6])
    chosen = rng.choice(pool, size=batch_size)
    return torch.from_numpy(np.stack([crop_or_tile(bank.get(int(i)), n_frames, rng) for i in chosen]))
