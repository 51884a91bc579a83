"""Distillation around a frozen teacher (kept in eval mode).

Loss = w_cos (1 - cos(student, teacher)) on joint-space embeddings
     + w_cka (1 - linear CKA) between the batch's student and teacher embeddings
     + w_kd  T^2 KL(teacher || student) over the prompt bank's scores at temperature T, one softmax per
             label set (so the fine distinctions inside a set, crackles against wheezes, are not drowned by the
             coarse ones between sets, a heart prompt against a cough prompt), averaged over the sets
             (with further KD teachers, ``kd_teachers``: the teacher's distribution over each label set is the
             mean of theirs, each from its own embedding, prompt bank and logit scale; the embedding terms
             still follow the one teacher whose joint space the student's embedding lives in)
     + w_head binary cross-entropy of the supervised heads (cough vs non-cough)
     + w_label cross-entropy of the student's zero-shot label distribution (per label set: the logit scale times
             the mean cosine to each label's prompts, as the SDK scores) against the training records' labels
             (``distill.labels``), averaged over the records that answer each set, then over the sets
     + w_head_kd the same cross-entropy against a supervised model's heads (``head_teacher``: an ``acula align`` run
             with ``aligner.supervised`` heads, reading the crop before augmentation) turned into heart and lung
             label distributions (``distill.labels.head_label_targets``), on the records that answer each set:
             soft, per-crop targets where the labels are one per record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from acula.aligner.losses import linear_cka
from acula.aligner.model import AcuLaModel
from acula.distill.bundle_teacher import BundleTeacher
from acula.distill.student import StreamingStudent
from torch import nn


@dataclass(frozen=True)
class DistillWeights:
    cos: float = 1.0
    cka: float = 0.5
    kd: float = 1.0
    head: float = 1.0
    kd_temperature: float = 2.0
    label: float = 0.0
    head_kd: float = 0.0


class DistillTask(nn.Module):
    def __init__(self, teacher: AcuLaModel | BundleTeacher, student: StreamingStudent, prompts: torch.Tensor,
                 weights: DistillWeights | None = None, prompt_groups: list[list[int]] | None = None,
                 kd_teachers: Sequence[tuple[AcuLaModel | BundleTeacher, torch.Tensor]] = (),
                 label_averaging: tuple[torch.Tensor, list[slice]] | None = None,
                 head_teacher: AcuLaModel | None = None) -> None:
        """``prompts``: (n_prompts, embed_dim) teacher text embeddings, already projected and normalised;
        ``prompt_groups``: the prompt indices of each label set (None: one softmax over all prompts);
        ``kd_teachers``: further (teacher, its prompts in the same order) whose label-set distributions are
        averaged with the teacher's into the KD target; ``label_averaging``: for the label term, the (n_prompts,
        n_labels) matrix averaging each label's prompt scores and each label set's columns
        (``distill.labels.prompt_averaging``); ``head_teacher``: a model with supervised heads, for the head-teacher
        term (``weights.head_kd``)."""
        super().__init__()
        self.teacher = teacher.eval()
        self.kd_teachers = nn.ModuleList([t.eval() for t, _ in kd_teachers])
        for k, (_, p) in enumerate(kd_teachers):
            if p.shape[0] != prompts.shape[0]:
                raise ValueError(f"KD teacher {k} has {p.shape[0]} prompts, the teacher {prompts.shape[0]}: "
                                 "their prompt banks must list the same prompts in the same order")
            self.register_buffer(f"kd_prompts_{k}", p)
        for p in [*self.teacher.parameters(), *self.kd_teachers.parameters()]:
            p.requires_grad_(False)
        self.student = student
        self.register_buffer("prompts", prompts)
        self.weights = weights or DistillWeights()
        if (self.weights.label or self.weights.head_kd) and label_averaging is None:
            raise ValueError("the label and head-teacher terms (weights.label, weights.head_kd > 0) need "
                             "label_averaging (distill.labels.prompt_averaging)")
        if self.weights.head_kd and (head_teacher is None or head_teacher.sup_head is None):
            raise ValueError("the head-teacher term (weights.head_kd > 0) needs a head_teacher with supervised heads "
                             "(an acula align run trained with w_sup > 0)")
        self.head_teacher = None if head_teacher is None else head_teacher.eval()
        if self.head_teacher is not None:
            for p in self.head_teacher.parameters():
                p.requires_grad_(False)
        self.label_slices = [] if label_averaging is None else list(label_averaging[1])
        if label_averaging is not None:
            self.register_buffer("label_matrix", label_averaging[0])
        self.prompt_groups = prompt_groups or [list(range(prompts.shape[0]))]
        self.logit_scale = float(teacher.logit_scale.detach().exp().clamp(max=100.0))
        self.kd_logit_scales = [float(t.logit_scale.detach().exp().clamp(max=100.0)) for t, _ in kd_teachers]

    def train(self, mode: bool = True) -> DistillTask:
        super().train(mode)
        self.teacher.eval()  # the teacher never leaves eval mode (batch norm statistics stay frozen)
        self.kd_teachers.eval()
        if self.head_teacher is not None:
            self.head_teacher.eval()
        return self

    def forward(self, logmel: torch.Tensor, head_targets: torch.Tensor,
                head_weights: torch.Tensor | None = None, teacher_logmel: torch.Tensor | None = None,
                labels: tuple[torch.Tensor, torch.Tensor] | None = None,
                head_logmel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``head_weights`` (same shape as the targets, optional): 0 leaves a window out of the head loss.
        ``teacher_logmel``: the teacher's input when it differs from the student's (same crops, e.g. without
        the student-only level change).  ``labels``: (targets, known) of the crops' records
        (``distill.labels.label_targets``), for the label term and the head-teacher term; ``head_logmel``: the
        head teacher's input (the crops before augmentation; None: ``teacher_logmel``)."""
        w = self.weights
        teacher_in = logmel if teacher_logmel is None else teacher_logmel
        with torch.no_grad():
            target = self.teacher.embed_audio(teacher_in)
        student, heads = self.student(logmel)
        terms = {"cos": 1 - F.cosine_similarity(student, target, dim=-1).mean(),
                 "cka": 1 - linear_cka(student, target)}
        t_logp = self._group_log_probs(target, self.prompts, self.logit_scale)
        if len(self.kd_teachers):
            with torch.no_grad():
                each = [t_logp]
                for k, (t, scale) in enumerate(zip(self.kd_teachers, self.kd_logit_scales, strict=True)):
                    each.append(self._group_log_probs(t.embed_audio(teacher_in), getattr(self, f"kd_prompts_{k}"),
                                                      scale))
            # the mean of the teachers' probabilities, per label set, as log-probabilities
            t_logp = [torch.logsumexp(torch.stack(parts), 0) - math.log(len(parts))
                      for parts in zip(*each, strict=True)]
        s_logp = self._group_log_probs(student, self.prompts, self.logit_scale)
        terms["kd"] = torch.stack([F.kl_div(s, t, log_target=True, reduction="batchmean")
                                   for s, t in zip(s_logp, t_logp, strict=True)]).mean() * w.kd_temperature**2
        if head_weights is None:
            terms["head"] = F.binary_cross_entropy_with_logits(heads, head_targets)
        else:
            per = F.binary_cross_entropy_with_logits(heads, head_targets, reduction="none") * head_weights
            terms["head"] = per.sum() / head_weights.sum().clamp(min=1.0)
        if labels is not None and self.label_slices:
            logits = self.logit_scale * (F.normalize(student, dim=-1) @ self.prompts.T) @ self.label_matrix
            terms["label"] = self._label_term(logits, *labels)
            if self.head_teacher is not None and w.head_kd:
                from acula.aligner.supervised import SUPERVISED_HEADS
                from acula.distill.labels import head_label_targets

                with torch.no_grad():
                    head_in = teacher_in if head_logmel is None else head_logmel
                    head_logits = self.head_teacher.sup_head(self.head_teacher.pooled(head_in))  # type: ignore[misc]
                soft, answered = head_label_targets(head_logits, list(SUPERVISED_HEADS))
                terms["head_kd"] = self._label_term(logits, soft, labels[1] * answered)
        return terms

    def _label_term(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each label set's zero-shot distribution (``logits``: the scaled label scores, (n,
        n_labels)) against target distributions, averaged over the rows answering the set (``known`` (n, n_sets)),
        then over the sets some row in the batch answers."""
        per_set = []
        for k, cols in enumerate(self.label_slices):
            n = known[:, k].sum()
            if float(n) > 0:
                ce = -(targets[:, cols] * F.log_softmax(logits[:, cols], -1)).sum(-1)
                per_set.append((ce * known[:, k]).sum() / n)
        return torch.stack(per_set).mean() if per_set else logits.sum() * 0.0

    def _group_log_probs(self, emb: torch.Tensor, prompts: torch.Tensor, logit_scale: float) -> list[torch.Tensor]:
        """Per label set, log-softmax of the scaled cosine scores at the KD temperature."""
        scores = logit_scale * F.normalize(emb, dim=-1) @ prompts.T / self.weights.kd_temperature
        return [F.log_softmax(scores[:, g], -1) for g in self.prompt_groups]

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.weights
        total = w.cos * terms["cos"] + w.cka * terms["cka"] + w.kd * terms["kd"] + w.head * terms["head"]
        total = total + w.label * terms["label"] if "label" in terms else total
        return total + w.head_kd * terms["head_kd"] if "head_kd" in terms else total
