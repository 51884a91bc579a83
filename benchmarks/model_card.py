"""Write MODEL_CARD.md for the packaged default bundle from its manifest and benchmarks/results/.

    python -m acula.benchmarks.model_card [--bundle sdk/models/default] [--results benchmarks/results] [--out MODEL_CARD.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from acula.aligner.fold_table import fold_table
from acula.benchmarks.cough_screening import BOOTSTRAP_DRAWS, BOOTSTRAP_SEED
from acula.benchmarks.cough_screening import table as cough_table
from acula.export.operating_point import POOLED_CALIBRATED_ON

DATA = """| data set | sound | devices | population | used for |
|---|---|---|---|---|
| Coswara (2020-04-13 batch) | cough, breathing, counting, vowel | phones and browsers | 76 adults in India; healthy, exposed or with respiratory illness; **no COVID-positive participants** | alignment, distillation, cough head |
| PhysioNet/CinC 2016 (sets a, b, c, d, f) | heart sounds | several electronic stethoscopes, 5 hospitals | children and adults, normal / abnormal | alignment, distillation |
| ICBHI 2017 (cycle subset) | lung sounds, one breathing cycle each | Meditron, Littmann 3200, Littmann Classic II SE | 73 patients, mostly adult COPD; children with URTI / bronchiolitis | alignment, distillation |
| ESC-10 | environmental sounds | field recordings | - | negatives for the cough head, alignment |"""

LIMITS = """- **Device bias.** Training audio comes from a handful of stethoscopes and phone microphones; band-limiting,
  gain, EQ and noise augmentation narrow, but do not close, the gap to other devices.
- **Heart recordings from an unseen site.** Leave-one-database-out AUROC differs widely from database to
  database (the per-database tables above).  On PhysioNet database f this model, its teacher and the
  unaligned AudioSet encoder score at or below chance under both probes, and YAMNet under one of them: what
  separates abnormal from normal recordings at the other sites points the other way there.
- **Small lung data.** ICBHI holds 73 patients, most with COPD; crackle and wheeze scores on other populations
  are not established.
- **No COVID positives** in the Coswara batch used: nothing here detects COVID-19.
- **General-purpose text teacher.** Reports were embedded with all-MiniLM-L6-v2, not a medical language model;
  the AcuLa paper's gains come from a medical teacher (MedGemma-class).  It also ignores negation ('There is
  no wheezing.' lies nearer to 'wheezing' than the sentence affirming wheezes; `python -m acula.aligner.reports
  --negation`), so no prompt negates a finding, but the reports the encoder was aligned to still do.
- **Reports are templates** written from metadata; they hold only the labels the data sets provide.
- **The cough operating point trades recall for false alarms.** It was chosen on 20 val coughs and 117 phone
  non-cough recordings (39, heard three ways), so it moves between builds (0.855-0.985 over seven builds of the
  previous recipe, `benchmarks/results/selection_rule_operating_point.md`; 0.895-0.99 over four of this one,
  `benchmarks/results/operating_point_label_val.md`; 0.94-0.995 over the six builds of this recipe and the previous
  one on distillation seeds 6-8, `benchmarks/results/operating_point_slph_val.md`).  This build's is 0.96: 17 of the
  20 val coughs raise an event as recorded.  At it, 3 of the 9 Smith 2006 coughs (another population, a lapel
  microphone) raise an event (`benchmarks/results/cough_events.md`); the previous default flagged 2 at 0.99, the one
  before it 3 at 0.86 and 5 at 0.71.  Coughs unlike the corpus's may be missed.  An app can move the point (`set_cough_threshold`, `--cough-on`) and should measure on its own
  recordings.
- **Synthetic demo audio** (`acula demo`) is not a model of real coughs; the detector is not tuned to it.
- Screening support and research only; **not a diagnostic device**."""

COUGH_REFERENCE = (
    "YAMNet's own Cough class (threshold {threshold} on any 0.975 s patch, fixed, not tuned) runs on the same "
    "recordings in the same run. 'Flagged by both' on a non-cough phone recording hints that the recording holds a "
    "cough after all (Coswara breathing and counting recordings are labelled by task, not listened to); it is not "
    "proof, and nothing here is relabelled: every figure counts such recordings as false alarms.")

RETRAIN = """1. Put a Hugging Face model directory of the medical teacher on the GPU server (e.g. a MedGemma checkpoint).
2. `acula corpus build --data DATA --out corpus --teacher /models/medgemma` (decoder models: masked mean
   pooling of a chosen hidden layer; see `aligner/teacher.py`), optionally with LLM-written reports
   (`--llm-url http://localhost:8000/v1 --llm-model NAME`).
3. `torchrun --nproc-per-node 8 -m acula.aligner.train --config opera-gt-gpu --corpus corpus --out align` (a ViT-S
   masked autoencoder from scratch; to start from an OPERA-GT checkpoint, pass a JSON config
   `{"preset": "opera-gt-gpu", "encoder_weights": "/models/encoder-operaGT.ckpt"}` instead: prefixed keys,
   Lightning `state_dict` files and safetensors load, and a different input size or width is refused).
4. `acula distill --teacher align --corpus corpus --out distill` and
   `acula export --student distill --corpus corpus --out bundle`."""


def _rows(results: Path, name: str) -> list[dict]:
    path = results / name
    return json.loads(path.read_text()) if path.is_file() else []


def _operating_rule(screening: dict) -> str:
    """How the bundle's cough threshold was chosen, in words, for either calibration rule a bundle may carry."""
    recall = screening.get("val_cough_recording_recall")
    fa = screening.get("val_false_alarms_per_hour", float("nan"))
    if "targets" in screening:
        limits = ", ".join(f"{100 * v:g} % of {g} recordings" for g, v in screening["targets"].items())
        got = ", ".join(f"{g} {100 * v:.1f} %" for g, v in screening.get("val_fraction_flagged", {}).items())
        met = "" if screening.get("targets_met", True) else " No threshold met them: the highest was taken."
        if screening.get("calibrated_on") == POOLED_CALIBRATED_ON:
            return (f"Chosen on the validation split by the pooled rule: the lowest threshold at which at most {limits} "
                    "carry a cough event, the phone recordings (coughs, breathing, speech) heard as recorded, at 8 kHz "
                    "and 8-bit mu-law at 8 kHz together, each through the SDK (steadier between builds than the "
                    "rule over recordings as recorded alone: `benchmarks/results/selection_rule_operating_point.md`)."
                    f"{met} Measured there, recordings with an event: {got}; {fa:.2f} false alarms per hour on its "
                    f"{screening.get('val_noncough_hours')} h of non-cough audio screened; recall on cough recordings "
                    f"{recall} (recordings per group, the phone ones counted in each channel: "
                    f"{screening.get('n_val_recordings')}). Cough probabilities from "
                    f"`{screening.get('probabilities_from')}`.")
        return (f"Chosen on the validation split as the lowest threshold at which at most {limits} carry a cough "
                f"event.{met} Measured there, recordings with an event: {got}; {fa:.2f} false alarms per hour on its "
                f"{screening.get('val_noncough_hours')} h of non-cough audio; recall on cough recordings {recall} "
                f"(recordings per group: {screening.get('n_val_recordings')}). Cough probabilities for the choice "
                f"came from `{screening.get('probabilities_from', 'the torch student')}` on the SDK's windows of "
                f"float32 features; the SDK's quality gate, not applied there, can only remove events.")
    return (f"Chosen on the validation split as the lowest threshold with at most "
            f"{screening.get('target_false_alarms_per_hour')} false alarms per hour on its "
            f"{screening.get('val_noncough_hours')} h of non-cough audio (measured there: {fa:.2f} per hour; recall "
            f"on validation cough recordings {recall}).")


def _point_source(results: Path) -> str:
    """Which validation audio the operating point of the stored screening runs was chosen on."""
    f = results / "cough_screening_val.json"
    point = json.loads(f.read_text()).get("operating_point", {}) if f.is_file() else {}
    if point.get("calibrated_on") == POOLED_CALIBRATED_ON:
        return ("The point was chosen on val with the phone recordings heard through these two channels as well "
                "(the pooled rule).  ")
    return "Nothing is tuned to the channel.  "


def _sample_size_note(data: dict) -> str:
    """What the screening table's small groups mean for its rates, from the counts in the results file."""
    phone = data["groups"].get("breathing + speech (phone)", {})
    cough = data["groups"].get("cough (phone)", {})
    where = (f" The {phone['n']} phone non-cough recordings come from {phone['participants']} participants and the "
             f"{cough.get('n')} cough recordings from {cough.get('participants')}; recordings of one participant "
             "are not independent, so an interval over recordings can be too narrow." if "participants" in phone else "")
    if "participant_bootstrap_ci95" in phone and "participant_bootstrap_ci95" in cough:
        (plo, phi), (clo, chi) = phone["participant_bootstrap_ci95"], cough["participant_bootstrap_ci95"]
        where += (f" Resampling participants instead of recordings ({BOOTSTRAP_DRAWS:,} draws, seed {BOOTSTRAP_SEED}) "
                  f"gives {100 * plo:.1f}-"
                  f"{100 * phi:.1f} % for the phone non-cough rate and {100 * clo:.1f}-{100 * chi:.1f} % for recall; a "
                  "percentile bootstrap over about ten participants is itself optimistic, and where nothing was "
                  "flagged it collapses to 0, so neither interval is the last word.")
    step = 100 / max(phone.get("n", 1), 1)
    return (f"Intervals are 95 % Wilson intervals over recordings. Groups this small move a lot with one recording "
            f"(one phone recording is {step:.1f} points here).{where}")


def flagged_kinds(data: dict, group: str) -> list[tuple[str, int]]:
    """How many flagged recordings of ``group`` there are of each recording type (file stem), most first."""
    from collections import Counter

    paths = data.get("groups", {}).get(group, {}).get("flagged_paths", [])
    return sorted(Counter(Path(p).stem for p in paths).items(), key=lambda kv: (-kv[1], kv[0]))


def _student_line(prov: dict) -> str:
    """The student's architecture and distillation recipe, from the bundle's provenance."""
    student, recipe = prov.get("student_config", {}), prov.get("distill_config", {})
    parts = ["depthwise-separable CNN"]
    if prov.get("student_parameters"):
        parts[0] += f" with {prov['student_parameters']:,} parameters"
    parts.append(f"channels {'-'.join(map(str, student.get('channels', [])))}")
    parts.append(f"strides {'-'.join(map(str, student.get('strides', [])))}")
    if student.get("embed_rank"):
        parts.append(f"a {student['embed_rank']}-d linear bottleneck before the embedding")
    parts.append(f"heads: {', '.join(student.get('heads', [])) or 'none'}")
    per_set = "one softmax per label set" if recipe.get("kd_per_label_set") else "one softmax over all prompts"
    return (f"- Architecture: {', '.join(parts)}; distilled for {recipe.get('max_steps'):,} steps (preset "
            f"`{recipe.get('name')}`, zero-shot KD weight {recipe.get('weights', {}).get('kd')}, {per_set}).")


def primary_section(results: Path) -> list[str]:
    """The primary protocol's headline tables and the student's full invariance table (``primary.json``)."""
    from acula.benchmarks.readme import primary_summary

    path = results / "primary_default.json"  # the packaged bundle's own run, once there is one
    source, command = "primary_default.json", "bash scripts/eval_default.sh"
    if not path.is_file():
        path, source, command = results / "primary.json", "primary.json", "bash scripts/eval_primary.sh"
    if not path.is_file():
        return ["_No primary evaluation yet: `bash scripts/eval_primary.sh`._", ""]
    res = json.loads(path.read_text())
    lines = ["### Primary protocol", ""] + primary_summary(res, source, command) + [""]
    student = next((s for s in res.get("invariance", {}) if s.startswith("student")), None)
    if student:
        per_t = res["invariance"][student]
        tasks = list(per_t)
        lines += [f"Invariance of {student} per task: own-score AUROC under the transform / mean shift / max "
                  "shift of the SDK probability / records unscored (clean AUROC in the header):", "",
                  "| transform | " + " | ".join(f"{t} ({res['rows'][student][t].get('native', {}).get('auroc', 0):.3f})"
                                                 for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
        for name in dict.fromkeys(n for t in tasks for n in per_t[t]):
            cells = []
            for t in tasks:
                r = per_t[t].get(name)
                cells.append("-" if r is None else
                             f"{r.get('native_auroc', float('nan')):.3f} / {r.get('native_shift_mean', float('nan')):.3f}"
                             f" / {r.get('native_shift_max', float('nan')):.3f} / {r.get('n_lost', 0)}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += valid_records_unscored(results / "invariance_valid_records.json" if source == "primary.json" else path)
    return lines


#: the system of ``primary_default.json`` that is the packaged bundle as shipped, and its float twin
SHIPPED_SYSTEM, FP32_SYSTEM = "student int8 ONNX", "student fp32 ONNX"
INVARIANCE_GAINS = ("gain-6", "gain-12", "gain-24", "peak-1")


def _auc(r: dict | None) -> str:
    if not r:
        return "n/a"
    lo, hi = r.get("ci95", (float("nan"), float("nan")))
    return f"{r['auroc']:.3f} ({lo:.2f}-{hi:.2f})"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _flagged(path: Path, *groups: str) -> tuple[int, int] | None:
    if not path.is_file():
        return None
    g = json.loads(path.read_text())["groups"]
    k, n = sum(int(g[x]["flagged"]) for x in groups if x in g), sum(int(g[x]["n"]) for x in groups if x in g)
    return (k, n) if n else None


def targets_section(bundle: Path, results: Path) -> list[str]:
    """Issue 24's targets, one row each, against the packaged bundle's own evaluation (``primary_default.json``,
    the cough screening runs, ``calibration.json`` and the bundle itself): the measured figure, with its interval
    where there is one, and whether it meets the target.  Every figure is one the sections below report in full;
    this table only lines them up against the targets (a figure of val + test, the protocol's scored splits)."""
    from acula.benchmarks.cough_screening import flagged_cell
    from acula.benchmarks.readme import native_drop, worst_group

    path = results / "primary_default.json"
    if not path.is_file():
        return []
    res = json.loads(path.read_text())
    rows = res["rows"].get(SHIPPED_SYSTEM)
    if rows is None:
        return []
    inv = res.get("invariance", {}).get(SHIPPED_SYSTEM, {})
    out = ["### Against the issue's targets", "",
           f"The shipped bundle ({SHIPPED_SYSTEM}, the primary protocol's val + test records, 95 % patient bootstrap "
           "intervals) against each target of issue 24 (`python -m acula.benchmarks.model_card`; the sections below "
           "hold every figure in full, `benchmarks/results/ablation.md` every lever tried):", "",
           "| target | measured | verdict |", "|---|---|---|"]

    def add(target: str, measured: str, ok: bool | None) -> None:
        out.append(f"| {target} | {measured} | {_verdict(ok)} |")

    def native(task: str) -> dict | None:
        return rows.get(task, {}).get("native") or None

    c = native("cough")
    add("cough AUROC >= 0.99", _auc(c), None if c is None else c["auroc"] >= 0.99)
    t = PHONE_TARGETS
    for split, clean in (("val", "cough_screening_val.json"), ("test", "cough_screening.json")):
        for channel, name in (("as recorded", clean), ("8 kHz mu-law", f"cough_screening_phone_mulaw8k_{split}.json")):
            f = results / name
            rec = _flagged(f, "cough (phone)")
            nc = _flagged(f, "breathing + speech (phone)")
            st = _flagged(f, "heart (stethoscope)", "lung (stethoscope)")
            if rec is None:
                continue
            add(f"phone coughs with an event >= {t['recall']:.0%} ({split}, {channel})", flagged_cell(*rec),
                rec[0] >= t["recall"] * rec[1])
            if nc is not None:
                add(f"phone non-cough flagged <= {t['phone_noncough']:.0%} ({split}, {channel})", flagged_cell(*nc),
                    nc[0] <= t["phone_noncough"] * nc[1])
            if st is not None:
                add(f"stethoscope recordings flagged <= {t['stethoscope']:.0%} ({split}, {channel})", flagged_cell(*st),
                    st[0] <= t["stethoscope"] * st[1])
    h = rows.get("heart_abnormal", {})
    for key, words in (("probe_logo", "probe, leave-one-database-out"), ("native_by", "zero-shot")):
        per = h.get(key)
        if per:
            k, auroc = worst_group(per)
            add(f"heart worst database >= 0.65 ({words})", f"{auroc:.3f} (database {k})", auroc >= 0.65)
    if h.get("native_within_by") is not None:
        add("heart within-database standardised zero-shot >= 0.80", f"{h['native_within_by']:.3f}",
            h["native_within_by"] >= 0.80)
    for key, words in (("native_by", "zero-shot"), ("probe_logo", "probe, leave-one-database-out")):
        per = h.get(key)
        if per:
            mean_db = sum(v["auroc"] for v in per.values()) / len(per)
            add(f"heart mean >= 0.85: the databases' mean ({words})", f"{mean_db:.3f} over {len(per)} databases",
                mean_db >= 0.85)
    add("heart mean >= 0.85: read as the pooled AUROC (zero-shot)", _auc(h.get("native")),
        None if not h.get("native") else h["native"]["auroc"] >= 0.85)
    for task, goal in (("crackles", 0.75), ("wheezes", 0.80)):
        r = rows.get(task, {})
        add(f"{task} AUROC >= {goal:.2f} at cycle level (zero-shot)", _auc(r.get("native")),
            None if not r.get("native") else r["native"]["auroc"] >= goal)
        if r.get("native_within_recording") is not None:
            add(f"{task} within recording >= 0.65 (zero-shot)", f"{r['native_within_recording']:.3f}",
                r["native_within_recording"] >= 0.65)
        per = r.get("probe_logo")
        if per:
            k, auroc = worst_group(per)
            add(f"{task} leave-one-device-out reported (worst device, probe)", f"{auroc:.3f} ({k})", True)
    cells = [inv[task][g] for task in inv for g in INVARIANCE_GAINS if g in inv[task]]

    def largest(key: str) -> float | None:  # None (n/a) where a cell lacks the figure: a missing shift is not 0
        got = [x.get(f"native_{key}", x.get(f"probe_{key}")) for x in cells]
        return None if not got or any(v is None or v != v for v in got) else max(got)

    mean, mx = largest("shift_mean"), largest("shift_max")
    if cells:
        add("gain -24 to 0 dB and peak normalisation: mean probability shift <= 0.01, every label set",
            "n/a" if mean is None else f"{mean:.3f} (largest over {', '.join(INVARIANCE_GAINS)} and the tasks)",
            None if mean is None else mean <= 0.01)
        unclipped = [x["native_shift_max_unclipped"] for x in cells if "native_shift_max_unclipped" in x]
        also = (f"; {max(unclipped):.3f} on the records not clipped at their source" if mx is not None and unclipped
                and max(unclipped) != mx else "")
        add("the same: max probability shift <= 0.05 (every record)", "n/a" if mx is None else f"{mx:.3f}{also}",
            None if mx is None else mx <= 0.05)

    def drops(tasks: tuple[str, ...], transforms: tuple[str, ...]) -> list[tuple[float, str]]:
        return [(d, f"{task} {name}") for task in tasks for name in transforms
                if (d := native_drop(rows, inv, task, name)) is not None]

    for tasks, transforms, words in ((("cough", "cough_detector"), ("phone8k", "mulaw8k"), "cough, 8 kHz / mu-law"),
                                     (("heart_abnormal",), ("lp2k", "lp1k"), "heart, 1-2 kHz low-pass"),
                                     (("crackles", "wheezes"), ("lp2k", "lp1k"), "lung, 1-2 kHz low-pass")):
        d = drops(tasks, transforms)
        if d:
            worst = max(d)
            add(f"AUROC drop <= 0.02 ({words})", f"{worst[0]:+.3f} ({worst[1]})", worst[0] <= 0.02)
    levels = (*INVARIANCE_GAINS, "gain-40")
    lost = [inv[task][g].get("n_lost", 0) for task in inv for g in levels if g in inv[task]]
    if lost:
        add("no valid recording loses its score from -40 dBFS peak up",
            f"{max(lost)} unscored (most under any of {', '.join(levels)}, any task)", max(lost) == 0)
    cal = results / "calibration.json"
    if cal.is_file():
        lung = json.loads(cal.read_text())["splits"].get("val", {}).get("lung")
        if lung:
            e, (lo, hi) = lung["shipped"]["ece"], lung["shipped"]["ece_95"]
            add("lung calibrated: validation ECE <= 0.05 (the point estimate)",
                f"{e:.3f} ({lo:.3f}-{hi:.3f}{'; the interval reaches over 0.05' if hi > 0.05 else ''})", e <= 0.05)
            spread = lung.get("spread_p5_p95", {})
            found = {k: v for k, v in spread.items() if k != "normal"}
            add("lung probabilities not flat (here: a finding's p95 reaches 0.5)",
                "; ".join(f"p({k}) p5-p95 {v[0]:.2f}-{v[1]:.2f}" for k, v in found.items()),
                bool(found) and any(v[1] >= 0.5 for v in found.values()))
    fp32 = res["rows"].get(FP32_SYSTEM)
    if fp32:
        gaps = [(abs(rows[task]["native"]["auroc"] - fp32[task]["native"]["auroc"]), task) for task in rows
                if rows[task].get("native") and fp32.get(task, {}).get("native")]
        if gaps:
            gap = max(gaps)
            add("int8 within 0.01 AUROC of fp32, every task", f"{gap[0]:.3f} ({gap[1]})", gap[0] <= 0.01)
    manifest = json.loads((bundle / "manifest.json").read_text())
    size = sum(int(i["bytes"]) for i in manifest["files"].values())
    add("bundle <= 2 MB (every file of it)", f"{size / 1e6:.2f} MB", size <= 2e6)
    n_met = sum(1 for line in out[6:] if line.endswith("| met |"))
    n_all = sum(1 for line in out[6:] if line.endswith(" |") and "| n/a |" not in line)
    return out + ["", f"{n_met} of {n_all} rows met.", ""]


def valid_records_unscored(path: Path) -> list[str]:
    """Records unscored under the transforms, valid ones apart from those clipped at their source rate, from a
    results file of ``aligner.primary`` that counts them apart (``invariance_valid_records.json`` for the bundle
    ``primary.json`` measured, else the packaged bundle's own ``primary_default.json``)."""
    if not path.is_file():
        return []
    res = json.loads(path.read_text())
    system, per_t = next(iter(res.get("invariance", {}).items()), (None, {}))
    counts: dict[str, list[int]] = {}
    for rows in per_t.values():
        for name, r in rows.items():
            c = counts.setdefault(name, [0, 0])
            c[0], c[1] = max(c[0], r.get("n_lost", 0)), max(c[1], r.get("n_lost_source_clipped", 0))
    lost = [f"{name}: {valid} valid, {clipped} unscored at the source rate" for name, (valid, clipped) in
            counts.items() if valid or clipped]
    return [f"Records unscored, counted apart (`{path.with_suffix('.md').name}`, {system}, the same bundle; largest "
            "over the tasks): a recording the SDK leaves unscored at its own source rate is not a valid recording "
            "to lose.  Clipped 8 kHz recordings pass the gate in the evaluation's 16 kHz copy, whose resampling "
            "rings across the flat tops, and are flagged again once a low-pass removes the ringing.  "
            + ("; ".join(lost) if lost else "none") + f"; every other transform of the {len(counts)}: none.", ""]


def render(bundle: Path, results: Path) -> str:
    manifest = json.loads((bundle / "manifest.json").read_text())
    prov, screening = manifest["provenance"], manifest["screening"]
    lines = ["# Model card: AcuLa Edge default bundle", "",
             "_Generated by `python -m acula.benchmarks.model_card` from the bundle manifest and `benchmarks/results/`._",
             "", "## Intended use", "",
             "Screening support and research on body sounds: cough event detection on phone audio, and zero-shot "
             "scores for heart (normal / abnormal), lung (normal / crackles / wheezes) and sound type. It is **not "
             "a diagnostic device** and must not be used to make clinical decisions.", "",
             "## Model", "",
             f"- Streaming student, {manifest['embed_dim']}-d joint embedding, window {manifest['window_frames']} "
             f"frames ({manifest['window_frames'] * 0.032:.2f} s), hop {manifest['hop_frames']} frames "
             f"({manifest['hop_frames'] * 0.032:.2f} s); files: "
             + ", ".join(f"`{n}` ({i['bytes'] / 1024:.0f} KB)" for n, i in manifest["files"].items()) + ".",
             _student_line(prov),
             f"- Teacher: EfficientAT mn04 (AudioSet) aligned with text teacher `{prov.get('teacher_id')}` "
             "(CKA + InfoNCE + masked modelling, and the supervised heads as an extra loss, with a +-24 dB level "
             "augmentation in alignment and distillation; the student on a front end floored at -160 dB, trained "
             "and scored on windows shifted to their running level with a relative floor 130 dB under it, so its "
             "outputs do not depend on the recording level; its zero-shot scores also trained against the training "
             "split's heart, lung and sound labels (a cross-entropy beside the distillation terms, "
             "`distill.labels`), and half its heart crops heard through a 1-2 kHz stethoscope low-pass by the "
             "student alone, the teacher's target from the full band: `configs/align/sup-heads-gain24.json`, "
             "`configs/distill/gain24-lowfloor-shift-label-slph.json`, `bash scripts/train_default.sh`; why: "
             "`benchmarks/results/selection_rule_neutral.md`, `benchmarks/results/selection_rule_gain24_bw.md`, "
             "`benchmarks/results/selection_rule_gain24_lowfloor_shift.md`, "
             "`benchmarks/results/selection_rule_gain24_lowfloor_shift_label.md`, "
             "`benchmarks/results/selection_rule_gain24_lowfloor_shift_label_slph_fresh.md`); run "
             f"`{prov.get('teacher_run')}`, git `{prov.get('git_commit')}`.",
             f"- Export parity: {json.dumps(prov.get('parity', {}))}.", "", "## Data", "", DATA, "",
             f"Trained on the group-disjoint train split; the validation split set the cough operating point; the "
             f"test split and validation split are the evaluation population. Records by split: "
             f"`{json.dumps(prov.get('data', {}).get('records_by_split', {}))}`.", "", "## Metrics", ""]
    lines += targets_section(bundle, results)
    lines += primary_section(results)
    rows = _rows(results, "retention.json")
    if rows:
        lines += ["### Older protocol: distillation retention", "",
                  "AUROC on held-out recordings (val + test), linear probe (mean of 5 seeds, 95 % group-bootstrap "
                  "interval); zero-shot with the task table's prompts through the teacher's text projection (the same "
                  "rule for teacher and student), and through the SDK (the bundle's label sets, what `acula score` "
                  "returns). For heart_abnormal_lodo the linear probe is the mean of the five leave-one-database-out "
                  "AUROCs, while its interval is bootstrapped from the pooled out-of-database predictions, so the "
                  "mean can fall outside it. Two probes: one fit on the held-out records only (out of fold), and "
                  "one fit in every fold also on the training-split records (other participants, the records the "
                  "model was trained on); both score the same held-out records. The logistic regression's C is "
                  "chosen per fold from a fixed grid on records that are never scored (an inner cross-validation "
                  "of the fold's training side, or the training split alone for the second probe; the strongest "
                  "regularisation within one standard error of the best inner AUROC; `aligner.evaluate.choose_c`). "
                  "Command: see `benchmarks/results/retention.md`.", "",
                  "| system | task | n (pos) | linear probe | 95 % CI | probe + train split | 95 % CI | zero-shot | "
                  "95 % CI | zero-shot (SDK) |", "|---|---|---|---|---|---|---|---|---|---|"]
        nan2 = [float("nan")] * 2
        for r in rows:
            ci, tci = r.get("probe_ci95", nan2), r.get("probe_train_ci95", nan2)
            z = r.get("zero_shot_auroc")
            zci = r.get("zero_shot_ci95", nan2)
            lines.append(f"| {r['system']} | {r['task']} | {r['n']} ({r['n_pos']}) | {r['probe_auroc']:.3f} | "
                         f"{ci[0]:.3f}-{ci[1]:.3f} | "
                         + (f"{r['probe_train_auroc']:.3f} | {tci[0]:.3f}-{tci[1]:.3f} | " if "probe_train_auroc"
                            in r else "n/a | | ")
                         + (f"{z:.3f} | {zci[0]:.3f}-{zci[1]:.3f} |" if z is not None else "n/a | |")
                         + (f" {r['zero_shot_sdk_auroc']:.3f} |" if "zero_shot_sdk_auroc" in r else " |"))
        for task in dict.fromkeys(r["task"] for r in rows):
            for key, which in (("probe", "the held-out-only probe"), ("probe_train", "the probe + train split")):
                lines += fold_table(rows, task, key, f"{task} per held-out database with {which} (records, "
                                    "positives); the task's figure is the unweighted mean, so a database of a "
                                    "few records weighs as much as the largest:")
        lines.append("")
    cal = manifest.get("calibration", {})
    if isinstance(cal.get("temperature"), dict):
        lines += ["## Calibration of the zero-shot probabilities", "",
                  "Per label set, a temperature and a bias per label (vector scaling), fitted on the validation split "
                  "by the negative log-likelihood of the clip-level softmax; the bias is kept only where it lowers the "
                  "out-of-fold NLL there (5 folds of the validation clips). Expected calibration error (10 bins) "
                  "before, with the temperature alone and as shipped, and the 5th to 95th percentile of each label's "
                  "calibrated probability over the validation clips (how far the probabilities move). "
                  "Reproduce: `python -m acula.export.refit BUNDLE --corpus runs/corpus` (or `acula export`).", "",
                  "| label set | temperature | bias | val clips | ECE before | ECE temperature only | ECE shipped "
                  "| probability p5-p95 |", "|---|---|---|---|---|---|---|---|"]
        for name, t in cal["temperature"].items():
            r = cal.get("report", {}).get(name, {})
            bias = cal.get("bias", {}).get(name)
            spread = "; ".join(f"{lab} {lo:.2f}-{hi:.2f}" for lab, (lo, hi) in r.get("spread_p5_p95", {}).items())
            lines.append(f"| {name} | {t} | {'none' if bias is None else ', '.join(f'{b:+.2f}' for b in bias)} | "
                         f"{r.get('n_val_clips')} | {r.get('ece_before', float('nan')):.3f} | "
                         f"{r.get('ece_temperature_only', float('nan')):.3f} | {r.get('ece_after', float('nan')):.3f} | "
                         f"{spread or 'n/a'} |")
        flat = [name for name, t in cal["temperature"].items() if float(t) >= 50.0]
        lines += ["", "A very large temperature means the scores carry little information on that label set: the "
                      "calibrated probabilities stay close to uniform" +
                  (f" ({', '.join(flat)}, here)." if flat else "; no label set is fitted that flat here."), ""]
    cs = results / "cough_screening.json"
    lines += ["## Cough detector operating point", "",
              f"On threshold {screening['cough_on']}, off {screening['cough_off']}, minimum event "
              f"{screening['min_duration_s']} s, refractory {screening['refractory_s']} s. " + _operating_rule(screening),
              ""] + _rules_paired(results)
    if cs.is_file():
        data = json.loads(cs.read_text())
        lines += ["Held-out test recordings (`python -m acula.benchmarks.cough_screening --corpus runs/corpus`):", ""]
        lines += cough_table(data) + [""]
        if "yamnet" in data:
            lines += [COUGH_REFERENCE.format(threshold=data["yamnet"]["threshold"]), ""]
        lines += [f"Recall on cough recordings: {data.get('recall_on_cough_recordings')}; false alarms per hour on "
                  f"all non-cough test audio: {data.get('false_alarms_per_hour_noncough', float('nan')):.2f}.", ""]
        kinds = flagged_kinds(data, "breathing + speech (phone)")
        if kinds:
            lines += ["Phone non-cough test recordings flagged, by recording type (`flagged_paths` in the results "
                      "file): " + ", ".join(f"{kind} {n}" for kind, n in kinds) + ".", ""]
        lines += [_sample_size_note(data), ""]
    cv = results / "cough_screening_val.json"
    if cv.is_file():
        lines += ["The validation split through the SDK at the same operating point (`python -m "
                  "acula.benchmarks.cough_screening --corpus runs/corpus --splits val`), where the threshold was chosen:",
                  ""] + cough_table(json.loads(cv.read_text())) + [""]
    lines += phone_channel_lines(results)
    lines += ["## Known limits", "", LIMITS, "", "## Retraining with a medical teacher on a GPU", "", RETRAIN, "",
              "## Licence", "", manifest.get("licence", ""), ""]
    return "\n".join(lines)


#: the cough screening targets on phone audio (issue 24): recall on phone coughs, phone non-cough and stethoscope
#: recordings flagged, also after 8 kHz mu-law
PHONE_TARGETS = {"recall": 0.95, "phone_noncough": 0.03, "stethoscope": 0.01}


def _rules_paired(results: Path) -> list[str]:
    """The pooled rule against the export's earlier rule on test, recording by recording over seven builds
    (``benchmarks.operating_point_builds``' paired block), when the stored run has it."""
    f = results / "operating_point_test.json"
    paired = json.loads(f.read_text()).get("paired") if f.is_file() else None
    if not paired:
        return []
    n = len(json.loads(f.read_text())["bundles"])
    cells = "; ".join(f"{name} {d['difference']:+.0f} [{d['ci95'][0]:+.0f}, {d['ci95'][1]:+.0f}] of {d['trials']}"
                      for name, d in sorted(paired.items()))
    return [f"Against the earlier rule (phone recordings as recorded only), each build held to the points both rules "
            f"chose on val, test recordings over {n} builds of this recipe, pooled minus earlier, 95 % participant-"
            f"bootstrap interval (`benchmarks/results/operating_point_test.md`): {cells}.", ""]


def phone_channel_lines(results: Path) -> list[str]:
    """The operating point on audio as a phone call delivers it (``cough_screening --phone``), one row per
    channel and split, against the issue's targets; nothing when no such run is stored."""
    from acula.benchmarks.cough_screening import flagged_cell

    rows = []
    for channel, words in (("mulaw8k", "8 kHz 8-bit mu-law"), ("8k", "8 kHz")):
        for split in ("val", "test"):
            f = results / f"cough_screening_phone_{channel}_{split}.json"
            if not f.is_file():
                continue
            g = json.loads(f.read_text())["groups"]

            def rate(*names: str, groups: dict = g) -> str:
                k = sum(int(groups[n]["flagged"]) for n in names if n in groups)
                n = sum(int(groups[n]["n"]) for n in names if n in groups)
                return flagged_cell(k, n) if n else "n/a"

            auc = next((r for r in json.loads(f.read_text()).get("auroc", [])
                        if r["scorer"] == "detector" and r["population"].startswith("phone")), None)
            rows.append(f"| {words} | {split} | {rate('cough (phone)')} | {rate('breathing + speech (phone)')} | "
                        f"{rate('heart (stethoscope)', 'lung (stethoscope)')} | {rate('environment (ESC-10)')} | "
                        + (f"{auc['auroc']:.3f} ({auc['ci95'][0]:.3f}-{auc['ci95'][1]:.3f})" if auc else "n/a") + " |")
    if not rows:
        return []
    grids, all_rows = [], []
    channels = (("cough_screening_val.json", "clean"), ("cough_screening_phone_mulaw8k_val.json", "mu-law"),
                ("cough_screening_phone_8k_val.json", "8 kHz"))
    for name, words in channels:
        grid = json.loads((results / name).read_text()).get("grid") if (results / name).is_file() else None
        if grid is None:
            continue
        all_rows.append(grid["rows"])
        low = grid.get("lowest_meeting_targets")
        if low is None:
            grids.append(f"{words}: none of the grid")
            continue
        row = next(r for r in grid["rows"] if r["on"] == low)
        k, n = row["flagged"]["cough (phone)"], row["n"]["cough (phone)"]
        grids.append(f"{words} {low:g} (cough recall there {k}/{n})")
    t = PHONE_TARGETS

    def meets_all(on: float) -> bool:  # false-alarm targets and recall, in every channel's grid
        rows_at = [r for grid_rows in all_rows for r in grid_rows if r["on"] == on]
        return len(rows_at) == len(all_rows) and all(
            r["meets_targets"] and r["flagged"]["cough (phone)"] >= t["recall"] * r["n"]["cough (phone)"]
            for r in rows_at)

    both = [r["on"] for r in all_rows[0] if meets_all(r["on"])] if all_rows else []
    if len(all_rows) < len(channels):  # a verdict over every channel needs every channel's grid
        verdict = (f"Grids are stored for {len(all_rows)} of the {len(channels)} channels; no verdict over every "
                   "channel is drawn.")
    elif both:
        verdict = (f"On val, {', '.join(f'{v:g}' for v in both)} meet(s) both the recall and the false-alarm "
                   "targets in every channel.")
    else:
        verdict = ("No threshold of the grid meets both the recall and the false-alarm targets in every channel on "
                   "val.")
    return ["The same operating point on audio as a phone call delivers it (`python -m acula.benchmarks.cough_screening "
            "--corpus runs/corpus --splits SPLIT --phone mulaw8k|8k`): every recording resampled to 8 kHz (8-bit "
            "mu-law coded and decoded for mulaw8k) and handed to the SDK at 8000 Hz.  " + _point_source(results)
            + "Targets: "
            f"recall >= {t['recall']:.0%}, phone non-cough <= {t['phone_noncough']:.0%}, stethoscope <= "
            f"{t['stethoscope']:.0%} flagged (95 % Wilson intervals):", "",
            "| channel | split | cough recordings with an event | phone non-cough flagged | stethoscope flagged | "
            "ESC-10 flagged | detector AUROC, phone + ESC-10 |", "|---|---|---|---|---|---|---|", *rows, ""] + (
        ["The lowest 'on' threshold at which val meets the false-alarm targets, per channel (`--grid`: the window "
         "probabilities replayed through the SDK's event logic): " + "; ".join(grids) + ".  " + verdict, ""]
        if grids else [])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.model_card", description=__doc__)
    parser.add_argument("--bundle", default="sdk/models/default")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--out", default="MODEL_CARD.md")
    args = parser.parse_args(argv)
    if not (Path(args.bundle) / "manifest.json").is_file():
        print(f"no bundle at {args.bundle}", file=sys.stderr)
        return 1
    Path(args.out).write_text(render(Path(args.bundle), Path(args.results)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
