"""One row per lever pulled for the robust default model: what it is, whether it shipped, and the figures that
decided it, read from the results files the measuring commands wrote (nothing is measured here except the
int8 agreement row, which runs the packaged bundle's graphs on seeded probe windows).

    python -m acula.benchmarks.ablation        # writes benchmarks/results/ablation.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]
MAIN_TASKS = ("cough", "heart_abnormal", "crackles", "wheezes")
#: the last commit whose packaged int8 ONNX was quantised without reduce_range
OLD_INT8_COMMIT = "89abc0d"


def _load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _ci(d: dict[str, Any]) -> str:
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def _mean(row: dict[str, Any], score: str) -> float:
    return float(np.mean([row[t][score]["auroc"] for t in MAIN_TASKS if score in row.get(t, {})]))


def _gain_shift_max(sel: dict[str, Any], system: str, unclipped: bool = False) -> float:
    """The largest max probability shift of ``system`` over the gain transforms and every task (the issue's <= 0.05);
    ``unclipped``: over the records the corpus does not mark clipped at source (a KeyError on a file without it)."""
    key = "native_shift_max" + ("_unclipped" if unclipped else "")
    inv = sel["invariance"][system]
    gains = ("gain-6", "gain-12", "gain-24", "peak-1")
    return max(inv[t][g][key] for t in inv for g in gains
               if g in inv[t] and inv[t][g].get("native_shift_max") is not None)


def _gain_shift(sel: dict[str, Any], system: str, unclipped: bool = False) -> float:
    """The largest mean probability shift of ``system`` over the gain transforms and every task: rule 3 of the
    selection rules (``selection_rule_invariant24.md``); ``unclipped`` as for :func:`_gain_shift_max`."""
    key = "native_shift_mean" + ("_unclipped" if unclipped else "")
    inv = sel["invariance"][system]
    gains = ("gain-6", "gain-12", "gain-24", "peak-1")
    return max(inv[t][g][key] for t in inv for g in gains
               if g in inv[t] and inv[t][g].get("native_shift_mean") is not None)


#: rule 4 of ``selection_rule_gain24_bw.md``: the transforms whose native AUROC drop each label set is held to
BAND_LIMITS = {"cough": ("phone8k", "mulaw8k"), "heart_abnormal": ("lp1k", "lp2k"), "crackles": ("lp1k", "lp2k"),
               "wheezes": ("lp1k", "lp2k")}


#: the label sets a stethoscope's band limit is asked not to move (check 9:
#: ``selection_rule_gain24_lowfloor_shift_label_slp.md``)
BODY_SOUND_SETS = ("heart_abnormal", "crackles", "wheezes")


def _band_drop(sel: dict[str, Any], system: str) -> tuple[float, str]:
    """The largest native AUROC drop (clean minus transformed: the scored records, less those a transform leaves
    unscored) over ``BAND_LIMITS``, and where it is."""
    inv, row = sel["invariance"][system], sel["rows"][system]
    drops = {f"{task} {t}": row[task]["native"]["auroc"] - inv[task][t]["native_auroc"]
             for task, ts in BAND_LIMITS.items() for t in ts}
    where = max(drops, key=lambda k: drops[k])
    return drops[where], where


def _paired(primary: dict[str, Any], a: str, b: str, score: str, task: str) -> str:
    for p in primary["paired"]:
        if p["a"] == a and p["b"] == b and p["score"] == score and task in p["tasks"]:
            return _ci(p["tasks"][task])
    return "n/a"


def teacher_objectives(primary: dict[str, Any]) -> list[str]:
    rows = primary["rows"]
    out = []
    for name in ("(ii) AcuLa CKA+mask", "(iii) CKA+InfoNCE+mask", "(iv) InfoNCE only"):
        if name in rows:
            out.append(f"| alignment objective {name} (teacher) | (iii) taught the default until 2026-12-03, (iii) + "
                       f"supervised heads (sup-heads) since | probe mean "
                       f"{_mean(rows[name], 'probe'):.3f} vs mn04 {_mean(rows['mn04 AudioSet'], 'probe'):.3f}; heart "
                       f"minus mn04 {_paired(primary, name, 'mn04 AudioSet', 'probe', 'heart_abnormal')} "
                       "| primary.md |")
    return out


def supervised_control(primary: dict[str, Any]) -> list[str]:
    a, c = "(iii) CKA+InfoNCE+mask", "supervised control"
    if c not in primary["rows"]:
        return []
    return [f"| supervised heads on the same records (control) | measured, not shipped (not distilled yet) | probe "
            f"mean {_mean(primary['rows'][c], 'probe'):.3f} vs (iii) {_mean(primary['rows'][a], 'probe'):.3f}; "
            f"(iii) minus control, heart {_paired(primary, a, c, 'probe', 'heart_abnormal')}, wheezes "
            f"{_paired(primary, a, c, 'probe', 'wheezes')} | primary.md |"]


def level_norm(sel: dict[str, Any]) -> list[str]:
    rows = sel["rows"]
    base, cand = rows["student int8 ONNX"], rows["levelnorm60 int8 ONNX"]
    return [f"| level normalisation in the student graph (levelnorm60, val only) | rejected by the rule written "
            f"before scoring | native mean {_mean(cand, 'native'):.3f} vs {_mean(base, 'native'):.3f}, probe mean "
            f"{_mean(cand, 'probe'):.3f} vs {_mean(base, 'probe'):.3f}; largest mean gain shift "
            f"{_gain_shift(sel, 'levelnorm60 int8 ONNX'):.3f} vs {_gain_shift(sel, 'student int8 ONNX'):.3f} | "
            f"selection_rule_levelnorm.md |"]


def student_gain(sel: dict[str, Any], name: str = "invariant24", gain_db: int = 24,
                 teacher: str = "re-aligned teacher", share: str = "", outcome: str = "") -> list[str]:
    rows = sel["rows"]
    base, cand = rows["student int8 ONNX refit"], rows[f"{name} int8 ONNX"]
    drop = _mean(cand, "native") - _mean(base, "native")
    return [f"| level change of +-{gain_db} dB on the student's input only{share}, teacher target at the clip's own "
            f"level; {teacher} ({name}, val only) | {'rejected' if drop < -0.01 else 'passes'} rule 1 (native mean "
            f"{drop:+.4f}, limit -0.01){outcome} | native mean {_mean(cand, 'native'):.3f} vs "
            f"{_mean(base, 'native'):.3f}, "
            f"probe mean {_mean(cand, 'probe'):.3f} vs {_mean(base, 'probe'):.3f}; largest mean gain shift "
            f"{_gain_shift(sel, f'{name} int8 ONNX'):.3f} vs {_gain_shift(sel, 'student int8 ONNX refit'):.3f}; "
            f"heart database f "
            f"{cand['heart_abnormal']['native_by']['f']['auroc']:.3f} vs "
            f"{base['heart_abnormal']['native_by']['f']['auroc']:.3f} | selection_rule_invariant24.md |"]


def self_control(sel: dict[str, Any]) -> list[str]:
    rows = sel["rows"]
    base, ctl, cand = (rows[n] for n in ("student int8 ONNX refit", "control-self int8 ONNX",
                                         "invariant24-self int8 ONNX"))
    return [f"| control: the shipped recipe taught by the shipped student (control-self, val only) | attribution, "
            f"not a candidate | native mean {_mean(ctl, 'native'):.3f} vs shipped {_mean(base, 'native'):.3f}; "
            f"invariant24-self minus control: native {_mean(cand, 'native') - _mean(ctl, 'native'):+.3f}, wheezes "
            f"{cand['wheezes']['native']['auroc'] - ctl['wheezes']['native']['auroc']:+.3f}, probe "
            f"{_mean(cand, 'probe') - _mean(ctl, 'probe'):+.3f}; largest mean gain shift "
            f"{_gain_shift(sel, 'invariant24-self int8 ONNX'):.3f} vs "
            f"{_gain_shift(sel, 'control-self int8 ONNX'):.3f} | "
            f"selection_rule_invariant24.md |"]


NEUTRAL = "reports that never name the device and never negate a finding (`--report-style neutral`)"


def _rule_outcome(sel: dict[str, Any], base_name: str, system: str, status: str = "", band: bool = False) -> str:
    """The three checks every candidate's selection rule makes against the shipped model (native mean and probe
    mean not lower by more than 0.01, largest mean gain shift lower), as the ablation row's outcome cell; with
    ``band`` the fourth (``selection_rule_gain24_bw.md``): the largest band-limit drop not above the shipped
    model's by more than 0.01."""
    rows = sel["rows"]
    base, cand = rows[base_name], rows[system]
    native, probe = _mean(cand, "native") - _mean(base, "native"), _mean(cand, "probe") - _mean(base, "probe")
    lower = _gain_shift(sel, system) < _gain_shift(sel, base_name)
    checks = [(1, native >= -0.01), (2, probe >= -0.01), (3, lower)]
    if band:
        checks.append((4, _band_drop(sel, system)[0] <= _band_drop(sel, base_name)[0] + 0.01))
    failed = [str(i) for i, ok in checks if not ok]
    outcome = (f"passes the rule written before scoring{status}" if not failed else
               f"rejected: rule{'s' if len(failed) > 1 else ''} {' and '.join(failed)} of the selection rule "
               f"written before scoring fail{'' if len(failed) > 1 else 's'}")
    bands = ""
    if band:
        (c, cw), (b, bw) = _band_drop(sel, system), _band_drop(sel, base_name)
        bands = f"; largest band-limit drop {c:.3f} ({cw}) vs shipped {b:.3f} ({bw}), limit +0.01"
    return (f"{outcome} (native mean {native:+.4f}, probe mean {probe:+.4f}, limits -0.01; gain shift lower than "
            f"shipped: {'yes' if lower else 'no'}{bands})")


def realigned_candidate(sel: dict[str, Any], control: dict[str, Any], name: str = "neutral",
                        lever: str = f"{NEUTRAL}, re-aligned teacher, shipped distillation", status: str = ""
                        ) -> list[str]:
    """A re-aligned candidate (``selection_rule_neutral.md``) against the shipped student (the rule's three
    checks) and against ``control-realigned`` (the same preset aligned on today's reports, ``w_sup`` 0)."""
    rows = sel["rows"]
    system = f"{name} int8 ONNX"
    base, cand = rows["student int8 ONNX refit"], rows[system]
    ctl = control["rows"]["control-realigned int8 ONNX"]
    heart = cand["heart_abnormal"]
    return [f"| {lever} ({name}, val only) | {_rule_outcome(sel, 'student int8 ONNX refit', system, status)} | "
            f"native mean "
            f"{_mean(cand, 'native'):.3f} vs shipped {_mean(base, 'native'):.3f} and control-realigned "
            f"{_mean(ctl, 'native'):.3f}; probe mean {_mean(cand, 'probe'):.3f} vs {_mean(base, 'probe'):.3f} / "
            f"{_mean(ctl, 'probe'):.3f}; heart database f {heart['native_by']['f']['auroc']:.3f} vs "
            f"{base['heart_abnormal']['native_by']['f']['auroc']:.3f} / "
            f"{ctl['heart_abnormal']['native_by']['f']['auroc']:.3f}; largest mean gain shift "
            f"{_gain_shift(sel, system):.3f} vs {_gain_shift(sel, 'student int8 ONNX refit'):.3f} | "
            f"selection_rule_neutral.md |"]


def both_stages(sel: dict[str, Any], name: str = "levelnorm-both",
                lever: str = "level normalisation in both stages: the teacher aligned on level-normalised log-mel "
                             "(sup-heads + `level_norm_db` 60), the student distilled with the same normalisation "
                             "in its graph", status: str = "", band: bool = False, rule: str | None = None
                ) -> list[str]:
    """A candidate changed in alignment and distillation against the shipped sup-heads default (the same three
    checks, ``selection_rule_<name>.md``; with ``band``, the fourth too)."""
    rows = sel["rows"]
    base_name, system = "sup-heads int8 ONNX", f"{name} int8 ONNX"
    base, cand = rows[base_name], rows[system]
    band_cells = ""
    if band:
        inv, binv = sel["invariance"][system], sel["invariance"][base_name]
        drop = [r["heart_abnormal"]["native"]["auroc"] - i["heart_abnormal"]["lp1k"]["native_auroc"]
                for r, i in ((cand, inv), (base, binv))]
        band_cells = f"; heart lp1k drop {drop[0]:.3f} vs {drop[1]:.3f}"
    cells = "; ".join(f"{t} {cand[t]['native']['auroc']:.3f} vs {base[t]['native']['auroc']:.3f}" for t in MAIN_TASKS)
    return [f"| {lever} ({name}, val only) | {_rule_outcome(sel, base_name, system, status, band)} | native mean "
            f"{_mean(cand, 'native'):.3f} vs shipped "
            f"{_mean(base, 'native'):.3f} ({cells}); probe mean {_mean(cand, 'probe'):.3f} vs "
            f"{_mean(base, 'probe'):.3f}; heart database f {cand['heart_abnormal']['native_by']['f']['auroc']:.3f} "
            f"vs {base['heart_abnormal']['native_by']['f']['auroc']:.3f}; largest mean gain shift "
            f"{_gain_shift(sel, system):.3f} vs {_gain_shift(sel, base_name):.3f}{band_cells} | "
            f"{rule or 'selection_rule_' + name.replace('-', '_') + '.md'} |"]


def seed_spread(val: dict[str, Any], test: dict[str, Any] | None = None) -> list[str]:
    """The shipped recipe trained again with other seeds (``seed_replicate_gain24_both.md``): native AUROC per
    seed and split, the largest per-task spread over seeds, and each seed's paired probe difference from the
    shipped seed 0 (the protocol pairs native scores only against the control), the yardstick a candidate's
    lead on one val run must clear."""
    splits = [("val", val)] + ([("test", test)] if test is not None else [])
    seeds = [s for s in val["rows"] if s.startswith("gain24-both seed")]
    base = seeds[0]
    cells = []
    for split, res in splits:
        rows = res["rows"]
        means = " / ".join(f"{_mean(rows[s], 'native'):.3f}" for s in seeds)
        spread = {t: max(rows[s][t]["native"]["auroc"] for s in seeds) - min(rows[s][t]["native"]["auroc"]
                                                                            for s in seeds) for t in MAIN_TASKS}
        worst = max(spread, key=lambda t: spread[t])
        paired = "; ".join(f"{s.split(' int8')[0].split(' ')[-1]} minus 0: " + ", ".join(
            f"{t} {_paired(res, s, base, 'probe', t)}" for t in MAIN_TASKS[1:]) for s in seeds[1:])
        cells.append(f"{split}: native mean by seed {means}; largest per-task native spread {spread[worst]:.3f} "
                     f"({worst}); paired probe, seed {paired}; largest mean gain shift by seed "
                     + " / ".join(f"{_gain_shift(res, s):.3f}" for s in seeds))
    n = ", ".join(s.split(" int8")[0].split(" ")[-1] for s in seeds[1:])
    return [f"| the shipped recipe (gain24-both) trained again, seed {n} in both stages: how far one recipe moves "
            f"by seed alone | not a candidate: the yardstick for a lead on one val run | {'. '.join(cells)} | "
            "seed_replicate_gain24_both.md |"]


NOISE = ("noise20", "noise10")


def _label_set_drops(sel: dict[str, Any], system: str) -> dict[str, float]:
    """Per label set, the larger native AUROC drop (clean minus transformed) over its ``BAND_LIMITS``."""
    inv, row = sel["invariance"][system], sel["rows"][system]
    return {task: max(row[task]["native"]["auroc"] - inv[task][t]["native_auroc"] for t in ts)
            for task, ts in BAND_LIMITS.items()}


def _drop(sel: dict[str, Any], system: str, task: str, transform: str) -> float:
    """A label set's native AUROC drop, clean minus under ``transform``."""
    return sel["rows"][system][task]["native"]["auroc"] - sel["invariance"][system][task][transform]["native_auroc"]


def _noise_auroc(sel: dict[str, Any], system: str) -> float:
    """Native AUROC over ``MAIN_TASKS`` under noise20 and noise10, averaged over both."""
    inv = sel["invariance"][system]
    return float(np.mean([inv[t][n]["native_auroc"] for t in MAIN_TASKS for n in NOISE]))


#: the margins of the five seed-mean checks (candidate against baseline: checks 1, 2 and 5 need candidate >=
#: baseline + margin, checks 3 and 4 candidate <= baseline + margin), as ``selection_rule_gain24_bg.md`` set them
SEED_MEAN_MARGINS = {1: -0.01, 2: -0.01, 3: 0.01, 4: 0.01, 5: 0.02}
#: ``selection_rule_gain24_kdens.md``: a lever claiming better zero-shot ranking, asked for no loss under noise
KDENS_MARGINS = {**SEED_MEAN_MARGINS, 1: 0.005, 5: -0.01}
#: ``selection_rule_gain24_kdens3.md``: KDENS_MARGINS with check 4 at +0.02, about 1.5x the largest band-limit
#: excess the shipped recipe rebuilt on this CPU showed against itself (``seed_gain24-rebuilt_val.md``)
NULL_MARGINS = {**KDENS_MARGINS, 4: 0.02}


def _rule_figures(r: dict[str, Any]) -> str:
    """A ``seed_mean_rule`` result's figures, candidate against baseline, as one table cell."""
    def fmt(v: Any) -> str:
        return " / ".join(f"{x:.3f}" for x in v) if isinstance(v, tuple) else f"{v:.3f}"

    return "; ".join(f"{k} {fmt(v['cand'])} vs {fmt(v['base'])}" for k, v in r["figures"].items())


def seed_mean_rule(sel: dict[str, Any], candidate: str, baseline: str,
                   margins: dict[int, float] | None = None, unclipped: bool = False) -> dict[str, Any]:
    """The five checks of ``selection_rule_gain24_bg.md`` (six with a check-6 margin), each on the mean over
    seeds: the systems whose names start with ``candidate`` against those starting with ``baseline`` (one
    validation run); ``margins``: per check, as :data:`SEED_MEAN_MARGINS` (the default).  A margin for check 6
    adds ``selection_rule_gain24_kdcodec.md``'s (heart_abnormal's native AUROC drop under ``mulaw8k`` <= baseline
    + margin); one for check 7 ``selection_rule_gain24_kdpool.md``'s (crackles' native AUROC >= baseline +
    margin); one for check 9 ``selection_rule_gain24_lowfloor_shift_label_slp.md``'s (the mean of
    ``BODY_SOUND_SETS``' band-limit drops <= baseline + margin); one for check 10
    ``selection_rule_gain24_lowfloor_shift_label_slph.md``'s (heart_abnormal's band-limit drop <= baseline + margin).
    ``unclipped``: check 8 reads the records the corpus does not mark clipped at source
    (``selection_rule_gain24_lowfloor_shift_long_fresh.md``)."""
    m = SEED_MEAN_MARGINS if margins is None else margins
    groups = {k: [s for s in sel["rows"] if s.startswith(p)] for k, p in (("cand", candidate), ("base", baseline))}
    if not groups["cand"] or not groups["base"]:
        raise ValueError(f"no system starts with {candidate!r} or {baseline!r}: {sorted(sel['rows'])}")

    def mean_of(fn: Any) -> dict[str, Any]:
        return {k: float(np.mean([fn(s) for s in ss])) for k, ss in groups.items()}

    figures = {
        "native mean": mean_of(lambda s: _mean(sel["rows"][s], "native")),
        "probe mean": mean_of(lambda s: _mean(sel["rows"][s], "probe")),
        "largest mean gain shift": mean_of(lambda s: _gain_shift(sel, s)),
        **{f"band-limit drop {t}": mean_of(lambda s, t=t: _label_set_drops(sel, s)[t]) for t in BAND_LIMITS},
        "native under noise20 / noise10": mean_of(lambda s: _noise_auroc(sel, s)),
    }
    if 6 in m:
        figures["heart_abnormal mulaw8k drop"] = mean_of(lambda s: _drop(sel, s, "heart_abnormal", "mulaw8k"))
    if 7 in m:
        figures["crackles native"] = mean_of(lambda s: float(sel["rows"][s]["crackles"]["native"]["auroc"]))
    if 9 in m:
        figures["body-sound band-limit drop"] = mean_of(
            lambda s: float(np.mean([_label_set_drops(sel, s)[t] for t in BODY_SOUND_SETS])))
    if 8 in m:  # per seed, not a mean: the largest over seeds
        figures["worst seed's largest mean / max gain shift"] = {
            k: (max(_gain_shift(sel, s, unclipped) for s in ss), max(_gain_shift_max(sel, s, unclipped) for s in ss))
            for k, ss in groups.items()}
    checks = [
        (1, "native mean", figures["native mean"]["cand"] >= figures["native mean"]["base"] + m[1]),
        (2, "probe mean", figures["probe mean"]["cand"] >= figures["probe mean"]["base"] + m[2]),
        (3, "largest mean gain shift",
         figures["largest mean gain shift"]["cand"] <= figures["largest mean gain shift"]["base"] + m[3]),
        (4, "band-limit drop per label set",
         all(figures[f"band-limit drop {t}"]["cand"] <= figures[f"band-limit drop {t}"]["base"] + m[4]
             for t in BAND_LIMITS)),
        (5, "native under noise", figures["native under noise20 / noise10"]["cand"]
         >= figures["native under noise20 / noise10"]["base"] + m[5]),
    ]
    if 6 in m:
        f6 = figures["heart_abnormal mulaw8k drop"]
        checks.append((6, "heart_abnormal mulaw8k drop", f6["cand"] <= f6["base"] + m[6]))
    if 7 in m:
        f7 = figures["crackles native"]
        checks.append((7, "crackles native", f7["cand"] >= f7["base"] + m[7]))
    if 9 in m:
        f9 = figures["body-sound band-limit drop"]
        checks.append((9, "body-sound band-limit drop", f9["cand"] <= f9["base"] + m[9]))
    if 10 in m:
        f10 = figures["band-limit drop heart_abnormal"]
        checks.append((10, "heart_abnormal band-limit drop", f10["cand"] <= f10["base"] + m[10]))
    if 8 in m:
        worst_mean, worst_max = figures["worst seed's largest mean / max gain shift"]["cand"]
        checks.append((8, "the gain target in every seed", worst_mean <= m[8] and worst_max <= GAIN_TARGET_MAX))
    return {"groups": groups, "figures": figures, "checks": checks,
            "failed": [n for n, _, ok in checks if not ok]}


def with_stored_seeds(sel: dict[str, Any], stored: dict[str, Any], anchor: str, systems: list[str],
                      shared_only: bool = False) -> dict[str, Any]:
    """``sel`` (one validation run) with ``systems``' rows and invariance taken from ``stored`` (an earlier
    validation run of the same protocol), allowed only when ``anchor``, scored in both, has the same figures in
    both: every AUROC and mean shift the seed-mean rule reads (``shared_only``: those both runs hold; else a figure
    held by one run only differs too).  Raises ValueError naming the figures that differ (the stored systems would
    not be comparable then)."""
    def figures(run: dict[str, Any]) -> dict[str, float]:
        row, inv = run["rows"][anchor], run["invariance"][anchor]
        out = {f"{t} {score}": row[t][score]["auroc"] for t in MAIN_TASKS for score in ("native", "probe")
               if score in row.get(t, {})}
        out |= {f"{t} {tr} {k}": v[k] for t in inv for tr, v in inv[t].items()
                for k in ("native_auroc", "native_shift_mean") if v.get(k) is not None}
        return out

    for run, name in ((sel, "this run"), (stored, "the stored run")):
        if anchor not in run["rows"] or anchor not in run.get("invariance", {}):
            raise ValueError(f"{anchor!r} is not scored in {name}")
    new, old = figures(sel), figures(stored)
    # shared_only: a run that scored more transforms than the stored one is compared on the figures both hold
    keys = new.keys() & old.keys() if shared_only else new.keys() | old.keys()
    differ = sorted(k for k in keys if k not in new or k not in old or abs(new[k] - old[k]) > 1e-9)
    if differ:
        raise ValueError(f"{anchor!r} scores differently in the two runs ({len(differ)} figures, e.g. "
                         f"{differ[:3]}): the stored systems are not comparable")
    merged = {**sel, "rows": dict(sel["rows"]), "invariance": dict(sel["invariance"])}
    for system in systems:
        merged["rows"][system], merged["invariance"][system] = stored["rows"][system], stored["invariance"][system]
    return merged


#: candidates judged by the seed-mean rule (the real-background doses and later levers): their system-name prefix,
#: what changed, and the rule written before training
SEED_MEAN_CANDIDATES = {
    "gain24-bg": ("real backgrounds (ESC-10 training clips, 5-30 dB SNR, p 0.3) in alignment and distillation",
                  "selection_rule_gain24_bg.md"),
    "gain24-bgmild": ("real backgrounds at a milder dose (ESC-10 training clips, 10-30 dB SNR, p 0.2) in alignment "
                      "and distillation", "selection_rule_gain24_bgmild.md"),
    "gain24-bgdenoise": ("real backgrounds (ESC-10 training clips, 10-30 dB SNR, p 0.3) in distillation only, heard "
                         "by the student alone (the teacher's target from the crop without its background), the "
                         "shipped recipe's teachers", "selection_rule_gain24_bgdenoise.md"),
    "gain24-bgsteady": ("the same denoising distillation with steady backgrounds only (rain, sea waves, helicopter, "
                        "chainsaw; no clock ticks or fire crackles, which sound like crackles)",
                        "selection_rule_gain24_bgsteady.md"),
    "gain24-bgnonlung": ("the same denoising distillation (all six classes) with no background on lung crops "
                         "(cough, heart and ESC-10 crops only)", "selection_rule_gain24_bgnonlung.md"),
    "gain24-kdens": ("a two-teacher ensemble for the zero-shot distillation term (the KD target is the mean of "
                     "the shipped recipe's seed-0 and seed-1 teachers' label-set probabilities; the embedding terms "
                     "follow the student's own teacher)", "selection_rule_gain24_kdens.md"),
    "gain24-bgkdens": ("the denoising distillation without lung crops (gain24-bgnonlung) and the two-teacher KD "
                       "ensemble (gain24-kdens) together", "selection_rule_gain24_bgkdens.md"),
}
#: the seed-mean rule's margins where a candidate's rule set its own (the others: SEED_MEAN_MARGINS)
CANDIDATE_MARGINS = {"gain24-kdens": KDENS_MARGINS}
#: the shipped recipe's seeds, as the selection runs name them; seed 0 is the packaged default
SHIPPED_SEEDS = [f"gain24-both seed {k} int8 ONNX" for k in range(3)]


def background_candidate(sel: dict[str, Any], status: str = "", name: str = "gain24-bg") -> list[str]:
    """A candidate of ``SEED_MEAN_CANDIDATES``, two seeds, against the shipped recipe's three seeds on validation,
    by the seed-mean rule (``selection_rule_gain24_bg.md``; its margins as the candidate's own rule set them,
    ``CANDIDATE_MARGINS``)."""
    what, rule = SEED_MEAN_CANDIDATES[name]
    r = seed_mean_rule(sel, f"{name} seed", "gain24-both seed", CANDIDATE_MARGINS.get(name))
    failed = r["failed"]
    outcome = ("passes the seed-mean rule written before training" if not failed else
               f"rejected: rule{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))} of the seed-mean "
               "rule written before training fail" + ("" if len(failed) > 1 else "s")) + status
    figs = _rule_figures(r)
    return [f"| {what}, "
            f"gain24-both otherwise ({name}, {len(r['groups']['cand'])} seeds against the shipped recipe's "
            f"{len(r['groups']['base'])}, val only) | {outcome} | seed means, candidate vs shipped recipe: {figs} | "
            f"{rule} |"]


def stored_seed_candidate(sel: dict[str, Any], stored: dict[str, Any], name: str, status: str = "") -> list[str]:
    """A background candidate scored beside the shipped seed 0 alone, the shipped recipe's seeds 1 and 2 joined
    from ``stored`` (``with_stored_seeds``: only if seed 0 scores the same in both runs; otherwise the rule is
    read against seed 0 alone and the row says so)."""
    try:
        merged = with_stored_seeds(sel, stored, SHIPPED_SEEDS[0], SHIPPED_SEEDS[1:])
        how = "; shipped seeds 1 and 2 from the stored validation run (seed 0 re-scored identically)"
    except ValueError as exc:
        merged, how = sel, f"; against shipped seed 0 alone ({exc})"
    return background_candidate(merged, how + status, name)


def stored_seed_lever(name: str, check: str) -> tuple[tuple[str, ...], Callable[..., list[str]]]:
    """The ``LEVERS`` entry of a candidate scored beside the shipped seed 0 (:func:`stored_seed_candidate`, seeds
    1 and 2 from ``selection_gain24-bgmild_val.json``) whose seed-0 shipping check ended as ``check``; not
    shipped."""
    status = f"; shipping check on seed 0 {check} (int8_decisions_{name}.json); not shipped"
    return ((f"selection_{name}_val.json", "selection_gain24-bgmild_val.json"),
            lambda sel, stored: stored_seed_candidate(sel, stored, name, status))


def rebuilt_control(sel: dict[str, Any]) -> list[str]:
    """The shipped recipe rebuilt on another CPU (its teacher, distilled as shipped) against the denoising
    candidate distilled from that same teacher: the lever's own effect, free of teacher and seed differences."""
    ctl, cand, shipped = "gain24-both rebuilt seed 0 int8 ONNX", "gain24-bgdenoise seed 0 int8 ONNX", SHIPPED_SEEDS[0]
    figs = _clean_and_noise(sel) | {"largest mean gain shift": lambda s: _gain_shift(sel, s)}
    text = "; ".join(f"{k} {fn(cand):.3f} vs {fn(ctl):.3f} (shipped {fn(shipped):.3f})" for k, fn in figs.items())
    return [f"| the shipped recipe rebuilt from scratch on this machine's CPU (seed 0), against gain24-bgdenoise "
            f"seed 0 distilled from the same rebuilt teacher (val only) | attribution, not a candidate | bgdenoise vs "
            f"rebuilt: {text}; crackles probe minus rebuilt {_paired(sel, cand, ctl, 'probe', 'crackles')} | "
            "attribution_gain24-rebuilt_val.md |"]


def kd_ensemble_control(sel: dict[str, Any]) -> list[str]:
    """gain24-kdens seed 0 against the shipped recipe rebuilt on this CPU (seed 0): the same embedding teacher and
    distillation seed, so the difference is the KD ensemble's own (``attribution_gain24-kdens_val.md``)."""
    ctl, cand, shipped = "gain24-both rebuilt seed 0 int8 ONNX", "gain24-kdens seed 0 int8 ONNX", SHIPPED_SEEDS[0]
    figs = _clean_and_noise(sel) | {"largest mean gain shift": lambda s: _gain_shift(sel, s),
                                    "crackles band-limit drop": lambda s: _label_set_drops(sel, s)["crackles"]}
    text = "; ".join(f"{k} {fn(cand):.3f} vs {fn(ctl):.3f} (shipped {fn(shipped):.3f})" for k, fn in figs.items())
    return [f"| the two-teacher KD ensemble on its own: gain24-kdens seed 0 against the shipped recipe rebuilt on "
            f"this CPU, distilled from the same seed-0 teacher with the same seed (val only) | attribution, not a "
            f"candidate | kdens vs rebuilt: {text}; crackles probe minus rebuilt "
            f"{_paired(sel, cand, ctl, 'probe', 'crackles')} | attribution_gain24-kdens_val.md |"]


#: ``selection_rule_gain24_kdens3.md``, its test confirmation: NULL_MARGINS, native asked only for no loss
NULL_TEST_MARGINS = {**NULL_MARGINS, 1: 0.0}
#: the shipped recipe rebuilt on this CPU, three seeds (``seed_gain24-rebuilt_val.md``): the baseline of a candidate
#: trained here (``selection_rule_gain24_kdens3.md``)
REBUILT = "gain24-both rebuilt seed"
#: ``selection_rule_gain24_kdcodec.md``: a robustness lever, native asked only for no loss, and its purpose as
#: check 6 (heart_abnormal's mulaw8k drop lowered by 0.01 on val, by 0.02 on test)
CODEC_MARGINS = {**NULL_TEST_MARGINS, 6: -0.01}
CODEC_TEST_MARGINS = {**NULL_TEST_MARGINS, 6: -0.02}
#: ``selection_rule_gain24_kdpool.md``: a ranking lever (NULL_MARGINS: native mean up by 0.005 on val, no loss on
#: test) aimed at short events, so check 7 asks crackles' own native AUROC for no loss on either split
POOL_MARGINS = {**NULL_MARGINS, 7: 0.0}
POOL_TEST_MARGINS = {**NULL_TEST_MARGINS, 7: 0.0}
#: the issue's gain target: max probability shift <= 0.05 (check 8 reads its mean bound, 0.01, from the margins)
GAIN_TARGET_MAX = 0.05
#: ``selection_rule_floor160_level.md``: a level lever (native and probe means no more than 0.01 under, as
#: ``selection_rule_levelnorm_both.md``), no more gain shift than the baseline, NULL's band-limit and noise checks,
#: and check 8: every candidate seed meets the gain target (mean <= 0.01, max <= GAIN_TARGET_MAX); the same on test
LEVEL_MARGINS = {1: -0.01, 2: -0.01, 3: 0.0, 4: 0.02, 5: -0.01, 8: 0.01}


def three_seed_rule(val: dict[str, Any], test: dict[str, Any] | None, candidate: str, baseline: str,
                    lever: str, short: str, rule: str, status: str = "", stored: dict[str, Any] | None = None,
                    margins: tuple[dict[int, float], dict[int, float]] = (NULL_MARGINS, NULL_TEST_MARGINS),
                    shared_only: bool = False, seeds: Sequence[int] = (0, 1, 2), unclipped: bool = False
                    ) -> list[str]:
    """A candidate's three seeds against a baseline recipe's three, seed for seed: the seed-mean rule with
    ``NULL_MARGINS`` on val and, if it was scored, ``NULL_TEST_MARGINS`` on test (``selection_rule_gain24_kdens3.md``;
    ``margins``: another (val, test) pair);
    ``candidate`` and ``baseline`` are system-name prefixes, ``short`` names the two in the figures cell.  Not
    judged unless both hold exactly ``seeds`` (0, 1 and 2 unless a rule named others); with ``stored`` (the
    baseline's earlier val run), void unless every baseline seed re-scores there identically (``with_stored_seeds``);
    ``unclipped``: check 8 on the records not clipped at source (:func:`seed_mean_rule`)."""
    found = {k: sorted(int(s[len(p):].split()[0]) for s in val["rows"] if s.startswith(p))
             for k, p in (("cand", candidate), ("base", baseline))}
    if found["cand"] != list(seeds) or found["base"] != list(seeds):
        return [f"| {lever} | not judged: seeds {found['cand']} against {found['base']}, the rule needs "
                f"{', '.join(map(str, seeds))} of both | - | {rule} |"]
    if stored is not None:
        try:
            for s in (s for s in val["rows"] if s.startswith(baseline)):
                with_stored_seeds(val, stored, s, [], shared_only)
        except ValueError as exc:
            return [f"| {lever} | void: {exc} | - | {rule} |"]
    cells, verdicts = [], []
    for split, sel, split_margins in (("val", val, margins[0]), ("test", test, margins[1])):
        if sel is None:
            continue
        r = seed_mean_rule(sel, candidate, baseline, split_margins, unclipped)
        verdicts.append(f"{split} " + ("passes" if not r["failed"] else
                                       "fails check " + ", ".join(map(str, r["failed"]))))
        cells.append(f"{split}: {_rule_figures(r)}")
    if test is None:
        verdicts.append("test not scored" if verdicts[0] != "val passes" else "test not scored yet")
    return [f"| {lever} | {'; '.join(verdicts)}{status} | seed means, {short}: {'. '.join(cells)} | {rule} |"]


def level_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                      stored: dict[str, Any] | None = None) -> list[str]:
    """floor160-level (the -160 dB front end, scored on level-shifted windows with the level-blind gate) against the
    shipped recipe rebuilt on this CPU, seed for seed, with ``LEVEL_MARGINS`` on both splits
    (``selection_rule_floor160_level.md``; ``stored``: ``seed_gain24-rebuilt_val.json``)."""
    return three_seed_rule(
        val, test, "floor160-level seed", REBUILT,
        "the front end floored at -160 dB in both stages, scored on windows shifted to a running level with the "
        "level-blind quality gate (`acula export --level-shift`, sdk.level; floor160-level) against the shipped "
        "recipe rebuilt on this CPU, three seeds each, seed for seed; written knowing seeds 0 and 1 through the "
        "level-floor experiment", "floor160-level vs rebuilt", "selection_rule_floor160_level.md", status, stored,
        (LEVEL_MARGINS, LEVEL_MARGINS), shared_only=True)  # the run adds gain-40, which the stored one lacks


def lowfloor_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                         stored: dict[str, Any] | None = None, variant: str = "") -> list[str]:
    """gain24-lowfloor (the student alone on the -160 dB front end, the shipped teachers, scored level-blind;
    ``variant`` "kf": the same students exported with digital silence kept at the floor, gain24-lowfloor-kf; "r130":
    with a relative floor 130 dB under the reference level instead, gain24-lowfloor-r130) against the shipped recipe
    rebuilt on this CPU, seed for seed, with ``LEVEL_MARGINS`` on both splits (``selection_rule_gain24_lowfloor.md``
    and its addenda; ``stored``: ``seed_gain24-rebuilt_val.json``)."""
    if variant not in ("", "kf", "r130"):
        raise ValueError(f"variant must be '', 'kf' or 'r130', got {variant!r}")
    name = "gain24-lowfloor" + (f"-{variant}" if variant else "")
    kept = {"": "", "kf": ", digital silence kept at the floor (`--level-keep-floor`; the same students re-exported, "
                          "a choice made on val)",
            "r130": ", cells raised to a relative floor 130 dB under the reference level (`--level-range-db 130`; "
                    "the same students re-exported, prompted by val, the 130 fixed from the teacher's floor)"}[variant]
    return three_seed_rule(
        val, test, f"{name} seed", REBUILT,
        "the student alone on the front end floored at -160 dB (`student_amin_power`; the teacher, the shipped "
        "recipe's of that seed, reads the crops at its own -100 dB floor), scored on level-shifted windows with the "
        f"level-blind gate (`--level-shift`{kept}; {name}) against the shipped recipe rebuilt on this CPU, three "
        "seeds each, seed for seed", f"{name.removeprefix('gain24-')} vs rebuilt", "selection_rule_gain24_lowfloor.md",
        status, stored, (LEVEL_MARGINS, LEVEL_MARGINS), shared_only=True)


#: selection_rule_gain24_lowfloor_shift_gated.md: LEVEL_MARGINS, with check 3 allowing +0.01 (both recipes are
#: level-blind; the shipped one's largest mean gain shift is 0.000-0.001, so "no larger" would judge noise)
GATED_MARGINS = {**LEVEL_MARGINS, 3: 0.01}
SHIPPED_SHIFT = "gain24-lowfloor-shift seed"
#: selection_rule_gain24_lowfloor_shift_kdens.md: the lever must raise native mean by 0.005; the other checks as
#: GATED_MARGINS, with the band-limit margin of the null check (+0.02)
KDENS_SHIFT_MARGINS = {**GATED_MARGINS, 1: 0.005}
#: selection_rule_gain24_lowfloor_shift_label_slp.md: a robustness lever, the body-sound band-limit drops must fall
#: by 0.01 on the mean of the three sets (check 9); GATED_MARGINS' guards otherwise (native mean >= baseline - 0.01)
SLP_MARGINS = {**GATED_MARGINS, 9: -0.01}
#: selection_rule_gain24_lowfloor_shift_label_slph.md: the same low-pass on heart crops alone, heart's band-limit drop
#: must fall by 0.01 (check 10); GATED_MARGINS' guards otherwise
SLPH_MARGINS = {**GATED_MARGINS, 10: -0.01}


#: levers judged against the shipped recipe's own three seeds, seed for seed, each under
#: ``selection_rule_<name with underscores>.md`` (``stored``: ``selection_gain24-lowfloor-shift_val.json``, where the
#: shipped recipe's seeds were judged): name -> (what the lever is, the row's short label, the rule's margins)
ON_SHIPPED: dict[str, tuple[str, str, dict[int, float]]] = {
    "gain24-lowfloor-shift-gated": (
        "gated time pooling in the student (`time_pool` gated: a 1x1 convolution scores each time step of each "
        "frequency block, the step weighs 2 x sigmoid(score) in the time average, zero-initialised: the mean at the "
        "start; 33 parameters, int8 LOGISTIC + MUL) on the shipped recipe (gain24-lowfloor-shift-gated) against the "
        "shipped recipe, three seeds each, seed for seed", "gated vs shipped", GATED_MARGINS),
    "gain24-lowfloor-shift-kdens": (
        "the two-teacher KD ensemble (gain24-kdens: the zero-shot KD target is the mean of two aligned teachers' "
        "label-set probabilities) on the shipped recipe (gain24-lowfloor-shift-kdens) against the shipped recipe, "
        "three seeds each, seed for seed; native mean must rise 0.005", "kdens on shipped vs shipped",
        KDENS_SHIFT_MARGINS),
    "gain24-lowfloor-shift-long": (
        "twice the distillation steps (12,000, not 6,000; the learning-rate schedule stretched with them) on the "
        "shipped recipe (gain24-lowfloor-shift-long) against the shipped recipe, three seeds each, seed for seed; "
        "native mean must rise 0.005", "long vs shipped", KDENS_SHIFT_MARGINS),
    "gain24-lowfloor-shift-f4k": (
        "the student on its own mel bank, 64 bands over 50-4000 Hz (29 under 1 kHz instead of 22; "
        "`student_f_max_hz`, the teacher on its full-band features of the same crops with the same augmentation "
        "draws) on the shipped recipe (gain24-lowfloor-shift-f4k) against the shipped recipe, three seeds each, seed "
        "for seed; native mean must rise 0.005", "f4k vs shipped", KDENS_SHIFT_MARGINS),
}


def on_shipped_three_seeds(name: str, val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                           stored: dict[str, Any] | None = None) -> list[str]:
    """Lever ``name`` of ``ON_SHIPPED`` against the shipped recipe's own three seeds, with its rule's margins on both
    splits."""
    what, label, margins = ON_SHIPPED[name]
    return three_seed_rule(val, test, f"{name} seed", SHIPPED_SHIFT, what, label,
                           f"selection_rule_{name.replace('-', '_')}.md", status, stored, (margins, margins),
                           shared_only=True)


#: levers judged on fresh distillation seeds 3-5 (teachers 0, 1, 2) against a recipe on the same seeds, seed for seed,
#: with ``KDENS_SHIFT_MARGINS`` and check 8 on the records not clipped at source: the rule's file stem (after
#: ``selection_rule_``) -> (the candidate's and the baseline's system-name prefixes, what the lever is, the row's short
#: label, the rule's margins on both splits)
ON_FRESH_SEEDS: dict[str, tuple[str, str, str, str, dict[int, float]]] = {
    "gain24_lowfloor_shift_long_fresh": (
        "gain24-lowfloor-shift-long seed", SHIPPED_SHIFT,
        "twice the distillation steps (gain24-lowfloor-shift-long) judged again on fresh distillation seeds 3, 4 and "
        "5 (teachers 0, 1, 2), against the shipped recipe on the same seeds, three seeds each, seed for seed; the gain "
        "target read without the records clipped at source; written after the first long rule's test was seen",
        "long vs shipped, seeds 3-5", KDENS_SHIFT_MARGINS),
    "gain24_lowfloor_shift_ema": (
        "gain24-lowfloor-shift-ema seed", SHIPPED_SHIFT,
        "the exported student an exponential moving average of its weights and batch-norm statistics over the "
        "distillation (`ema_decay` 0.9995, about the last 2,000 of 6,000 steps; gain24-lowfloor-shift-ema) against "
        "the shipped recipe's last step on distillation seeds 3, 4 and 5 (the same training runs, byte for byte), "
        "seed for seed; native mean must rise 0.005", "ema vs shipped, seeds 3-5", KDENS_SHIFT_MARGINS),
    "gain24_lowfloor_shift_label": (
        "gain24-lowfloor-shift-label seed", SHIPPED_SHIFT,
        "the training labels on the student's zero-shot scores (`weights.label` 0.5: cross-entropy of each label "
        "set's zero-shot distribution against the training split's heart, lung and sound labels; "
        "gain24-lowfloor-shift-label) against the shipped recipe on distillation seeds 3, 4 and 5, seed for seed; "
        "native mean must rise 0.005", "label vs shipped, seeds 3-5", KDENS_SHIFT_MARGINS),
    "gain24_lowfloor_shift_label1": (
        "gain24-lowfloor-shift-label1 seed", "gain24-lowfloor-shift-label seed",
        "twice the label term's weight (`weights.label` 1.0, not 0.5; gain24-lowfloor-shift-label1) against the "
        "shipped recipe (0.5) on distillation seeds 3, 4 and 5, seed for seed; native mean must rise 0.005",
        "label1 vs shipped (label 0.5), seeds 3-5", KDENS_SHIFT_MARGINS),
    "gain24_lowfloor_shift_label_slp": (
        "gain24-lowfloor-shift-label-slp seed", "gain24-lowfloor-shift-label seed",
        "a stethoscope's low-pass on the student's input alone, heart and lung crops (`p_student_lowpass` 0.5: a "
        "6th-order Butterworth at 1-2 kHz on half the PhysioNet and ICBHI crops, the teacher's target from the "
        "full-band crop; gain24-lowfloor-shift-label-slp) against the shipped recipe on distillation seeds 3, 4 and "
        "5, seed for seed; the mean body-sound band-limit drop must fall 0.01", "slp vs shipped, seeds 3-5",
        SLP_MARGINS),
    "gain24_lowfloor_shift_label_hkd": (
        "gain24-lowfloor-shift-label-hkd seed", "gain24-lowfloor-shift-label seed",
        "the supervised control's heads as soft targets for the student's heart and lung zero-shot scores "
        "(`weights.head_kd` 0.5, `head_teacher` the control, reading each crop before augmentation; "
        "gain24-lowfloor-shift-label-hkd) against the shipped recipe on distillation seeds 3, 4 and 5, seed for seed; "
        "native mean must rise 0.005", "hkd vs shipped, seeds 3-5", KDENS_SHIFT_MARGINS),
    "gain24_lowfloor_shift_label_slph": (
        "gain24-lowfloor-shift-label-slph seed", "gain24-lowfloor-shift-label seed",
        "the same low-pass on the student's input alone, heart crops only (`p_student_lowpass` 0.5 on PhysioNet "
        "crops; gain24-lowfloor-shift-label-slph; written after the heart-and-lung variant's val was seen) against "
        "the shipped recipe on distillation seeds 3, 4 and 5, seed for seed; heart's band-limit drop must fall 0.01",
        "slph vs shipped, seeds 3-5", SLPH_MARGINS),
    "gain24_lowfloor_shift_label_slph_fresh": (
        "gain24-lowfloor-shift-label-slph seed", "gain24-lowfloor-shift-label seed",
        "the heart-only low-pass (gain24-lowfloor-shift-label-slph) judged again on fresh distillation seeds 6, 7 and "
        "8 (teachers 0, 1, 2) against the shipped recipe on the same seeds, seed for seed, slph's margins unchanged; "
        "written after slph's val on seeds 3-5 was seen", "slph vs shipped, seeds 6-8", SLPH_MARGINS),
}

#: the distillation seeds a rule of ``ON_FRESH_SEEDS`` was judged on, where not 3, 4 and 5
FRESH_SEEDS = {"gain24_lowfloor_shift_label_slph_fresh": (6, 7, 8)}


def fresh_three_seeds(rule: str, val: dict[str, Any], test: dict[str, Any] | None = None, status: str = ""
                      ) -> list[str]:
    """Lever ``rule`` of ``ON_FRESH_SEEDS`` (``selection_rule_<rule>.md``) on distillation seeds 3-5 (or the rule's
    ``FRESH_SEEDS``) against its baseline on the same seeds, with its margins on both splits and check 8 on the
    records not clipped at source."""
    candidate, baseline, what, short, margins = ON_FRESH_SEEDS[rule]
    return three_seed_rule(val, test, candidate, baseline, what, short, f"selection_rule_{rule}.md", status,
                           margins=(margins, margins), seeds=FRESH_SEEDS.get(rule, (3, 4, 5)), unclipped=True)


#: selection_rule_gain24_lowfloor_shift_phone.md's primary checks, on flagged recordings summed over the three seeds
#: (``cough_channels``): P1 phone non-cough under the 8 kHz and mu-law channels must fall by at least this many,
#: P2 coughs under them may fall by at most this many, P3 on clean audio phone non-cough may rise by 1, coughs fall by 1
PHONE_MARGINS = {"P1": 3, "P2": 2, "P3 phone": 1, "P3 cough": 1}
PHONE_CANDIDATE = "gain24-lowfloor-shift-phone seed"


def _flagged(runs: dict[str, Any], names: Sequence[str], group: str, channels: Sequence[str]) -> int:
    """Recordings of ``group`` flagged, summed over the ``cough_channels`` bundles ``names`` and ``channels``."""
    return sum(int(runs[n][c]["groups"][group]["flagged"]) for n in names for c in channels)


def phone_channel_checks(channels: dict[str, Any], candidate: str = PHONE_CANDIDATE, baseline: str = SHIPPED_SHIFT
                         ) -> dict[str, Any]:
    """P1-P3 of ``selection_rule_gain24_lowfloor_shift_phone.md`` from a ``cough_channels`` result: the bundles whose
    names start with ``candidate`` against those starting with ``baseline`` (three seeds each), flagged recordings
    summed over seeds (and, for P1 and P2, the 8k and mulaw8k channels)."""
    runs = channels["runs"]
    who = {k: sorted(n for n in runs if n.startswith(p)) for k, p in (("cand", candidate), ("base", baseline))}
    if len(who["cand"]) != 3 or len(who["base"]) != 3:
        raise ValueError(f"the phone rule needs three seeds of each, got {who}")
    if channels.get("precision", "int8") != "int8":
        raise ValueError(f"the phone rule reads int8 bundles (their operating points), got {channels['precision']}")
    sizes = {(c, g, r["groups"][g]["n"]) for n in who["cand"] + who["base"] for c, r in runs[n].items()
             for g in r["groups"]}
    if len({(c, g) for c, g, _ in sizes}) != len(sizes):
        raise ValueError("the bundles screened different recordings (group sizes differ)")

    phone, cough = "breathing + speech (phone)", "cough (phone)"
    f = {name: {k: _flagged(runs, who[k], g, ch) for k in ("cand", "base")} for name, g, ch in (
        ("phone non-cough flagged, 8k + mu-law", phone, ("8k", "mulaw8k")),
        ("coughs flagged, 8k + mu-law", cough, ("8k", "mulaw8k")),
        ("phone non-cough flagged, clean", phone, ("clean",)), ("coughs flagged, clean", cough, ("clean",)))}
    m = PHONE_MARGINS
    keys = list(f)
    checks = [("P1", f[keys[0]]["cand"] <= f[keys[0]]["base"] - m["P1"]),
              ("P2", f[keys[1]]["cand"] >= f[keys[1]]["base"] - m["P2"]),
              ("P3", f[keys[2]]["cand"] <= f[keys[2]]["base"] + m["P3 phone"]
               and f[keys[3]]["cand"] >= f[keys[3]]["base"] - m["P3 cough"])]
    return {"figures": f, "checks": checks, "failed": [n for n, ok in checks if not ok]}


#: levers judged by ``selection_rule_gain24_lowfloor_shift_phone.md``'s checks (P1-P3 and the guards), each under
#: ``selection_rule_<name with underscores>.md``: name -> what the lever is
PHONE_LEVERS = {
    "gain24-lowfloor-shift-phone": (
        "a phone call's band limit in distillation (`p_phone` 0.25: a quarter of the crops keep nothing over 4 kHz, "
        "teacher and student alike; gain24-lowfloor-shift-phone) against the shipped recipe rebuilt on this CPU, three "
        "seeds each, seed for seed; phone-channel false alarms must fall"),
    "gain24-lowfloor-shift-sphone": (
        "a phone call's channel on the student's input alone (`p_student_phone` 0.25, the teacher's target from the "
        "full-band crop; gain24-lowfloor-shift-sphone) against the shipped recipe rebuilt on this CPU, three seeds "
        "each, seed for seed, the phone rule's checks; a second look, written after the pilot's seed 1 was seen"),
}


def phone_three_seeds(val: dict[str, Any], channels_val: dict[str, Any], test: dict[str, Any] | None = None,
                      channels_test: dict[str, Any] | None = None, status: str = "",
                      name: str = "gain24-lowfloor-shift-phone") -> list[str]:
    """Lever ``name`` of ``PHONE_LEVERS`` against the shipped recipe rebuilt on this CPU, seed for seed: P1-P3
    (:func:`phone_channel_checks`) and the guards (``GATED_MARGINS``' checks 1-5 and 8) on each split scored."""
    candidate = f"{name} seed"
    if (test is None) != (channels_test is None):
        raise ValueError("the phone rule's test split needs both its primary run and its cough_channels run")
    cells, verdicts = [], []
    for split, sel, chans in (("val", val, channels_val), ("test", test, channels_test)):
        if sel is None or chans is None:
            continue
        if chans.get("splits") != [split] or sel.get("scored") != [split]:
            raise ValueError(f"the {split} files score {chans.get('splits')} and {sel.get('scored')}, not {split}")
        p, r = phone_channel_checks(chans, candidate), seed_mean_rule(sel, candidate, SHIPPED_SHIFT, GATED_MARGINS)
        failed = p["failed"] + [str(n) for n in r["failed"]]
        verdicts.append(f"{split} " + ("passes" if not failed else "fails check " + ", ".join(failed)))
        counts = "; ".join(f"{k} {v['cand']} vs {v['base']}" for k, v in p["figures"].items())
        cells.append(f"{split}: {counts}; {_rule_figures(r)}")
    if test is None:
        verdicts.append("test not scored" if verdicts[0] != "val passes" else "test not scored yet")
    short = name.removeprefix("gain24-lowfloor-shift-")
    return [f"| {PHONE_LEVERS[name]} | {'; '.join(verdicts)}{status} | seed sums and means, {short} vs shipped: "
            f"{'. '.join(cells)} | selection_rule_{name.replace('-', '_')}.md |"]


def lowfloor_shift_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                               stored: dict[str, Any] | None = None) -> list[str]:
    """gain24-lowfloor-shift (gain24-lowfloor-r130 with the running-level shift and relative floor in distillation
    too) against the shipped recipe rebuilt on this CPU, seed for seed, with ``LEVEL_MARGINS`` on both splits
    (``selection_rule_gain24_lowfloor_shift.md``; ``stored``: ``seed_gain24-rebuilt_val.json``)."""
    return three_seed_rule(
        val, test, "gain24-lowfloor-shift seed", REBUILT,
        "the student trained on the crops the SDK scores: shifted to their running level and raised to the relative "
        "floor 130 dB under the reference in distillation (`student_level_ref`, `student_level_range_db`), on the "
        "-160 dB front end with the shipped teachers, exported level-blind (gain24-lowfloor-shift) against the "
        "shipped recipe rebuilt on this CPU, three seeds each, seed for seed", "lowfloor-shift vs rebuilt",
        "selection_rule_gain24_lowfloor_shift.md", status, stored, (LEVEL_MARGINS, LEVEL_MARGINS), shared_only=True)


def keep_floor_experiment(*runs: dict[str, Any]) -> list[str]:
    """gain24-lowfloor's three bundles with ``scripts/level_floor_experiment.py --keep-floor``: the SDK's level shift
    leaving digital silence at the front end's floor (one val run per seed, seed 0 first; no rule)."""
    cells = []
    for seed, sel in enumerate(runs):
        s = f"gain24-lowfloor seed {seed}, floor kept"
        if s not in sel["rows"]:
            raise ValueError(f"keep_floor_val_gain24-lowfloor_seed{seed}.json lacks {s!r}")
        cells.append(f"seed {seed}: native mean {_mean(sel['rows'][s], 'native'):.3f}, probe mean "
                     f"{_mean(sel['rows'][s], 'probe'):.3f}, largest mean / max gain shift {_gain_shift(sel, s):.3f} / "
                     f"{_gain_shift_max(sel, s):.3f}")
    return ["| gain24-lowfloor's bundles with digital silence kept at the floor by the level shift (no retraining; "
            "`--keep-floor`, val only) | an experiment, not shipped: the clean figures do not move, the largest max "
            "gain shift falls from 0.104 / 0.051 / 0.074 to the figures here; the one left above 0.05 is a dog bark "
            "whose near-silent cells reach the floor at -24 dB | " + "; ".join(cells)
            + " | keep_floor_val_gain24-lowfloor_seed*.md |"]


def kd_ensemble_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                            stored: dict[str, Any] | None = None) -> list[str]:
    """gain24-kdens on three seeds against the shipped recipe rebuilt on this CPU, seed for seed
    (``selection_rule_gain24_kdens3.md``; ``stored``: ``seed_gain24-rebuilt_val.json``)."""
    return three_seed_rule(
        val, test, "gain24-kdens seed", REBUILT,
        "the two-teacher KD ensemble (gain24-kdens) judged again on three seeds against the shipped recipe rebuilt on "
        "this CPU, seed for seed (same embedding teacher and distillation seed in each pair), the band-limit margin "
        "widened to +0.02 by the null check; a second look, written after two seeds were seen", "kdens vs rebuilt",
        "selection_rule_gain24_kdens3.md", status, stored)


def kd_three_teachers(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                      stored: dict[str, Any] | None = None) -> list[str]:
    """gain24-kd3 (all three teachers in the KD term) against gain24-kdens (two), seed for seed
    (``selection_rule_gain24_kd3.md``; ``stored``: ``selection_gain24-kdens3_val.json``)."""
    return three_seed_rule(
        val, test, "gain24-kd3 seed", "gain24-kdens seed",
        "a three-teacher KD ensemble (gain24-kd3: the KD target is the mean of all three of the shipped recipe's "
        "teachers) against the two-teacher one (gain24-kdens), three seeds each, seed for seed",
        "kd3 vs kdens", "selection_rule_gain24_kd3.md", status, stored)


def codec_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                      stored: dict[str, Any] | None = None) -> list[str]:
    """gain24-kdcodec (codec noise on the student's input alone) against gain24-kdens, seed for seed, with
    ``CODEC_MARGINS`` / ``CODEC_TEST_MARGINS`` (``selection_rule_gain24_kdcodec.md``; ``stored``:
    ``selection_gain24-kdens3_val.json``)."""
    return three_seed_rule(
        val, test, "gain24-kdcodec seed", "gain24-kdens seed",
        "a codec's quantisation floor on the student's input alone (gain24-kdcodec: white noise to 4 kHz at 22-38 dB "
        "under each frame's power on half the crops, the teachers' targets from the crop without it) against "
        "gain24-kdens, three seeds each, seed for seed; distillation only", "kdcodec vs kdens",
        "selection_rule_gain24_kdcodec.md", status, stored, (CODEC_MARGINS, CODEC_TEST_MARGINS))


def pool_three_seeds(val: dict[str, Any], test: dict[str, Any] | None = None, status: str = "",
                     stored: dict[str, Any] | None = None) -> list[str]:
    """gain24-kdpool (the student pools over time by mean + max) against gain24-kdens, seed for seed, with
    ``POOL_MARGINS`` / ``POOL_TEST_MARGINS`` (``selection_rule_gain24_kdpool.md``; ``stored``:
    ``selection_gain24-kdens3_val.json``)."""
    return three_seed_rule(
        val, test, "gain24-kdpool seed", "gain24-kdens seed",
        "mean + max pooling over the window's time steps in the student (gain24-kdpool: PANNs-style, after an "
        "average over frequency blocks; same parameters) against gain24-kdens, three seeds each, seed for seed; "
        "distillation only", "kdpool vs kdens", "selection_rule_gain24_kdpool.md", status, stored,
        (POOL_MARGINS, POOL_TEST_MARGINS))


def _pilot_figures(sel: dict[str, Any], systems: Sequence[str], figs: dict[str, Callable[[str], float]],
                   results: str) -> str:
    """A pilot row's figures cell: per figure, its value for each of ``systems`` in turn ("a / b / c"); ValueError
    naming ``results`` when the run lacks one of them."""
    if any(n not in sel["invariance"] for n in systems):
        raise ValueError(f"{results} lacks a system: {sorted(sel['invariance'])}")
    return "; ".join(f"{k} " + " / ".join(f"{fn(n):.3f}" for n in systems) for k, fn in figs.items())


def codec_both_stages_pilot(sel: dict[str, Any]) -> list[str]:
    """One seed of the codec floor in both stages (``pilot_rule_gain24_codec2.md``) beside kdcodec seed 0 (the same
    distillation, a teacher that never heard the codec) and kdens seed 0; a pilot, judged by nothing."""
    figs = {**_clean_and_noise(sel),
            "heart mulaw8k drop": lambda s: _drop(sel, s, "heart_abnormal", "mulaw8k")}
    text = _pilot_figures(sel, [f"{k} seed 0 int8 ONNX" for k in ("gain24-codec2", "gain24-kdcodec", "gain24-kdens")],
                          figs, "pilot_gain24-codec2_val.json")
    return ["| the codec's noise floor in both stages: the seed-0 teacher aligned under it (`p_codec` 0.5), kdcodec's "
            "distillation (gain24-codec2, one seed, val only) | pilot, decides nothing | codec2 / kdcodec / kdens, "
            f"seed 0: {text} | pilot_rule_gain24_codec2.md |"]


def _clean_and_noise(sel: dict[str, Any]) -> dict[str, Callable[[str], float]]:
    """A system's clean native and probe means and its native AUROC under real backgrounds, by figure name."""
    return {"native mean": lambda s: _mean(sel["rows"][s], "native"),
            "probe mean": lambda s: _mean(sel["rows"][s], "probe"),
            "native under noise20 / noise10": lambda s: _noise_auroc(sel, s)}


def background_teachers(sel: dict[str, Any]) -> list[str]:
    """Where ``gain24-bg``'s clean cost arises: its two aligned teachers (zero-shot through their own text
    projection) against the shipped recipe's three, seed means on validation (``teacher_background_val.md``)."""
    groups = {k: [s for s in sel["invariance"] if s.startswith(p)]
              for k, p in (("cand", "teacher gain24-bg seed"), ("base", "teacher gain24-both seed"))}
    if not groups["cand"] or not groups["base"]:
        raise ValueError(f"teacher_background_val.json lacks the teachers: {sorted(sel['invariance'])}")

    figures = {k: tuple(float(np.mean([fn(s) for s in groups[g]])) for g in ("cand", "base"))
               for k, fn in _clean_and_noise(sel).items()}
    clean = figures["native mean"][0] - figures["native mean"][1]
    where = ("the teachers keep their clean ranking (within 0.005), so the students' clean cost arises in "
             "distillation" if clean >= -0.005 else f"the teachers already lose {-clean:.3f} of clean ranking")
    figs = "; ".join(f"{k} {c:.3f} vs {b:.3f} ({c - b:+.3f})" for k, (c, b) in figures.items())
    return [f"| the same real backgrounds, teachers only: gain24-bg's {len(groups['cand'])} aligned teachers against "
            f"the shipped recipe's {len(groups['base'])} (zero-shot; val only) | attribution, not a candidate: "
            f"{where} | seed means, teachers: {figs} | teacher_background_val.md |"]


def background_teacher_pilot(sel: dict[str, Any]) -> list[str]:
    """One seed of gain24-bg's teacher distilled without backgrounds (``pilot_rule_gain24_bgteach.md``) against
    the shipped recipe's seed mean on validation; a pilot, judged by nothing."""
    pilot = "gain24-bgteach seed 0 int8 ONNX"
    base = [s for s in sel["invariance"] if s.startswith("gain24-both seed")]
    if pilot not in sel["rows"] or not base:
        raise ValueError(f"pilot_gain24-bgteach_val.json lacks the pilot or the shipped seeds: {sorted(sel['rows'])}")
    figs = "; ".join(f"{k} {fn(pilot):.3f} vs {float(np.mean([fn(s) for s in base])):.3f}"
                     for k, fn in _clean_and_noise(sel).items())
    return ["| gain24-bg's seed-0 teacher distilled with the shipped distillation, no background in the student's "
            "crops (gain24-bgteach, one seed, val only) | pilot, decides nothing | one seed vs the shipped "
            f"recipe's {len(base)}-seed mean: {figs} | pilot_rule_gain24_bgteach.md |"]


def int8_writer(res: dict[str, Any]) -> list[str]:
    """The int8 ONNX writer's choice (``python -m acula.benchmarks.int8_export``, val windows only)."""
    rows = {r["choice"]: r for r in res["rows"]}
    old, new = res["rows"][0], rows[res["chosen"]]
    return [f"| int8 ONNX writer: {new['choice']} (was {old['choice'].split(' (')[0]}), chosen on "
            f"{res['val_windows']:,} val windows by the cough-logit error | kept | cough-logit error p99 "
            f"{new['logit_err_p99']:.3f} vs {old['logit_err_p99']:.3f}, max {new['logit_err_max']:.2f} vs "
            f"{old['logit_err_max']:.2f}; embedding cosine min {new['cosine_min']:.4f} vs {old['cosine_min']:.4f}; "
            f"{new['bytes'] - old['bytes']:+,} bytes | int8_export.md, selection_rule_neutral.md |"]


def tflite_writer(res: dict[str, Any]) -> list[str]:
    """The int8 TFLite writer's calibration count (``python -m acula.benchmarks.int8_tflite_calibration``)."""
    mean = res["mean_cough_logit_err_p99"]
    first, chosen = str(res["counts"][0]), str(res["chosen"])
    return [f"| int8 TFLite writer: {chosen} calibration windows (was {first}), chosen on validation windows of "
            f"{len(res['students'])} students by the cough-window logit error | kept | cough-window error p99, mean "
            f"over the students, {mean[chosen]:.3f} vs {mean[first]:.3f} | int8_tflite_calibration.md |"]


def negated_prompts(cur: list[dict[str, Any]], neg: list[dict[str, Any]]) -> list[str]:
    by = {r["task"]: r for r in cur}
    cells = [f"{r['task']} {r['zero_shot_auroc']:.3f} vs {by[r['task']]['zero_shot_auroc']:.3f}"
             for r in neg if r["task"] in by and r["task"] != "cough_vs_noncough"]
    return [f"| negated findings in prompts ('no wheezes') vs affirmative only (val, zero-shot) | affirmative "
            f"kept | negated vs affirmative: {'; '.join(cells)} | prompts_val_*.md |"]


def cough_split(ev: dict[str, Any]) -> list[str]:
    g = ev["groups"]["cough (Coswara, phone)"]["recorded"]
    hands = ev["hand_counts"]
    exact = sum(h["events"] == h["hand_count"] for h in hands)
    return [f"| one event per cough (onset/offset refined inside positive windows) | kept | events per flagged "
            f"cough recording {g['events_per_flagged_before_split']:.2f} -> {g['events_per_flagged_after_split']:.2f}; "
            f"hand-counted val recordings matched exactly {exact}/{len(hands)} | cough_events.md |"]


def _op_sums(run: dict[str, Any], rule: str, group: str, channels: Sequence[str]) -> tuple[int, int]:
    """Recordings of ``group`` flagged at ``rule``'s points (and their count), summed over an
    ``operating_point_builds`` run's builds and ``channels``."""
    cells = [b[rule]["flagged"][c][group] for b in run["bundles"].values() for c in channels]
    return sum(k for k, _ in cells), sum(n for _, n in cells)


def operating_point_rule(val: dict[str, Any], test: dict[str, Any]) -> list[str]:
    """The pooled-channel cough operating point against the export's earlier rule, seven builds
    (``selection_rule_operating_point.md``): val's spread and recall, test at val's points."""
    three, phone = ("clean", "8k", "mulaw8k"), ("8k", "mulaw8k")
    sv, sc = val["spread_pooled"], val["spread_clean"]
    cough = {r: _op_sums(val, r, "cough", three) for r in ("pooled", "clean")}
    t_cough = {r: _op_sums(test, r, "cough", three) for r in ("pooled", "clean")}
    t_phone = {r: _op_sums(test, r, "phone non-cough", phone) for r in ("pooled", "clean")}
    n = len(val["bundles"])
    return [f"| the cough operating point chosen with the phone recordings also heard at 8 kHz and 8-bit mu-law "
            f"(pooled), against the export's rule over recordings as recorded; {n} builds of the shipped recipe | val "
            "passes; test passes; adopted: `acula export` chooses by it, the shipped bundle re-pointed "
            f"(0.71 -> 0.86) | val: points {sv['min']:g}-{sv['max']:g} vs {sc['min']:g}-{sc['max']:g} (range "
            f"{sv['range']:.3f} vs {sc['range']:.3f}, sd {sv['sd']:.3f} vs {sc['sd']:.3f}); coughs flagged over the "
            f"three channels {cough['pooled'][0]} vs {cough['clean'][0]} of {cough['clean'][1]}. test at val's points: "
            f"phone non-cough flagged through 8 kHz + mu-law {t_phone['pooled'][0]} vs {t_phone['clean'][0]} of "
            f"{t_phone['clean'][1]}; coughs {t_cough['pooled'][0]} vs {t_cough['clean'][0]} of {t_cough['clean'][1]} | "
            "selection_rule_operating_point.md |"]


def crackle_fine_time(r: dict[str, Any]) -> list[str]:
    """Hand-made fine-time features of ICBHI cycles against the crackles label (no model)."""
    val = [f["val"] for f in r["features"]]
    lo, hi = min(v["auroc"] for v in val), max(v["auroc"] for v in val)
    wlo, whi = min(v["within_recording"] for v in val), max(v["within_recording"] for v in val)
    return [f"| fine-time features of ICBHI cycles (kurtosis of 16 ms frames, transients of the 1 ms envelope, 4 ms "
            "level steps), no model: does fine time carry crackles before a fine-time branch is built? | an "
            "experiment, not a lever: no feature ranks crackles within a recording | val AUROC per feature "
            f"{lo:.2f}-{hi:.2f}, within recording {wlo:.2f}-{whi:.2f}; a probe over all, fitted on train, "
            f"{r['probe_val']['auroc']:.2f} (within recording {r['probe_val']['within_recording']:.2f}) | "
            "crackle_fine_time.md |"]


def calibration(cal: dict[str, Any]) -> list[str]:
    cells = []
    for split in ("val", "test"):
        r = cal["splits"].get(split, {}).get("lung")
        if r:
            cells.append(f"{split} {r['shipped']['ece']:.3f} (bias dropped {r['temperature_only']['ece']:.3f}, "
                         f"uncalibrated {r['uncalibrated']['ece']:.3f})")
    spread = cal["splits"]["val"]["lung"]["spread_p5_p95"]
    return [f"| lung calibration: temperature + per-label bias (vector scaling), fitted on val | kept | lung ECE "
            f"{'; '.join(cells)}; val p(normal) p5-p95 {spread['normal'][0]:.2f}-{spread['normal'][1]:.2f}, "
            f"p(crackles) {spread['crackles'][0]:.2f}-{spread['crackles'][1]:.2f} | calibration.md, MODEL_CARD.md |"]


def refit_zero_shot(refit: dict[str, Any]) -> list[str]:
    before, after = "student fp32 before refit", "student fp32 refit"
    if before not in refit["rows"] or after not in refit["rows"]:
        return []
    rows = refit["rows"]
    cells = [f"{t} {rows[after][t]['native']['auroc']:.3f} vs {rows[before][t]['native']['auroc']:.3f}"
             for t in MAIN_TASKS if "native" in rows[after].get(t, {})]
    return [f"| the same, effect on zero-shot ranking (val + test, fp32) | - | refit vs before: {'; '.join(cells)} | "
            f"refit_calibration.md |"]


def int8_agreement() -> list[str]:
    from acula.sdk import precision as prec
    from acula.sdk.runtimes import make_backend

    from acula import sdk

    bundle = sdk.load("default", precision="fp32").bundle
    windows = prec.probe_windows(bundle)
    fp32 = make_backend("onnxruntime", bundle.files["student_fp32.onnx"])
    new = prec.int8_agreement(make_backend("onnxruntime", bundle.files["student_int8.onnx"]), fp32, windows)
    try:
        old_bytes = subprocess.run(["git", "show", f"{OLD_INT8_COMMIT}:sdk/models/default/student_int8.onnx"],
                                   cwd=ROOT, capture_output=True, check=True).stdout
        old = f"{prec.int8_agreement(make_backend('onnxruntime', old_bytes), fp32, windows):.3f}"
    except (OSError, subprocess.CalledProcessError):
        old = "n/a (commit not in this checkout)"
    return [f"| int8 ONNX quantised with reduce_range (7-bit weights) | kept | min embedding cosine to fp32 on "
            f"probe windows, this CPU ({prec.cpu_model()}): {old} -> {new:.3f} | this command |"]


def level_term(res: dict[str, Any]) -> list[str]:
    at = {(r["variant"], r["gain_db"]): r for r in res["rows"]}
    base, fit = ("as shipped", -24), ("level term, fitted slopes", -24)
    return [f"| a level term in the {res['label_set']} label logits (a slope per label on the window's RMS dB, "
            f"fitted on train under gain changes; no retraining; val only) | not shipped: removes a third of the "
            f"mean shift | at -24 dB mean shift {at[fit]['shift_mean']:.3f} vs {at[base]['shift_mean']:.3f}, max "
            f"{at[fit]['shift_max']:.3f} vs {at[base]['shift_max']:.3f}; clean AUROC "
            f"{at[(fit[0], 0)]['auroc']:.3f} vs {at[(base[0], 0)]['auroc']:.3f}; steeper slopes do worse "
            f"(2x: {at[('level term, 2x', -24)]['shift_mean']:.3f}): the response to level differs by recording | "
            f"level_compensation_{res['label_set']}.json |"]


def pool_side_by_side_pilot(sel: dict[str, Any]) -> list[str]:
    """One seed of the time mean and max side by side (``pilot_rule_gain24_kdpoolcat.md``) beside kdpool seed 0 (the
    two summed) and kdens seed 0 (the mean alone), the same teachers and seed; a pilot, judged by nothing."""
    def native(task: str) -> Callable[[str], float]:
        return lambda s: float(sel["rows"][s][task]["native"]["auroc"])

    figs = {**_clean_and_noise(sel), "crackles native": native("crackles"), "wheezes native": native("wheezes"),
            "heart native": native("heart_abnormal"),
            "band-limit drop crackles": lambda s: _label_set_drops(sel, s)["crackles"],
            "band-limit drop wheezes": lambda s: _label_set_drops(sel, s)["wheezes"]}
    text = _pilot_figures(sel, [f"{k} seed 0 int8 ONNX" for k in ("gain24-kdpoolcat", "gain24-kdpool", "gain24-kdens")],
                          figs, "pilot_gain24-kdpoolcat_val.json")
    return ["| the time mean and max side by side in the student (`time_pool` mean|max, 2 x the pooled width; "
            "gain24-kdpoolcat, one seed, val only) | pilot, decides nothing | kdpoolcat / kdpool / kdens, seed 0: "
            f"{text} | pilot_rule_gain24_kdpoolcat.md |"]


def student_phone_pilot(sel: dict[str, Any], channels: dict[str, Any]) -> list[str]:
    """One seed of the phone channel on the student's input alone (``pilot_rule_gain24_sphone.md``) beside the
    shipped recipe's seed 1 rebuilt on this CPU, the same teacher and seed: the phone-channel false alarms and
    coughs flagged (``cough_channels``) and the clean ranking; a pilot, judged by nothing."""
    names = ["gain24-lowfloor-shift-sphone seed 1", "gain24-lowfloor-shift seed 1"]
    runs = channels["runs"]
    if any(n not in runs for n in names):
        raise ValueError(f"pilot_channels_gain24-sphone_val.json lacks a bundle: {sorted(runs)}")

    counts = "; ".join(f"{label} " + " / ".join(str(_flagged(runs, [n], g, ch)) for n in names) for label, g, ch in (
        ("phone non-cough flagged, 8k + mu-law (of 78)", "breathing + speech (phone)", ("8k", "mulaw8k")),
        ("coughs flagged, 8k + mu-law (of 40)", "cough (phone)", ("8k", "mulaw8k")),
        ("clean phone non-cough flagged (of 39)", "breathing + speech (phone)", ("clean",)),
        ("clean coughs flagged (of 20)", "cough (phone)", ("clean",))))
    figs = {**_clean_and_noise(sel),
            "wheezes native": lambda s: float(sel["rows"][s]["wheezes"]["native"]["auroc"]),
            "cough band-limit drop": lambda s: _label_set_drops(sel, s)["cough"]}
    text = _pilot_figures(sel, [f"{n} int8 ONNX" for n in names], figs, "pilot_gain24-sphone_val.json")
    return ["| a phone call's channel on the student's input alone (`p_student_phone` 0.25, the teacher's target "
            "from the full-band crop; gain24-lowfloor-shift-sphone, seed 1, val only) | pilot, decides nothing | "
            f"sphone / shipped recipe rebuilt here, seed 1: {counts}; {text} | pilot_rule_gain24_sphone.md |"]


def _level_pilot_figs(sel: dict[str, Any]) -> dict[str, Callable[[str], float]]:
    """A level pilot's figures: clean and noise means, heart native, the largest mean gain shift, heart's mean shift
    at -24 and -40 dB, heart's mulaw8k drop."""
    def heart_shift(transform: str) -> Callable[[str], float]:
        return lambda s: float(sel["invariance"][s]["heart_abnormal"][transform]["native_shift_mean"])

    return {**_clean_and_noise(sel),
            "heart native": lambda s: float(sel["rows"][s]["heart_abnormal"]["native"]["auroc"]),
            "largest mean gain shift": lambda s: _gain_shift(sel, s),
            "heart mean shift at -24 dB": heart_shift("gain-24"), "at -40 dB": heart_shift("gain-40"),
            "heart mulaw8k drop": lambda s: _drop(sel, s, "heart_abnormal", "mulaw8k")}


def floor_pilot(sel: dict[str, Any], seed: int = 0) -> list[str]:
    """One seed of the shipped recipe on a front end floored at -160 dB (``pilot_rule_floor160.md``, its addendum for
    seed 1) beside the shipped recipe rebuilt on this CPU with the same seed; a pilot, judged by nothing."""
    results = "pilot_floor160_val.json" if seed == 0 else f"pilot_floor160_seed{seed}_val.json"
    text = _pilot_figures(sel, [f"floor160 seed {seed} int8 ONNX", f"gain24-both rebuilt seed {seed} int8 ONNX"],
                          _level_pilot_figs(sel), results)
    return ["| the front end's absolute floor 60 dB lower (`amin_power` 1e-16, -160 dB) in both stages of the shipped "
            f"recipe, so a gain change stays a uniform shift of the input (floor160, seed {seed}, val only) | pilot, "
            f"decides nothing | floor160 / rebuilt seed {seed}: {text} | pilot_rule_floor160.md |"]


def floor_ln100_pilot(sel: dict[str, Any]) -> list[str]:
    """One seed of floor160 with ``level_norm_db`` 100 in both stages (``pilot_rule_floor160_ln100.md``) beside
    floor160 and the rebuilt shipped recipe, seed 0; a pilot, judged by nothing."""
    systems = [f"{k} seed 0 int8 ONNX" for k in ("floor160-ln100", "floor160", "gain24-both rebuilt")]
    text = _pilot_figures(sel, systems, _level_pilot_figs(sel), "pilot_floor160_ln100_val.json")
    return ["| the -160 dB front end with each window shifted to its own peak inside the graph, in both stages "
            "(`level_norm_db` 100: floored 100 dB under the peak; floor160-ln100, one seed, val only) | pilot, decides "
            "nothing; its second seed stopped for the CPU: level-blind by construction, but its clean ranking pays "
            "more than the running-level shift at inference on the same front end | ln100 / floor160 / rebuilt, "
            f"seed 0: {text} | pilot_rule_floor160_ln100.md |"]


def floor_shift_experiment(*runs: dict[str, Any]) -> list[str]:
    """floor160's students (seeds 0 and 1, one run each, seed 0 first) with ``scripts/level_floor_experiment.py``'s
    running-level shift at inference (no relative floor, no retraining), scored in one run beside the same bundle
    unshifted and the rebuilt shipped recipe of that seed."""
    cells = []
    for seed, sel in enumerate(runs):
        def heart_shift(transform: str, sel: dict[str, Any] = sel) -> Callable[[str], float]:
            return lambda s: float(sel["invariance"][s]["heart_abnormal"][transform]["native_shift_mean"])

        figs = {"native mean": lambda s, sel=sel: _mean(sel["rows"][s], "native"),
                "probe mean": lambda s, sel=sel: _mean(sel["rows"][s], "probe"),
                "heart native": lambda s, sel=sel: float(sel["rows"][s]["heart_abnormal"]["native"]["auroc"]),
                "heart mean shift at -24 dB": heart_shift("gain-24"), "at -40 dB": heart_shift("gain-40"),
                "largest mean gain shift": lambda s, sel=sel: _gain_shift(sel, s)}
        name = "floor160" if seed == 0 else f"floor160-seed{seed}"
        systems = [f"{name}, level-shifted R0", f"floor160 seed {seed} int8 ONNX",
                   f"gain24-both rebuilt seed {seed} int8 ONNX"]
        cells.append(f"seed {seed}: " + _pilot_figures(sel, systems, figs, f"level_floor_val_{name}_R0.json"))
    return ["| floor160's students with the running-level shift at inference (each window shifted so the loudest "
            "cell of the last 10 s sits at a fixed level; no relative floor, no retraining; seeds 0 and 1, val only) "
            "| an experiment, not shipped (the SDK has no such option yet): with almost nothing clipped by the "
            "-160 dB floor the shift takes heart's gain shift away at no cost against floor160 itself (paired probe "
            "differences in the source files) | shifted / floor160 / rebuilt, " + "; ".join(cells)
            + " | level_floor_val_floor160*_R0.md |"]


#: ``scripts/level_floor_experiment.py``'s relative floors, as the results files name them (0: shift only)
LEVEL_FLOOR_RANGES = (0, 90, 105, 120)


def level_floor(shipped: dict[str, Any], *runs: dict[str, Any]) -> list[str]:
    """The shipped student's windows shifted to a running level at inference (``scripts/level_floor_experiment.py``,
    one val run per relative floor) against the same bundle unpatched: heart's clean native AUROC and its mean
    shift at -24 dB, and the largest mean gain shift of any label set."""
    def figs(sel: dict[str, Any]) -> str:
        (system,) = sel["invariance"]
        heart = sel["invariance"][system]["heart_abnormal"]["gain-24"]["native_shift_mean"]
        return (f"heart native {sel['rows'][system]['heart_abnormal']['native']['auroc']:.3f}, heart -24 dB "
                f"shift {heart:.3f}, largest mean gain shift {_gain_shift(sel, system):.3f}, native mean "
                f"{_mean(sel['rows'][system], 'native'):.3f}")
    cells = [f"as shipped: {figs(shipped)}"] + [
        f"{'shift only' if r == 0 else f'floor {r} dB'}: {figs(sel)}" for r, sel in zip(LEVEL_FLOOR_RANGES, runs,
                                                                                        strict=True)]
    return ["| the shipped student's windows shifted to a running level at inference (the loudest cell of the last "
            "10 s), then floored R dB below the reference level; no retraining (val only) | an experiment, not "
            "shipped: the gain shift lives in the cells the front end's absolute floor (-100 dB) clips, and heart's "
            "ranking leans on them | " + "; ".join(cells) + " | level_floor_val_*.md |"]


LEVERS: list[tuple[tuple[str, ...], Callable[..., list[str]]]] = [
    (("primary.json",), teacher_objectives),
    (("primary.json",), supervised_control),
    (("selection_levelnorm_val.json",), level_norm),
    (("selection_invariant24_val.json",), student_gain),
    (("selection_invariant12_val.json",), lambda sel: student_gain(sel, "invariant12", 12)),
    (("selection_invariant24_self_val.json",),
     lambda sel: student_gain(sel, "invariant24-self", 24, "taught by the shipped student")),
    (("selection_control_self_val.json",), self_control),
    (("selection_invariant24_self_half_val.json",),
     lambda sel: student_gain(sel, "invariant24-self-half", 24, "taught by the shipped student", " of half the crops",
                              "; failed the shipping check (TFLite int8 misses a real cough fp32 flags): not shipped")),
    (("selection_finetune24_half_val.json",),
     lambda sel: student_gain(sel, "finetune24-half", 24, "the shipped student fine-tuned, taught by itself",
                              " of half the crops", "; its ONNX int8 misses a real cough fp32 flags")),
    (("selection_finetune24_nonlung_val.json",),
     lambda sel: student_gain(sel, "finetune24-nonlung", 24, "the shipped student fine-tuned, taught by itself",
                              " of heart, cough and ESC-10 crops (no lung crop)",
                              "; both int8 graphs miss a real cough fp32 flags")),
    (("selection_neutral_val.json", "selection_control_val.json"), realigned_candidate),
    (("selection_neutral24-half_val.json", "selection_control_val.json"),
     lambda sel, ctl: realigned_candidate(sel, ctl, "neutral24-half", f"{NEUTRAL}, the neutral teacher "
                                          "distilled with a level change of +-24 dB on the student's input of "
                                          "half the crops")),
    (("selection_neutral-sup_val.json", "selection_control_val.json"),
     lambda sel, ctl: realigned_candidate(sel, ctl, "neutral-sup", f"{NEUTRAL} and the supervised heads as an "
                                          "extra alignment loss (`w_sup` 0.5), shipped distillation")),
    (("selection_sup-heads_val.json", "selection_control_val.json"),
     lambda sel, ctl: realigned_candidate(sel, ctl, "sup-heads", "the supervised heads as an extra alignment "
                                          "loss (`w_sup` 0.5) on today's reports, shipped distillation",
                                          "; test scored (selection_sup-heads_test.md); shipping checks passed "
                                          "after the int8 writer change; re-scored below after the calibration fix")),
    (("selection_sup-heads-fixed_val.json", "selection_control_val.json"),
     lambda sel, ctl: realigned_candidate(sel, ctl, "sup-heads", "the same sup-heads teacher and student, "
                                          "re-exported with the calibration-order fix (the row above carries "
                                          "misplaced label-set biases)",
                                          "; built by scripts/train_default.sh byte for byte: the default")),
    (("selection_levelnorm-both_val.json",), both_stages),
    (("selection_gain24-both_val.json",),
     lambda sel: both_stages(sel, "gain24-both", "gain augmentation of +-24 dB (was +-6) in alignment and "
                             "distillation, sup-heads recipe otherwise",
                             "; test scored (selection_gain24-both_test.md: native cough, heart, crackles, "
                             "wheezes 0.987, 0.847, 0.680, 0.718 vs 0.985, 0.849, 0.657, 0.693); failed the "
                             "shipping check as first written (TFLite int8 decides one window of one real cough "
                             "differently, events identical); re-exported with the 1024-window TFLite writer and "
                             "scored again below")),
    (("selection_gain24-bw_val.json",),
     lambda sel: both_stages(sel, "gain24-both", "the same gain24-both student, TFLite int8 re-written from 1024 "
                             "calibration windows, held to rule 4 as well (selection_rule_gain24_bw.md)",
                             "; shipping check passed (int8_decisions_gain24-both-tfl1024.json: events identical, "
                             "one window changes side 0.10 logit from the threshold); **the default since "
                             "2026-12-03 (second change)**", band=True, rule="selection_rule_gain24_bw.md")),
    (("selection_gain24-bw_val.json",),
     lambda sel: both_stages(sel, "gain24-bw", "gain augmentation of +-24 dB and Butterworth-shaped band limits "
                             "(random order 2-8, cutoff 0.8-4 kHz) in alignment and distillation",
                             "; failed the shipping check: TFLite int8 events differ on one real cough "
                             "(int8_decisions_gain24-bw.json; one window 0.22 logit from the threshold changes side "
                             "and the event split follows it): not shipped", band=True)),
    (("seed_gain24-both_val.json", "seed_gain24-both_test.json"), seed_spread),
    (("selection_gain24-bg_val.json",),
     lambda sel: background_candidate(sel, "; shipping check on seed 0 passed (int8_decisions_gain24-bg.json); "
                                      "not shipped")),
    (("selection_gain24-bgmild_val.json",),
     lambda sel: background_candidate(sel, "; shipping check on seed 0 failed too (int8_decisions_gain24-bgmild.json: "
                                      "ONNX int8 misses one real cough fp32 flags); not shipped", "gain24-bgmild")),
    stored_seed_lever("gain24-bgdenoise", "passed"),
    stored_seed_lever("gain24-bgsteady", "passed, one real cough undecided"),
    stored_seed_lever("gain24-bgnonlung", "passed"),
    stored_seed_lever("gain24-kdens", "passed"),
    stored_seed_lever("gain24-bgkdens", "passed"),
    (("selection_gain24-kdens3_val.json", "selection_gain24-kdens3_test.json", "seed_gain24-rebuilt_val.json"),
     lambda val, test, stored: kd_ensemble_three_seeds(
         val, test, "; the lever is kept for recipes, the default stays: its seed 0's val cough recall at the "
                    "operating point is 0.85, the shipped default's 0.95 (the rule's amendment)", stored)),
    (("selection_gain24-kd3_val.json", "selection_gain24-kdens3_val.json"),
     lambda val, stored: kd_three_teachers(val, None, "; the two-teacher ensemble stays the preferred one", stored)),
    (("selection_gain24-kdcodec_val.json", "selection_gain24-kdens3_val.json"),
     lambda val, stored: codec_three_seeds(
         val, None, "; rejected: the heart mulaw8k drop falls in every pair, by less than asked, and zero-shot and "
                    "probe ranking pay for it", stored)),
    (("pilot_gain24-codec2_val.json",), codec_both_stages_pilot),
    (("selection_gain24-kdpool_val.json", "selection_gain24-kdens3_val.json"),
     lambda val, stored: pool_three_seeds(
         val, None, "; rejected: crackles native up (+0.014) and every band-limit drop lower, but wheezes native "
                    "falls in every seed (0.672 vs 0.721)", stored)),
    (("attribution_gain24-rebuilt_val.json",), rebuilt_control),
    (("attribution_gain24-kdens_val.json",), kd_ensemble_control),
    (("teacher_background_val.json",), background_teachers),
    (("pilot_gain24-bgteach_val.json",), background_teacher_pilot),
    (("int8_export.json",), int8_writer),
    (("int8_tflite_calibration.json",), tflite_writer),
    (("level_compensation_heart.json",), level_term),
    (("level_floor_val_shipped.json", *(f"level_floor_val_R{r}.json" for r in LEVEL_FLOOR_RANGES)), level_floor),
    (("pilot_floor160_val.json",), floor_pilot),
    (("pilot_floor160_seed1_val.json",), lambda sel: floor_pilot(sel, 1)),
    (("level_floor_val_floor160_R0.json", "level_floor_val_floor160-seed1_R0.json"), floor_shift_experiment),
    (("pilot_floor160_ln100_val.json",), floor_ln100_pilot),
    (("selection_floor160-level_val.json", "seed_gain24-rebuilt_val.json"),
     lambda val, stored: level_three_seeds(
         val, None, "; rejected: the mean gain target met in every seed (0.001), the max in two of three (seed 0: one "
                    "cough-detector record at 0.074), for 0.011 native and 0.012 probe, just outside the margins",
         stored)),
    (tuple(f"keep_floor_val_gain24-lowfloor_seed{k}.json" for k in range(3)), keep_floor_experiment),
    (("selection_gain24-lowfloor-shift_val.json", "selection_gain24-lowfloor-shift_test.json",
      "seed_gain24-rebuilt_val.json"),
     lambda val, test, stored: lowfloor_shift_three_seeds(
         val, test, "; kept: the gain target met in full in every seed on both splits (largest max shift 0.011 val, "
                    "0.022 test), ranking inside the margins; int8 decisions 0 differ (onnxruntime and TFLite); the "
                    "default since 2026-12-05", stored)),
    (("selection_gain24-lowfloor-shift-gated_val.json", "selection_gain24-lowfloor-shift-gated_test.json",
      "selection_gain24-lowfloor-shift_val.json"),
     lambda val, test, stored: on_shipped_three_seeds(
         "gain24-lowfloor-shift-gated", val, test,
         "; rejected: the native mean does not move on val (crackles, its purpose, falls in every seed), "
         "and on test native under noise falls 0.015", stored)),
    (("selection_gain24-lowfloor-shift-phone_val.json", "cough_channels_gain24-lowfloor-shift-phone_val.json"),
     lambda val, channels: phone_three_seeds(
         val, channels, status="; rejected: under the phone channels the candidate flags 11 phone non-cough val "
                               "recordings against the rebuilt shipped recipe's 10 (it had to fall to 7), and its "
                               "native mean falls 0.012; the band-limit drop of cough falls, of wheezes rises")),
    (("selection_gain24-lowfloor-shift-f4k_val.json", "selection_gain24-lowfloor-shift_val.json"),
     lambda val, stored: on_shipped_three_seeds(
         "gain24-lowfloor-shift-f4k", val, None,
         "; rejected: native mean +0.001 (heart does not move, cough falls 0.008 without its 4-8 kHz band, "
         "crackles +0.017); band-limit drops smaller", stored)),
    (("selection_gain24-lowfloor-shift-long_val.json", "selection_gain24-lowfloor-shift-long_test.json",
      "selection_gain24-lowfloor-shift_val.json"),
     lambda val, test, stored: on_shipped_three_seeds(
         "gain24-lowfloor-shift-long", val, test,
         "; rejected: ranking up on both splits (native mean +0.008 val, +0.009 test), but seed 0 moves one "
         "heart record's probability 0.068 under every gain change (the target: 0.05)", stored)),
    (("selection_gain24-lowfloor-shift-long-fresh_val.json", "selection_gain24-lowfloor-shift-long-fresh_test.json"),
     lambda val, test: fresh_three_seeds(
         "gain24_lowfloor_shift_long_fresh", val, test,
         "; rejected: val gains again (+0.008 native), test does not (+0.001 native, probe -0.020); heart "
         "up in every seed, the lung label sets swing by seed")),
    (("selection_gain24-lowfloor-shift-label_val.json", "selection_gain24-lowfloor-shift-label_test.json"),
     lambda val, test: fresh_three_seeds(
         "gain24_lowfloor_shift_label", val, test,
         "; adopted: heart native up 0.037-0.056 in every test seed (worst database 0.773-0.794 against "
         "0.567-0.731, within-database 0.773-0.811 against 0.716-0.749); crackles -0.018, wheezes -0.003 on "
         "test seed means; the default since 2026-12-06 (9)")),
    (("selection_gain24-lowfloor-shift-label-hkd_val.json", "selection_gain24-lowfloor-shift-label-hkd_test.json"),
     lambda val, test: fresh_three_seeds(
         "gain24_lowfloor_shift_label_hkd", val, test,
         "; rejected: val passes at the edge (crackles +0.029 in every seed), test fails on wheezes' band-limit drop "
         "(clean wheezes +0.056, crackles -0.017): the lung sets swap sign between splits")),
    (("selection_gain24-lowfloor-shift-label-slph-fresh_val.json",
      "selection_gain24-lowfloor-shift-label-slph-fresh_test.json"),
     lambda val, test: fresh_three_seeds(
         "gain24_lowfloor_shift_label_slph_fresh", val, test,
         "; adopted: heart's band-limit drop 0.003 vs 0.017 (val), 0.012 vs 0.042 (test), clean heart -0.006 to "
         "-0.008; the shipping checks passed; the default since 2026-12-06 (12)")),
    (("selection_gain24-lowfloor-shift-label-slph_val.json",),
     lambda val: fresh_three_seeds(
         "gain24_lowfloor_shift_label_slph", val, None,
         "; rejected: heart's band-limit drop falls 0.024 -> 0.005 again, but crackles' rises 0.027 -> 0.056 with no "
         "lung crop low-passed")),
    (("selection_gain24-lowfloor-shift-label-slp_val.json",),
     lambda val: fresh_three_seeds(
         "gain24_lowfloor_shift_label_slp", val, None,
         "; rejected: heart's band-limit drop falls 0.024 -> 0.005 (clean heart unchanged), crackles' rises 0.027 -> "
         "0.044; the mean falls 0.003, not 0.01")),
    (("selection_gain24-lowfloor-shift-label1_val.json",),
     lambda val: fresh_three_seeds(
         "gain24_lowfloor_shift_label1", val, None,
         "; rejected: heart native up again (0.885 against 0.864) but the crackles gain on clean audio is gone under "
         "a 1 kHz low-pass (band-limit drop 0.067 against 0.027); lung probes fall")),
    (("selection_gain24-lowfloor-shift-ema_val.json",),
     lambda val: fresh_three_seeds(
         "gain24_lowfloor_shift_ema", val, None,
         "; rejected: the average is the last step to within 0.005 AUROC on every task and seed (the "
         "cosine schedule has all but stopped the weights by then)")),
    (("selection_gain24-lowfloor-shift-kdens_val.json", "selection_gain24-lowfloor-shift_val.json"),
     lambda val, stored: on_shipped_three_seeds(
         "gain24-lowfloor-shift-kdens", val, None,
         "; rejected: on the level-blind recipe the ensemble adds 0.002 native (0.009 on the previous "
         "recipe); crackles probe +0.039", stored)),
    (("selection_gain24-lowfloor-r130_val.json", "seed_gain24-rebuilt_val.json"),
     lambda val, stored: lowfloor_three_seeds(
         val, None, "; not kept: the gain target met in full in every seed (largest max shift 0.007), the native "
                    "margin met, the probe margin missed by 0.003", stored, variant="r130")),
    (("selection_gain24-lowfloor-kf_val.json", "seed_gain24-rebuilt_val.json"),
     lambda val, stored: lowfloor_three_seeds(
         val, None, "; not kept: every check passes but the max gain shift of seed 0, 0.056 on one dog-bark clip "
                    "(cough detector at -24 dB)", stored, variant="kf")),
    (("selection_gain24-lowfloor_val.json", "seed_gain24-rebuilt_val.json"),
     lambda val, stored: lowfloor_three_seeds(
         val, None, "; not kept: ranking inside the margins and the mean gain target met, but the max shift of the "
                    "cough label sets (0.051-0.104) lives in ESC-10 clips with digital silence, which the shift moves",
         stored)),
    (("selection_gain24-lowfloor-shift-sphone_val.json", "cough_channels_gain24-lowfloor-shift-sphone_val.json"),
     lambda val, channels: phone_three_seeds(
         val, channels, status="; rejected: the pilot's gain did not hold over three seeds (lower operating points "
                               "find 110 coughs against 101 through the phone, but flag 15 phone non-cough "
                               "recordings against 10); native mean falls 0.012",
         name="gain24-lowfloor-shift-sphone")),
    (("pilot_gain24-sphone_val.json", "pilot_channels_gain24-sphone_val.json"), student_phone_pilot),
    (("pilot_gain24-kdpoolcat_val.json",), pool_side_by_side_pilot),
    (("prompts_val_current.json", "prompts_val_negated-findings.json"), negated_prompts),
    (("operating_point_val.json", "operating_point_test.json"), operating_point_rule),
    (("crackle_fine_time.json",), crackle_fine_time),
    (("cough_events.json",), cough_split),
    (("calibration.json",), calibration),
    (("refit_calibration.json",), refit_zero_shot),
]


def render() -> str:
    lines = ["# Levers for the robust default: what moved what", "",
             "Generated by `python -m acula.benchmarks.ablation` from the results files named in the last column "
             "(each written by its own command; see that file's header).  AUROC intervals are 95 % patient "
             "bootstraps; 'probe mean' and 'native mean' average cough, heart_abnormal, crackles and wheezes.", "",
             "| lever | outcome | figures | source |", "|---|---|---|---|"]
    for files, fn in LEVERS:
        data = [_load(f) for f in files]
        if any(d is None for d in data):
            missing = ", ".join(f for f, d in zip(files, data, strict=True) if d is None)
            lines.append(f"| {files[0].removesuffix('.json').replace('_', ' ')} | not run here | - | {missing} "
                         "missing |")
            continue
        lines += fn(*data)
    lines += int8_agreement()
    lines += ["", "Not tried yet (each needs an alignment and / or a distillation, 20-45 min of CPU; judged now on two "
              "seeds each): codec and EQ augmentation widened in both stages (band limits: gain24-bw; real backgrounds:"
              " gain24-bg, gain24-bgmild, gain24-bgdenoise, gain24-bgsteady, gain24-bgnonlung; a codec's noise floor "
              "in distillation only: gain24-kdcodec); the codec's noise floor with the teachers aligned under it, on "
              "three seeds (one-seed pilot: gain24-codec2); the -160 dB front end with its normalisation refitted, so "
              "its clean ranking comes back under the level shift (floor160-level, three seeds, met the mean gain "
              "target and missed the ranking margins by 0.001-0.002); "
              "per-label-set or softmax attention pooling over time (mean + max summed: gain24-kdpool; side "
              "by side, one-seed pilot: gain24-kdpoolcat; a learned sigmoid gate per step: "
              "gain24-lowfloor-shift-gated; a softmax converts to float ops outside the MCU kit); "
              "real backgrounds in "
              "distillation only with the teacher hearing them too; the student-only level change with the teacher "
              "aligned under it (four students from three starting points lost zero-shot wheezes to it on val); "
              "quantisation-aware distillation (five candidates failed the int8 decision check, gain24-bw and "
              "gain24-bgmild among them); a finer hop or a fine-time branch for crackles; the supervised control's "
              "heads at another weight or as the only lung target (at 0.5 beside the labels, gain24-lowfloor-shift-"
              "label-hkd, the lung sets swapped sign between val and test); a KD ensemble of four or more teachers "
              "(three, gain24-kd3, did not beat two).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "ablation.md", help="where to write the table")
    args = parser.parse_args(argv)
    text = render()
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
