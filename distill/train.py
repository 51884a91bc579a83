"""``acula distill``: compress an aligned teacher into the streaming student.

    acula distill --teacher runs/align-default-cpu --corpus runs/corpus --out runs/distill

Same conventions as ``acula align``: a named preset or JSON config, seeded
batches, the same device-robustness augmentations, safetensors checkpoints with
their config, resume from the last checkpoint, a progress bar and metrics.jsonl.
The prompt bank (every label set of sdk/label_sets.json)
is embedded once with the teacher and saved beside the checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from acula.aligner.augment import (
    FOLLOW_NOISE_SNR_DB,
    LOWPASS_CUTOFF_HZ,
    augment_logmel_views,
    background_crops,
    background_pool,
    checked_background_classes,
    follow_noise,
    lowpass,
    phone_channel,
)
from acula.aligner.checkpoint import load_checkpoint, resume_from, run_config, save_checkpoint
from acula.aligner.config import AlignConfig, AugmentFields, known_fields
from acula.aligner.config import resolve as resolve_config
from acula.aligner.corpus import load_corpus
from acula.aligner.data import FeatureBank, crop_or_tile, dataset_balanced_weights, sample_batch
from acula.aligner.model import AcuLaModel
from acula.aligner.train import lr_factor
from acula.distill.bundle_teacher import BundleTeacher, is_bundle, load_bundle_teacher, student_from_bundle
from acula.distill.prompts import label_sets
from acula.distill.student import StreamingStudent, StudentConfig
from acula.distill.task import DistillTask, DistillWeights
from acula.sdk.frontend_config import FrontendConfig


def checked_range(name: str, given: Any, unit: str, positive: bool = False) -> tuple[float, float]:
    """A config's ``[low, high]`` pair of numbers as floats, ``0 <= low <= high`` (``0 < low`` with ``positive``);
    anything else raises ValueError naming ``name``."""
    if (not isinstance(given, (list, tuple)) or len(given) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given)
            or not (0.0 < given[0] if positive else 0.0 <= given[0]) or not given[0] <= given[1]):
        bound = "0 < low <= high" if positive else "0 <= low <= high"
        raise ValueError(f"{name} must be [low, high] {unit} with {bound}, got {given!r}")
    return float(given[0]), float(given[1])


@dataclass(frozen=True)
class DistillConfig(AugmentFields):
    name: str = "default-cpu"
    student: StudentConfig = dataclasses.field(default_factory=StudentConfig)
    weights: DistillWeights = dataclasses.field(default_factory=DistillWeights)
    batch_size: int = 64
    max_steps: int = 3000  # the dataclass defaults are the first (narrow) student; the default-cpu preset differs
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    #: a further level change of +-``student_gain_db`` applied to the student's input only: the teacher's target
    #: comes from the crop without it, so the student learns to give the teacher's answer at any level (0: off)
    student_gain_db: float = 0.0
    #: the share of crops that get that level change (the rest reach the student at their own level)
    p_student_gain: float = 1.0
    #: the corpora whose crops may get that level change (None: every corpus)
    student_gain_datasets: tuple[str, ...] | None = None
    #: the share of crops whose input to the student alone gets signal-following white noise (a codec's
    #: quantisation floor, ``aligner.augment.follow_noise``, at ``student_codec_snr_db``): the teacher's target
    #: comes from the crop without it, so the student learns to give the clean crop's answer through a mu-law
    #: codec (0: off; a denoising distillation like ``background_student_only``)
    p_student_codec: float = 0.0
    #: the SNR range of that noise, dB below each frame's power
    student_codec_snr_db: tuple[float, float] = FOLLOW_NOISE_SNR_DB
    #: the share of crops whose input to the student alone goes through a phone call's channel (nothing over 4 kHz,
    #: ``aligner.augment.phone_channel``): the teacher's target comes from the crop without it, so the student learns
    #: to give the full-band crop's answer through a phone (0: off; ``p_phone`` gives it to both models)
    p_student_phone: float = 0.0
    #: the share of crops whose input to the student alone goes through a stethoscope's low-pass (a 6th-order
    #: Butterworth at a cutoff drawn in ``student_lowpass_hz``, ``aligner.augment.lowpass``): the teacher's target
    #: comes from the crop without it, so the student learns to give the full-band crop's answer through a
    #: stethoscope's band (0: off)
    p_student_lowpass: float = 0.0
    student_lowpass_hz: tuple[float, float] = LOWPASS_CUTOFF_HZ
    #: the corpora whose crops may get that low-pass (None: every corpus)
    student_lowpass_datasets: tuple[str, ...] | None = None
    #: mix the real backgrounds (``p_background``) into the student's input only: the teacher's target comes from
    #: the same crop without its background, so the student learns to give the clean crop's answer in noise (a
    #: denoising distillation; needs ``p_background`` > 0).  Off: the teacher hears the mixed crop too.
    background_student_only: bool = False
    #: the ESC-10 classes the real backgrounds are drawn from (a subset of ``aligner.invariance.NoiseBank.CLASSES``;
    #: None: all six: rain, sea waves, helicopter, chainsaw, clock tick, fire crackling)
    background_classes: tuple[str, ...] | None = None
    #: the corpora whose crops may get a real background (None: every corpus); the others reach both models
    #: without one, the same draws otherwise
    background_datasets: tuple[str, ...] | None = None
    #: start from the teaching bundle's own student weights (a fine-tune; needs ``--teacher BUNDLE`` and a
    #: student config equal to the bundle's) instead of from scratch
    init_from_teacher: bool = False
    #: keep every batch norm in eval mode while training (its statistics and the identity a bundle's folded
    #: weights load as stay put; the affine parameters still learn)
    freeze_norm: bool = False
    #: a crop of a cough recording is a cough-head positive only if its loudest frame is within this many dB of
    #: the recording's loudest frame (coughs are the recording's bursts); quieter crops (the gaps between
    #: coughs) are left out of the head loss instead of being taught as coughs.  None: every crop is positive.
    #: Off by default: at 6 dB (configs/distill/kd2-peak6-4000.json) validation cough recall at the bundle's
    #: operating point stayed 0.90, as without it on the same trunk (scripts/distill_experiments.sh).
    cough_peak_db: float | None = None
    #: zero-shot distillation with one softmax per label set (distill/task.py) instead of one over all prompts
    #: (on in the default-cpu preset)
    kd_per_label_set: bool = False
    #: further aligned teachers (``acula align`` run directories or bundles, paths relative to the working
    #: directory) whose label-set distributions are averaged with the teacher's into the zero-shot distillation
    #: target (a teacher ensemble for the KD term; the embedding terms follow ``--teacher`` alone, whose joint
    #: space the student's embedding lives in).  Each must share the teacher's front end and prompt bank.
    #: Empty: the teacher alone.
    kd_teachers: tuple[str, ...] = ()
    #: an ``acula align`` run trained with supervised heads (``w_sup`` > 0: the supervised control, or a teacher of
    #: the sup-heads recipe) whose heads, on each crop before augmentation, give the head-teacher term
    #: (``DistillWeights.head_kd``) its heart and lung targets.  It must share the teacher's front end.  None: off.
    head_teacher: str | None = None
    #: the student's front-end floor (``FrontendConfig.amin_power``) when it is lower than the teacher's: the
    #: features, the augmentations and the exported bundle use it, and the teacher reads the same crop clamped at
    #: its own floor: its own front end's features (flooring twice keeps the higher floor; up to the feature
    #: bank's float16 rounding of the floor value).  A low floor keeps a gain change a uniform shift of the
    #: student's input (``sdk.level``) while the teacher stays on the features it was aligned on.  None: the
    #: teacher's front end throughout.
    student_amin_power: float | None = None
    #: the student's own mel bank up to this frequency (``FrontendConfig.f_max_hz``; the same number of bands, so
    #: more of them below 2 kHz, where heart and lung sounds lie: 29 of 64 under 1 kHz at 4 kHz instead of 21 at
    #: 8 kHz), from its own feature bank; the teacher reads its own full-band features of the same crops, and
    #: both views take the same augmentation draws (band limits and noise in Hz).  None: the teacher's bank.
    student_f_max_hz: float | None = None
    #: the running-level shift in training (``sdk.level``): the student's crops, after every augmentation, are
    #: moved so their running level sits at ``student_level_ref`` and, with ``student_level_range_db``, raised to
    #: the relative floor that far under it, as a bundle exported with ``--level-shift REF --level-range-db DB``
    #: scores its windows (:func:`level_shift_crops`).  None: the crops as augmented.
    student_level_ref: float | None = None
    student_level_range_db: float | None = None
    student_level_history_frames: int = 312
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 250
    #: export an exponential moving average of the student's weights (and its batch-norm statistics) instead of the
    #: last step's: each step ``ema = d * ema + (1 - d) * weights`` with ``d = min(ema_decay, (1 + step) / (10 +
    #: step))``.  With it, ``last`` holds the average (what ``acula export`` reads) and ``live`` the trained weights
    #: and optimizer a resumed run goes on from.  0: off.
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        self.check_augment()
        for name in ("p_student_gain", "p_student_codec", "p_student_phone", "p_student_lowpass"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        object.__setattr__(self, "student_codec_snr_db", checked_range("student_codec_snr_db",
                                                                       self.student_codec_snr_db, "dB"))
        object.__setattr__(self, "student_lowpass_hz", checked_range("student_lowpass_hz", self.student_lowpass_hz,
                                                                     "Hz", positive=True))
        if self.background_student_only and self.p_background <= 0:
            raise ValueError("background_student_only needs p_background > 0 (there is no background to keep "
                             "from the teacher)")
        if self.background_classes is not None:
            object.__setattr__(self, "background_classes", checked_background_classes(self.background_classes))
        object.__setattr__(self, "kd_teachers", tuple(str(t) for t in self.kd_teachers))
        if (self.head_teacher is None) != (self.weights.head_kd <= 0):
            raise ValueError("head_teacher and weights.head_kd go together: give both (a run with supervised heads and "
                             f"a weight > 0) or neither; got head_teacher={self.head_teacher!r}, "
                             f"weights.head_kd={self.weights.head_kd}")
        for name in ("student_gain_datasets", "background_datasets", "student_lowpass_datasets"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.student_amin_power is not None and not 0.0 < self.student_amin_power < 1.0:
            raise ValueError(f"student_amin_power must be in (0, 1), got {self.student_amin_power!r}")
        if self.student_f_max_hz is not None and not self.student_f_max_hz > 0:
            raise ValueError(f"student_f_max_hz must be > 0, got {self.student_f_max_hz!r}")
        if self.student_level_ref is None and self.student_level_range_db is not None:
            raise ValueError("student_level_range_db needs student_level_ref (the relative floor sits under it)")
        if self.student_level_range_db is not None and not self.student_level_range_db > 0:
            raise ValueError(f"student_level_range_db must be > 0, got {self.student_level_range_db!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.student_level_history_frames < 1:
            raise ValueError(f"student_level_history_frames must be >= 1, got {self.student_level_history_frames}")

    def level_shift(self) -> Any:
        """The ``sdk.level.LevelShift`` the student trains on (and its bundle must be exported with), or None."""
        if self.student_level_ref is None:
            return None
        from acula.sdk.level import LevelShift

        return LevelShift(ref=self.student_level_ref, history_frames=self.student_level_history_frames,
                          range_db=self.student_level_range_db)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillConfig:
        data = dict(known_fields(cls, data))
        data["student"] = StudentConfig.from_dict(data.get("student", {}))
        data["weights"] = DistillWeights(**known_fields(DistillWeights, data.get("weights", {})))
        return cls(**data)


#: The shipped student: a wider trunk with a 112-d bottleneck before the embedding, zero-shot distillation
#: weighted 2 with one softmax per label set, 6,000 steps (about 10 minutes on a 2-core CPU).  Chosen on the
#: validation split alone over the narrow 3,000-step student it replaces (configs/distill/narrow-kd1-3000.json;
#: benchmarks/results/distill_selection_val.md): higher mean probe and zero-shot AUROC on val.
DEFAULT_STUDENT = StudentConfig(channels=(32, 48, 64, 96, 128, 192), strides=(2, 2, 2, 1, 2, 1), embed_rank=112)

PRESETS = {
    "default-cpu": DistillConfig(student=DEFAULT_STUDENT, weights=DistillWeights(kd=2.0), max_steps=6000,
                                 kd_per_label_set=True),
    "tiny-test": DistillConfig(name="tiny-test", student=StudentConfig(channels=(8, 16), strides=(2, 2),
                                                                       embed_dim=32, window_frames=32,
                                                                       hop_frames=15),
                               batch_size=8, max_steps=3, warmup_steps=1, log_every=1, ckpt_every=2,
                               p_band_limit=0.0, p_noise=0.0),
}


def resolve(name_or_file: str) -> DistillConfig:
    """A preset or JSON config (``aligner.config.resolve``): without a "preset", fields left out take the
    dataclass defaults (the first, narrow student); a preset's student and loss weights change field by field."""
    config: DistillConfig = resolve_config(name_or_file, DistillConfig, PRESETS, nested=("student", "weights"))
    return config


def load_teacher(run: str | Path) -> tuple[AcuLaModel, dict[str, Any]]:
    state, meta = load_checkpoint(run)
    cfg = dataclasses.replace(AlignConfig.from_dict(meta["align_config"]), encoder_weights=None)
    teacher = AcuLaModel(cfg, meta["text_dim"])
    teacher.load_state_dict(state)
    return teacher.eval(), meta


def prompt_groups(texts: list[str]) -> list[list[int]]:
    """For each label set, the indices (into ``texts``) of its prompts."""
    where = {t: k for k, t in enumerate(texts)}
    return [sorted({where[p] for prompts in labels.values() for p in prompts}) for labels in label_sets().values()]


def embed_prompt_bank(teacher: AcuLaModel, teacher_dir: str | None = None) -> tuple[list[str], np.ndarray]:
    """Every prompt of every label set, through the text teacher and the teacher's text projection."""
    from acula.aligner.teacher import TextTeacher

    texts = sorted({p for labels in label_sets().values() for prompts in labels.values() for p in prompts})
    raw = TextTeacher(teacher_dir).encode(texts)
    with torch.no_grad():
        z = torch.nn.functional.normalize(teacher.embed_text(torch.from_numpy(raw)), dim=-1)
    return texts, z.numpy()


def distill(cfg: DistillConfig, teacher_run: Path, corpus_dir: Path, out: Path, progress: bool = True,
            resume: bool = True) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    teacher, tmeta, texts, prompts = teacher_with_prompts(teacher_run)
    corpus = load_corpus(corpus_dir)
    tfront = FrontendConfig.from_dict(tmeta["frontend"])  # the teacher's front end
    front = tfront  # the student's
    teacher_floor = None  # the teacher's floor in normalised log-mel, when the student's is lower
    if cfg.student_amin_power is not None and cfg.student_amin_power != tfront.amin_power:
        if cfg.student_amin_power > tfront.amin_power:
            raise ValueError(f"student_amin_power {cfg.student_amin_power:g} is above the teacher's floor "
                             f"{tfront.amin_power:g}: the teacher's features could not be recovered from the student's")
        front = dataclasses.replace(tfront, amin_power=cfg.student_amin_power)
        teacher_floor = (10 * float(np.log10(tfront.amin_power)) - tfront.norm_mean_db) / tfront.norm_std_db
    bank = FeatureBank.for_corpus(corpus, front, progress=progress)
    sfront, sbank = front, bank  # the student's own mel bank, where it has one (student_f_max_hz)
    if cfg.student_f_max_hz is not None and cfg.student_f_max_hz != front.f_max_hz:
        if cfg.student_f_max_hz > front.f_max_hz or cfg.student_f_max_hz <= front.f_min_hz:
            raise ValueError(f"student_f_max_hz {cfg.student_f_max_hz:g} must lie between the teacher's f_min_hz "
                             f"{front.f_min_hz:g} and f_max_hz {front.f_max_hz:g}")
        if cfg.p_background > 0 or cfg.p_codec > 0:
            raise ValueError("student_f_max_hz is not combined with p_background or p_codec yet: set them to 0")
        sfront = dataclasses.replace(front, f_max_hz=cfg.student_f_max_hz)
        sbank = FeatureBank.for_corpus(corpus, sfront, progress=progress)
    level = cfg.level_shift()
    if level is not None:
        level = level.for_front(sfront)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "prompt_embeddings.npy", prompts)
    (out / "prompt_texts.json").write_text(json.dumps(texts, indent=1))
    student = StreamingStudent(dataclasses.replace(cfg.student, embed_dim=teacher.cfg.embed_dim,
                                                   n_mels=front.n_mels))
    if cfg.init_from_teacher:
        if not isinstance(teacher, BundleTeacher):
            raise ValueError("init_from_teacher needs a bundle as --teacher (its student is the starting point)")
        student = student_from_bundle(teacher.bundle, student.cfg)
    groups = prompt_groups(texts) if cfg.kd_per_label_set else None
    kd_teachers, kd_ids = kd_teacher_ensemble(cfg.kd_teachers, texts, tfront)
    head_teacher, head_id = load_head_teacher(cfg.head_teacher, tfront)
    label_rows = None
    averaging = None
    if cfg.weights.label > 0 or cfg.weights.head_kd > 0:
        from acula.distill.labels import label_targets, prompt_averaging

        matrix, slices = prompt_averaging(texts)
        averaging = (torch.from_numpy(matrix), slices)
        label_rows = tuple(torch.from_numpy(a) for a in label_targets(corpus.rows))
    task = DistillTask(teacher, student, torch.from_numpy(prompts), cfg.weights, groups, kd_teachers, averaging,
                       head_teacher)
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = WeightAverage(student, cfg.ema_decay) if cfg.ema_decay > 0 else None
    found = resume_from(out, "distill_config", cfg, student, optimizer, tag="last" if ema is None else "live") \
        if resume else None
    if found and ema is not None and (out / "last.safetensors").is_file():
        ema.load(load_checkpoint(out)[0])
    start, resumed = found or (0, {})  # resumed: a resumed run's last metrics (returned if no step is left)
    if found and progress:
        print(f"resuming {out} at step {start} of {cfg.max_steps}", file=sys.stderr)
    train_idx = corpus.indices("train")
    weights = dataset_balanced_weights([corpus.rows[i]["dataset"] for i in train_idx])
    bg_pool = background_pool(corpus, cfg.background_classes) if cfg.p_background > 0 else []
    is_cough = np.array([r["modality"] == "cough" for r in corpus.rows], dtype=np.float32)
    gain_ok, background_ok, lowpass_ok = (dataset_mask(corpus, corpus_dir, name, getattr(cfg, name))
                                          for name in ("student_gain_datasets", "background_datasets",
                                                       "student_lowpass_datasets"))
    peak_cache: dict[int, float] = {}
    meta_base = {"distill_config": cfg.to_dict(), "student_config": student.cfg.to_dict(), "frontend": sfront.to_dict(),
                 "teacher_run": str(teacher_run), "teacher_id": tmeta.get("teacher_id"), "corpus": str(corpus_dir),
                 "teacher_bundle_sha256": tmeta.get("bundle_sha256"),
                 "kd_teachers": list(cfg.kd_teachers), "kd_teacher_ids": kd_ids, "head_teacher_id": head_id,
                 "logit_scale": task.logit_scale}
    sched = AlignConfig(warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps)
    from tqdm import tqdm

    task.train()
    if cfg.freeze_norm:
        for module in student.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    last = resumed
    t0 = time.perf_counter()
    with open(out / "metrics.jsonl", "a") as log:
        for step in tqdm(range(start, cfg.max_steps), desc=f"distill {cfg.name}", unit="step", disable=not progress):
            rng = np.random.default_rng([cfg.seed, step])
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            chosen, crops, starts = sample_batch(bank, train_idx, weights, cfg.batch_size, student.cfg.window_frames,
                                                 rng, with_starts=True)
            background = background_crops(cfg, bank, bg_pool, cfg.batch_size, student.cfg.window_frames, cfg.seed,
                                          step)
            draws = gen.get_state()  # the student's own view, below, takes the same augmentation draws
            clean, mixed = augment_logmel_views(torch.from_numpy(crops), front, gen, **cfg.augment_options(),
                                                background=background)
            if cfg.background_datasets is not None:
                mixed = torch.where(torch.from_numpy(background_ok[chosen])[:, None, None], mixed, clean)
            scrops, smixed = crops, mixed  # the student's crops (clean) and augmented view
            if sbank is not bank:
                scrops = crops_at(sbank, chosen, starts, crops.shape[1])
                smixed = augment_logmel_views(torch.from_numpy(scrops), sfront, torch.Generator().set_state(draws),
                                              **cfg.augment_options())[1]
            feats = clean if cfg.background_student_only else mixed  # the teacher's input
            if teacher_floor is not None:  # its own front end's features of the same crop
                feats = feats.clamp_min(teacher_floor)
            student_feats = smixed if cfg.student_gain_db <= 0 else shift_level(
                smixed, sfront, gen, cfg.student_gain_db, cfg.p_student_gain, torch.from_numpy(gain_ok[chosen]))
            student_feats = follow_noise(student_feats, sfront, gen, cfg.p_student_codec, cfg.student_codec_snr_db)
            student_feats = phone_channel(student_feats, sfront, gen, cfg.p_student_phone)  # no draw at 0
            student_feats = lowpass(student_feats, sfront, gen, cfg.p_student_lowpass, cfg.student_lowpass_hz,
                                    allowed=torch.from_numpy(lowpass_ok[chosen]))  # no draw at 0
            if level is not None:
                student_feats = level_shift_crops(level, student_feats, scrops,
                                                  history_peaks(sbank, chosen, starts, crops.shape[1],
                                                                level.history_frames))
            targets = torch.from_numpy(is_cough[chosen])[:, None]
            head_w = None if cfg.cough_peak_db is None else torch.from_numpy(
                cough_head_weights(bank, chosen, crops, is_cough, front, cfg.cough_peak_db, peak_cache))[:, None]
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, sched)
            picked = None if label_rows is None else tuple(a[torch.from_numpy(chosen)] for a in label_rows)
            head_in = None  # the head teacher reads the crop before augmentation, at the teacher's floor
            if head_teacher is not None:
                head_in = torch.from_numpy(crops)
                head_in = head_in if teacher_floor is None else head_in.clamp_min(teacher_floor)
            terms = task(student_feats, targets, head_w, teacher_logmel=feats, labels=picked, head_logmel=head_in)
            loss = task.total(terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update(student, step)
            last = {k: float(v) for k, v in terms.items()} | {"loss": float(loss)}
            if step % cfg.log_every == 0 or step == cfg.max_steps - 1:
                log.write(json.dumps({"step": step, **last, "elapsed_s": time.perf_counter() - t0}) + "\n")
                log.flush()
            if (step + 1) % cfg.ckpt_every == 0 or step == cfg.max_steps - 1:
                meta = {**meta_base, "step": step + 1, "last_metrics": last}
                if ema is None:
                    save_checkpoint(out, student, meta, optimizer)
                else:  # the trained weights to resume from first, then the average export reads
                    save_checkpoint(out, student, meta, optimizer, tag="live")
                    save_checkpoint(out, ema.module(student), {**meta, "ema_decay": cfg.ema_decay})
    return last


class WeightAverage:
    """An exponential moving average of a module's floating-point state (parameters and batch-norm statistics;
    integer buffers, such as the batches a norm has tracked, are copied)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)

    def load(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.state.keys():
            raise ValueError("the averaged checkpoint does not hold the student's tensors")
        self.state = {k: v.clone() for k, v in state.items()}

    def module(self, like: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``like`` holding the averaged state."""
        import copy

        averaged = copy.deepcopy(like)
        averaged.load_state_dict(self.state)
        return averaged


def teacher_with_prompts(run: Path) -> tuple[AcuLaModel | BundleTeacher, dict[str, Any], list[str], np.ndarray]:
    """A teacher (an ``acula align`` run or a bundle), its metadata, and its prompt bank (texts, normalised
    joint-space embeddings)."""
    teacher: AcuLaModel | BundleTeacher
    teacher, meta = load_bundle_teacher(run) if is_bundle(run) else load_teacher(run)
    texts, prompts = teacher.prompt_bank() if isinstance(teacher, BundleTeacher) else embed_prompt_bank(teacher)
    return teacher, meta, texts, prompts


def kd_teacher_ensemble(runs: Sequence[str], texts: list[str], front: FrontendConfig
                       ) -> tuple[list[tuple[AcuLaModel | BundleTeacher, torch.Tensor]], list[Any]]:
    """The further KD teachers of ``DistillConfig.kd_teachers``, each with its prompt bank in the order of
    ``texts`` (the teacher's), and their teacher ids.  Raises ValueError for a missing run, another front end
    or another prompt bank."""
    out: list[tuple[AcuLaModel | BundleTeacher, torch.Tensor]] = []
    ids: list[Any] = []
    for run in runs:
        path = Path(run)
        if not path.exists():
            raise ValueError(f"kd_teachers: {run} does not exist (an acula align run directory or a bundle)")
        teacher, meta, own_texts, prompts = teacher_with_prompts(path)
        if FrontendConfig.from_dict(meta["frontend"]) != front:
            raise ValueError(f"kd_teachers: {run} was trained on another front end than the teacher")
        if own_texts != texts:
            raise ValueError(f"kd_teachers: {run} has another prompt bank than the teacher")
        out.append((teacher, torch.from_numpy(prompts)))
        ids.append({"run": str(run), "step": meta.get("step"), "teacher_id": meta.get("teacher_id"),
                    "bundle_sha256": meta.get("bundle_sha256")})
    return out, ids


def load_head_teacher(run: str | None, front: FrontendConfig) -> tuple[AcuLaModel | None, dict[str, Any] | None]:
    """``DistillConfig.head_teacher``'s model and its id (None, None when off).  Raises ValueError for a missing
    run, a bundle, a run without supervised heads or another front end than the teacher's."""
    if run is None:
        return None, None
    path = Path(run)
    if not path.is_dir() or is_bundle(path):
        raise ValueError(f"head_teacher: {run} is not an acula align run directory")
    model, meta = load_teacher(path)
    if model.sup_head is None:
        raise ValueError(f"head_teacher: {run} has no supervised heads (it was aligned with w_sup 0)")
    if FrontendConfig.from_dict(meta["frontend"]) != front:
        raise ValueError(f"head_teacher: {run} was trained on another front end than the teacher")
    return model, {"run": str(run), "step": meta.get("step"), "teacher_id": meta.get("teacher_id")}


def crops_at(bank: FeatureBank, chosen: np.ndarray, starts: np.ndarray, n_frames: int) -> np.ndarray:
    """The crops ``sample_batch`` cut (records ``chosen``, first frames ``starts``; a record shorter than ``n_frames``
    tiled), from another bank of the same frame grid (the student's own mel bank), shape (batch, n_frames, n_mels)."""
    out = []
    for i, start in zip(chosen, starts, strict=True):
        feats = bank.get(int(i))
        out.append(crop_or_tile(feats, n_frames, None) if feats.shape[0] < n_frames
                   else feats[int(start) : int(start) + n_frames])
    return np.stack(out)


def history_peaks(bank: FeatureBank, chosen: np.ndarray, starts: np.ndarray, n_frames: int,
                  history_frames: int) -> np.ndarray:
    """Per crop: the loudest cell of the record's frames in the running level's history before the crop (the
    ``history_frames`` frames up to the crop's end, less the crop's own), from the clean bank; -inf where there
    are none (a crop at the record's start, a tiled short record)."""
    out = np.full(len(chosen), -np.inf, np.float32)
    for k, (i, start) in enumerate(zip(chosen, starts, strict=True)):
        lo = max(0, int(start) + n_frames - history_frames)
        if lo < start:
            out[k] = float(bank.frames[bank.offsets[int(i)] + lo : bank.offsets[int(i)] + int(start)].max())
    return out


def level_shift_crops(level: Any, student_feats: torch.Tensor, clean: np.ndarray, history: np.ndarray) -> torch.Tensor:
    """The student's augmented crops (batch, frames, n_mels) shifted as ``sdk.level`` shifts a stream's windows:
    by their running level less ``level.ref``, then raised to ``level.low`` when it has a relative floor.  The
    running level is the augmented crop's own loudest cell, raised by as much as the clean history before it
    (``history``, :func:`history_peaks`) is louder than the clean crop (``clean``): exact for a uniform gain,
    the augmentation's level change carried over to the frames the crop does not hold."""
    own = student_feats.amax(dim=(1, 2))
    louder = np.maximum(history - clean.max(axis=(1, 2)), 0.0).astype(np.float32)
    running = own + torch.from_numpy(louder)
    out = student_feats - (running - float(level.ref))[:, None, None]
    return out if level.low is None else out.clamp_min(float(level.low))


def dataset_mask(corpus: Any, corpus_dir: Path, field: str, datasets: tuple[str, ...] | None) -> np.ndarray:
    """Per corpus row, whether its corpus is one of ``datasets`` (None: every row).  Raises ValueError naming
    ``field`` when it lists a corpus that ``corpus_dir`` does not hold."""
    if datasets is not None:
        unknown = set(datasets) - {r["dataset"] for r in corpus.rows}
        if unknown:
            raise ValueError(f"{field} names corpora not in {corpus_dir}: {sorted(unknown)}")
    return np.array([datasets is None or r["dataset"] in datasets for r in corpus.rows])


def shift_level(x: torch.Tensor, front: FrontendConfig, generator: torch.Generator, gain_db: float,
                p: float = 1.0, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """A uniform level change of +-``gain_db`` per crop on normalised log-mel, floored as the front end floors;
    each crop gets it with probability ``p``, and only where ``allowed`` (shape (batch,), bool) is true; the
    others are returned unchanged, unfloored."""
    shift = (torch.rand(x.shape[0], 1, 1, generator=generator) * 2 - 1) * gain_db
    floor = (10 * float(np.log10(front.amin_power)) - front.norm_mean_db) / front.norm_std_db
    shifted = (x + shift / front.norm_std_db).clamp_min(floor)
    if p >= 1.0 and allowed is None:
        return shifted
    chosen = torch.rand(x.shape[0], 1, 1, generator=generator) < p if p < 1.0 else torch.ones(x.shape[0], 1, 1,
                                                                                               dtype=torch.bool)
    if allowed is not None:
        chosen = chosen & allowed.reshape(-1, 1, 1).to(torch.bool)
    return torch.where(chosen, shifted, x)


def cough_head_weights(bank: FeatureBank, chosen: np.ndarray, crops: np.ndarray, is_cough: np.ndarray,
                       front: FrontendConfig, peak_db: float | None, peak_cache: dict[int, float]) -> np.ndarray:
    """Per-crop weight of the cough-head loss: 0 for crops of cough recordings without a burst within
    ``peak_db`` of the recording's loudest frame, 1 otherwise (every non-cough crop is a negative)."""
    w = np.ones(len(chosen), dtype=np.float32)
    if peak_db is None:
        return w
    margin = peak_db / front.norm_std_db  # dB -> normalised log-mel units
    for k, i in enumerate(chosen):
        i = int(i)
        if not is_cough[i]:
            continue
        if i not in peak_cache:
            peak_cache[i] = float(bank.get(i).mean(1).max())
        if float(crops[k].mean(1).max()) < peak_cache[i] - margin:
            w[k] = 0.0
    return w


def main(argv: Sequence[str] | None = None) -> int:
    presets = "\n".join(f"  {name:<12} student channels {list(c.student.channels)}, {c.max_steps} steps, "
                         f"batch {c.batch_size}" for name, c in PRESETS.items())
    parser = argparse.ArgumentParser(prog="acula distill", description=__doc__, epilog=f"presets:\n{presets}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True,
                        help="acula align run directory or checkpoint, or a model bundle (its fp32 ONNX student "
                             "teaches: distill/bundle_teacher.py)")
    parser.add_argument("--corpus", required=True, help="corpus directory from 'acula corpus build'")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl)")
    parser.add_argument("--config", default=None,
                        help=f"preset name ({', '.join(PRESETS)}; listed below), or a JSON file of fields over the "
                             "preset it names as \"preset\" (the dataclass defaults, the narrow student, when it "
                             "names none, as configs/distill/*.json); unknown fields are refused (default: "
                             "default-cpu)")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--kd-teacher", action="append", default=None, metavar="RUN",
                        help="a further KD teacher (align run or bundle), repeatable; replaces the config's "
                             "kd_teachers (scripts/train_default.sh passes the teachers it aligned itself)")
    parser.add_argument("--head-teacher", default=None, metavar="RUN",
                        help="the head teacher (an align run with supervised heads); replaces the config's "
                             "head_teacher, which must be set (scripts/train_default.sh passes the control it aligned)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint instead of resuming")
    args = parser.parse_args(argv)
    try:
        listed = resolve(args.config).kd_teachers if args.config and args.kd_teacher is not None else ()
        if listed and len(listed) != len(args.kd_teacher):
            raise ValueError(f"--kd-teacher gives {len(args.kd_teacher)} KD teachers where the config's kd_teachers "
                             f"lists {len(listed)} ({list(listed)}): the command line replaces that list, one for one")
        overrides: dict[str, Any] = {} if args.kd_teacher is None else {"kd_teachers": tuple(args.kd_teacher)}
        if args.head_teacher is not None:
            if resolve(args.config or "default-cpu").head_teacher is None:
                raise ValueError("--head-teacher replaces the config's head_teacher, and this config has none (its "
                                 "weights.head_kd is 0)")
            overrides["head_teacher"] = args.head_teacher
        cfg = run_config("acula distill", resolve, args.config, args.max_steps, Path(args.out), "distill_config",
                         args.fresh, overrides or None)
    except ValueError as exc:
        print(f"acula distill: {exc}", file=sys.stderr)
        return 1
    last = distill(cfg, Path(args.teacher), Path(args.corpus), Path(args.out), resume=not args.fresh)
    print(json.dumps({"final": last}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
