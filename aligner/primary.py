"""The primary evaluation: one protocol for every system, with paired differences, worst groups and the
invariance suite as a dimension of the table.

    python -m acula.aligner.primary --corpus runs/corpus --out benchmarks/results --name primary \\
        --peers mfcc yamnet mn04 --run "(iii) CKA+InfoNCE+mask=runs/align-cka-nce-mask-cpu" \\
        --run "supervised control=runs/align-supervised-cpu" --bundle "student int8 ONNX=default" \\
        --transforms all --invariance-systems "student int8 ONNX" YAMNet "mn04 AudioSet"

Protocol (``aligner.protocol`` holds every statistic):

* Probe: standardised logistic regression fit on the *training split* (other participants; C chosen there
  by grouped inner CV), scoring the val + test records.  95 % intervals by patient / participant bootstrap.
* Native: a system's own score (zero-shot, supervised heads, YAMNet's classes, the SDK's probabilities).
* Two systems are compared by one paired bootstrap of their AUROC difference on the same resampled groups.
* Heart: per database, the worst database, leave-one-database-out probes, the database-prior baseline
  (a score that only knows each database's training abnormal rate) and scores standardised within database.
* Lung: per device and leave-one-device-out; recording-level any crackles / wheezes and COPD; cycle scores
  standardised within each recording.
* Frozen encoders (never saw a label): nested grouped CV over every patient as well.
* Invariance: every transform of ``aligner.invariance`` applied to the scored records only; the probe fit on
  clean training records scores them; AUROC, mean / max probability shift per record against the clean
  record, and how many records lose their score.

Per-record outputs are cached per system and transform under ``--cache`` so reruns only score what changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from acula.aligner import protocol as P
from acula.aligner.corpus import Corpus, load_corpus, row_field
from acula.aligner.primary_report import ci_cell, to_markdown
from acula.aligner.protocol import SCORED
from acula.aligner.system_cache import fingerprint_of, run_system
from acula.aligner.systems import SystemOutput

__all__ = ["SCORED", "TaskData", "fingerprint_of", "invariance_row", "main", "recording_of", "run_system",
           "score_task", "task_table", "to_markdown"]


def task_table() -> list[dict[str, Any]]:
    return json.loads(resources.files("acula.aligner").joinpath("primary_tasks.json").read_text())["tasks"]


def recording_of(row: dict[str, Any]) -> str:
    """An ICBHI cycle's recording (its record id without the cycle); any other record is its own recording."""
    rid = row["record_id"]
    return rid.rsplit("/", 1)[0] if row["dataset"] == "icbhi" else rid


# ------------------------------------------------------------------------------------------------ one task


class TaskData:
    """A task's units (records, or ICBHI recordings) with labels, groups, splits and per-unit metadata."""

    def __init__(self, corpus: Corpus, task: dict[str, Any], scored: Sequence[str] = SCORED,
                 scorable: dict[int, bool] | None = None) -> None:
        self.task = task
        rows = [(i, r) for i, r in enumerate(corpus.rows)
                if r["dataset"] in task["datasets"] and row_field(r, task["field"]) is not None]
        self.record_idx = [i for i, _ in rows]
        unit = task.get("unit", "record")
        keys = [recording_of(r) if unit == "recording" else r["record_id"] for _, r in rows]
        self.units = list(dict.fromkeys(keys))
        pos = {u: k for k, u in enumerate(self.units)}
        self.unit_of = np.asarray([pos[k] for k in keys])
        first = {}
        for (_, r), k in zip(rows, keys, strict=True):
            first.setdefault(k, r)
        labels = np.zeros(len(self.units), int)
        for (_, r), k in zip(rows, keys, strict=True):
            labels[pos[k]] |= int(str(row_field(r, task["field"])) in task["positive"])
        self.y = labels
        self.groups = np.asarray([first[u]["group_id"] for u in self.units])
        self.split = np.asarray([first[u]["split"] for u in self.units])
        self.by = (np.asarray([str(row_field(first[u], task["by"])) for u in self.units]) if task.get("by") else None)
        self.recording = np.asarray([recording_of(first[u]) for u in self.units])
        # a unit is valid when the SDK scores one of its records at the record's own source rate (``scorable``:
        # record index -> whether a window passed the gate, see scorable_at_source; else the corpus's quality
        # of the whole record at its source rate).  The transforms work on 16 kHz copies, where resampling rings
        # across a source recording's flat tops and hides its clipping; a low-pass then removes the ringing
        # and the gate finds the clipping again.  Such a record was never a valid recording to lose.
        valid = np.zeros(len(self.units), bool)
        for (i, r), k in zip(rows, keys, strict=True):
            ok = scorable.get(i) if scorable is not None else None
            valid[pos[k]] |= (not r.get("audio", {}).get("clipped", False)) if ok is None else ok
        self.source_valid = valid
        # a unit clipped at its source by the corpus's whole-record check at the source rate (``audio.clipped``): a
        # gain change hands the SDK another signal (its clipped copy at 0 dB, an unclipped one below), so the gain
        # target is also read without these units (``native_shift_*_unclipped``)
        clipped = np.zeros(len(self.units), bool)
        for (_, r), k in zip(rows, keys, strict=True):
            clipped[pos[k]] |= bool(r.get("audio", {}).get("clipped", False))
        self.source_clipped = clipped
        self.train = self.split == "train"
        self.scored = np.isin(self.split, list(scored))

    def pool(self, outputs: dict[int, SystemOutput], question: str | None, attr: str = "native"
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(features per unit (mean over its records), native score per unit or None, scored flag per unit)."""
        feats = np.zeros((len(self.units), outputs[self.record_idx[0]].features.size), np.float64)
        count = np.zeros(len(self.units))
        nat = np.full(len(self.units), np.nan)
        ok = np.zeros(len(self.units), bool)
        how = self.task.get("pool", "max")
        for i, u in zip(self.record_idx, self.unit_of, strict=True):
            o = outputs[i]
            feats[u] += o.features
            count[u] += 1
            v = getattr(o, attr).get(question) if question else None
            if v is not None and o.scored:
                ok[u] = True
                nat[u] = v if np.isnan(nat[u]) else (max(nat[u], v) if how == "max" else nat[u] + v)
        feats /= np.maximum(count, 1)[:, None]
        if how == "mean":
            n_ok = np.zeros(len(self.units))
            for i, u in zip(self.record_idx, self.unit_of, strict=True):
                n_ok[u] += outputs[i].scored and question in getattr(outputs[i], attr)
            nat = nat / np.maximum(n_ok, 1)
        has_native = question is not None and bool(ok.any())
        if not has_native:
            ok = np.asarray([all(outputs[i].scored for i in np.asarray(self.record_idx)[self.unit_of == u])
                             for u in range(len(self.units))])
        return feats, (nat if has_native else None), ok


def scorable_at_source(corpus: Corpus, indices: Sequence[int], bundle: str = "default",
                       progress: bool = True) -> dict[int, bool]:
    """Record index -> whether the SDK (``bundle``, int8 ONNX) scores a window of the record fed at its own
    source rate: the validity of a recording for the invariance target ("no valid recording loses its score")."""
    from acula.sdk.audio import AudioError, load_audio
    from acula.sdk.model import load
    from tqdm import tqdm

    model = load(bundle, "onnxruntime", "int8")
    out = {}
    for i in tqdm(indices, desc="scorable at the source rate", unit="rec", disable=not progress):
        r = corpus.records[i]
        try:
            clip = load_audio(corpus.audio_path(i), None, r.start_s, r.end_s)
            stream = model.stream()
            wins = stream.accept(clip.samples, clip.sample_rate_hz) + stream.flush()
        except AudioError:
            out[i] = False
            continue
        out[i] = any(not w.problems for w in wins)
    return out


def _ci_row(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> dict[str, Any]:
    lo, hi = P.group_bootstrap(y, s, g)
    return {"auroc": P.auroc(y, s), "ci95": [lo, hi], "n": int(len(y)), "n_pos": int(y.sum())}


def score_task(td: TaskData, feats: np.ndarray, native: np.ndarray | None, frozen: bool) -> dict[str, Any]:
    """Every figure of one task for one system on clean records; returns the row and the fitted probe."""
    t, m = td.train, td.scored
    y, g = td.y, td.groups
    probe = P.fit_probe(feats[t], y[t], g[t])
    s_probe = probe.decision_function(feats[m])
    out: dict[str, Any] = {"probe": _ci_row(y[m], s_probe, g[m]), "probe_c": probe.chosen_c_,
                           "_probe": probe, "_s_probe": s_probe}
    if native is not None:
        keep = ~np.isnan(native[m])
        out["native"] = _ci_row(y[m][keep], native[m][keep], g[m][keep])
        out["native"]["n_lost"] = int((~keep).sum())
        out["_s_native"] = native[m]
    if td.by is not None:
        by = td.by[m]
        out["probe_by"] = P.per_group_auroc(y[m], s_probe, by)
        if native is not None:
            keep = ~np.isnan(native[m])
            out["native_by"] = P.per_group_auroc(y[m][keep], native[m][keep], by[keep])
            out["native_within_by"] = P.auroc(y[m][keep], P.within_group_standardise(native[m][keep], by[keep]))
        out["probe_within_by"] = P.auroc(y[m], P.within_group_standardise(s_probe, by))
        # leave one group out: the probe never saw a training record of the group it scores
        logo = {}
        for v in sorted(set(by)):
            tr = t & (td.by != v)
            te = m & (td.by == v)
            if len(set(y[tr])) < 2 or len(set(y[te])) < 2:
                continue
            s = P.fit_probe(feats[tr], y[tr], g[tr]).decision_function(feats[te])
            logo[v] = {"n": int(te.sum()), "n_pos": int(y[te].sum()), "auroc": P.auroc(y[te], s)}
        out["probe_logo"] = logo
        if td.task.get("prior"):
            prior = P.prior_baseline(td.by[t], y[t], by)
            out["prior"] = _ci_row(y[m], prior, g[m])
    if td.task.get("within"):
        rec = td.recording[m]
        out["probe_within_recording"] = P.auroc(y[m], P.within_group_standardise(s_probe, rec))
        if native is not None:
            keep = ~np.isnan(native[m])
            out["native_within_recording"] = P.auroc(y[m][keep],
                                                     P.within_group_standardise(native[m][keep], rec[keep]))
    if frozen:
        s = P.nested_group_cv(feats, y, g)
        ok = ~np.isnan(s)
        out["nested_cv"] = _ci_row(y[ok], s[ok], g[ok])
    return out


def invariance_row(td: TaskData, probe: Any, clean: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
                   moved: tuple[np.ndarray, np.ndarray | None, np.ndarray | None]) -> dict[str, Any]:
    """AUROC and probability shift of one transform against the clean records.  Each of ``clean`` / ``moved``
    is (features, native scores, user-facing probabilities) per unit; the shift is measured on the system's own
    probability when it has one (SDK, supervised heads, YAMNet), else on the clean-trained probe's."""
    m = td.scored
    y = td.y[m]
    p0 = probe.predict_proba(clean[0][m])[:, 1]
    p1 = probe.predict_proba(moved[0][m])[:, 1]
    d = np.abs(p1 - p0)
    row: dict[str, Any] = {"probe_auroc": P.auroc(y, probe.decision_function(moved[0][m])),
                           "probe_shift_mean": float(d.mean()), "probe_shift_max": float(d.max())}
    if clean[1] is not None and moved[1] is not None:
        n0, n1 = clean[1][m], moved[1][m]
        keep = ~np.isnan(n1)
        row["native_auroc"] = P.auroc(y[keep], n1[keep])
        lost = ~np.isnan(n0) & np.isnan(n1)
        # valid records that lost their score (the invariance target), and source-clipped ones that did (their
        # clipping, hidden by resampling in the clean copy, shows again once a transform smooths it)
        row["n_lost"] = int((lost & td.source_valid[m]).sum())
        row["n_lost_source_clipped"] = int((lost & ~td.source_valid[m]).sum())
        if clean[2] is not None and moved[2] is not None:
            q0, q1 = clean[2][m], moved[2][m]
            both = ~np.isnan(q0) & ~np.isnan(q1)
            dn = np.abs(q1[both] - q0[both])
            row["native_shift_mean"] = float(dn.mean()) if dn.size else float("nan")
            row["native_shift_max"] = float(dn.max()) if dn.size else float("nan")
            unclipped = ~td.source_clipped[m][both]
            du = dn[unclipped]
            row["native_shift_mean_unclipped"] = float(du.mean()) if du.size else float("nan")
            row["native_shift_max_unclipped"] = float(du.max()) if du.size else float("nan")
            # the units left out of the unclipped figures, with their shifts (named, so none is silently lost)
            units = np.asarray(td.units)[m][both]
            row["native_shift_source_clipped"] = {str(u): round(float(v), 4)
                                                  for u, v in zip(units[~unclipped], dn[~unclipped], strict=True)}
    return row


# ------------------------------------------------------------------------------------------------ main


def build_systems(args: argparse.Namespace) -> list[Any]:
    from acula.aligner import systems as S

    weights = Path(args.weights)
    out: list[Any] = []
    if "mfcc" in args.peers:
        out.append(S.MFCCSystem())
    if "yamnet" in args.peers and (weights / "yamnet.tflite").is_file():
        out.append(S.YAMNetSystem(str(weights / "yamnet.tflite")))
    if "mn04" in args.peers:
        out.append(S.EncoderSystem("mn04 AudioSet", None, str(weights)))
    teacher = None
    prompt_tasks = {"cough": "cough", "heart_abnormal": "heart", "crackles": "crackles", "wheezes": "wheezes"}

    def prompts(enc: Any) -> dict[str, dict[str, np.ndarray]]:
        nonlocal teacher
        from acula.aligner.evaluate import build_prompt_bank
        from acula.aligner.teacher import TextTeacher

        teacher = teacher or TextTeacher()
        return {q: {k: enc.text(teacher.encode(v)) for k, v in build_prompt_bank(name).items()}
                for q, name in prompt_tasks.items()}

    for spec in args.run:
        name, _, path = spec.partition("=")
        out.append(S.EncoderSystem(name, path, prompts=prompts))
    for spec in args.bundle:
        name, _, rest = spec.partition("=")
        path, backend, precision = (rest.split(":") + ["onnxruntime", "int8"])[:3]
        out.append(S.BundleSystem(name, path, backend, precision))
    return out


def main(argv: Sequence[str] | None = None, command: str = "python -m acula.aligner.primary") -> int:
    """``command``: what the results files name as the command that ran, before ``argv`` (a script that calls
    this in a process it has changed, e.g. ``scripts/level_floor_experiment.py``, names itself)."""
    from acula.aligner.train import default_weights_dir

    parser = argparse.ArgumentParser(prog="python -m acula.aligner.primary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="corpus directory from 'acula corpus build'")
    parser.add_argument("--peers", nargs="*", default=["mfcc", "yamnet", "mn04"], choices=["mfcc", "yamnet", "mn04"],
                        help="peer systems (MFCC statistics, YAMNet TFLite, the unaligned AudioSet mn04)")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of an acula align run")
    parser.add_argument("--bundle", action="append", default=[], help="NAME=BUNDLE[:backend:precision]")
    parser.add_argument("--weights", default=default_weights_dir(), help="weights folder (mn04, YAMNet)")
    parser.add_argument("--transforms", nargs="*", default=[], help="invariance transforms (names or 'all')")
    parser.add_argument("--invariance-systems", nargs="*", default=[],
                        help="systems scored under the transforms: NAME (every --transforms) or NAME=t1,t2 (a subset)")
    parser.add_argument("--scored", nargs="*", default=list(SCORED), choices=["val", "test"],
                        help="the splits that are scored (choices are made on val alone, then test is scored)")
    parser.add_argument("--baseline", default="mn04 AudioSet", help="system every other is paired against")
    parser.add_argument("--control", default="", help="the supervised control's name (paired against too)")
    parser.add_argument("--cache", default="runs/eval_cache", help="per-record output cache ('' for none)")
    parser.add_argument("--data", default=None, help="data root for the ESC-10 noise bank (default: the corpus')")
    parser.add_argument("--out", default="benchmarks/results", help="folder for NAME.md and NAME.json")
    parser.add_argument("--name", default="primary", help="file stem of the results")
    parser.add_argument("--threads", type=int, default=2, help="torch / BLAS threads")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    corpus = load_corpus(args.corpus)
    tasks = task_table()
    datas = {t["name"]: TaskData(corpus, t, args.scored) for t in tasks}
    needed = sorted({i for d in datas.values() for i in d.record_idx})
    scored_idx = sorted({i for d in datas.values() if d.task.get("invariance") for i in d.record_idx
                         if corpus.rows[i]["split"] in args.scored})
    if args.invariance_systems:  # which scored records are valid recordings: the SDK scores them at their own rate
        scorable = scorable_at_source(corpus, scored_idx)
        datas = {t["name"]: TaskData(corpus, t, args.scored, scorable) for t in tasks}
    systems = build_systems(args)
    spec = {s.partition("=")[0]: s.partition("=")[2] for s in args.run + args.bundle}
    cache = Path(args.cache) if args.cache else None
    transforms = args.transforms
    if transforms == ["all"]:
        from acula.aligner.invariance import TRANSFORMS

        transforms = list(TRANSFORMS)
    noise = None
    if any(t.startswith("noise") for t in transforms):
        from acula.aligner.invariance import NoiseBank

        noise = NoiseBank.from_esc10(str(Path(args.data or corpus.data_root) / "esc10"))
    rows: dict[str, dict[str, Any]] = {}
    invariance: dict[str, dict[str, dict[str, Any]]] = {}
    inv_sets: dict[str, list[str]] = {}
    for entry in args.invariance_systems:
        name, _, subset = entry.partition("=")
        inv_sets[name] = [t for t in subset.split(",") if t] if subset else transforms
        unknown = set(inv_sets[name]) - set(transforms)
        if unknown:
            parser.error(f"--invariance-systems {name}: {sorted(unknown)} are not among --transforms")
    for system in systems:
        fp = fingerprint_of(system, spec)
        clean = run_system(system, corpus, needed, "none", cache, fp)
        rows[system.name] = {}
        probes = {}
        for t in tasks:
            td = datas[t["name"]]
            feats, native, _ = td.pool(clean, t.get("native"))
            r = score_task(td, feats, native, system.kind == "frozen")
            probes[t["name"]] = (r.pop("_probe"), (feats, native, None))
            rows[system.name][t["name"]] = r
            print(f"{system.name:32s} {t['name']:20s} probe {ci_cell(r['probe'])}  "
                  f"native {ci_cell(r.get('native'))}", file=sys.stderr)
        if inv_sets.get(system.name):
            invariance[system.name] = {t["name"]: {} for t in tasks if t.get("invariance")}
            for name in inv_sets[system.name]:
                from acula.aligner.invariance import TRANSFORMS

                covered = TRANSFORMS[name].datasets
                idx = [i for i in scored_idx if covered is None or corpus.rows[i]["dataset"] in covered]
                moved_out = run_system(system, corpus, idx, name, cache, fp, noise)
                merged = {**clean, **moved_out}
                for t in tasks:
                    if not t.get("invariance") or (covered is not None and not set(t["datasets"]) <= set(covered)):
                        continue
                    td = datas[t["name"]]
                    probe, (f0, n0, _) = probes[t["name"]]
                    f1, n1, _ = td.pool(merged, t.get("native"))
                    q0 = td.pool(clean, t.get("native"), "probability")[1]
                    q1 = td.pool(merged, t.get("native"), "probability")[1]
                    invariance[system.name][t["name"]][name] = invariance_row(td, probe, (f0, n0, q0), (f1, n1, q1))
    paired = []
    names = [s.name for s in systems]
    for ref in [args.baseline, args.control]:
        if ref not in rows:
            continue
        for a in names:
            if a == ref:
                continue
            for score in ("probe", "native"):
                key = "_s_probe" if score == "probe" else "_s_native"
                cells = {}
                for t in tasks:
                    ra, rb = rows[a][t["name"]], rows[ref][t["name"]]
                    rb_key = key if key in rb else "_s_probe"
                    if key not in ra or (score == "native" and ref != args.control):
                        continue
                    td = datas[t["name"]]
                    sa, sb = ra[key], rb[rb_key]
                    ok = ~np.isnan(sa) & ~np.isnan(sb)
                    cells[t["name"]] = P.paired_bootstrap(td.y[td.scored][ok], sa[ok], sb[ok],
                                                          td.groups[td.scored][ok])
                if cells:
                    paired.append({"a": a, "b": ref, "score": score if score == "probe" else "native vs control",
                                   "tasks": cells})
    for s in rows.values():
        for r in s.values():
            for k in [k for k in r if k.startswith("_")]:
                r.pop(k)
    res = {"command": f"{command} " + " ".join(argv if argv is not None else sys.argv[1:]),
           "scored": list(args.scored), "systems": names, "tasks": [t["name"] for t in tasks], "rows": rows,
           "paired": paired,
           "invariance": invariance, "wall_s": time.perf_counter() - t0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(res)
    (out / f"{args.name}.md").write_text(md)
    (out / f"{args.name}.json").write_text(json.dumps(res, indent=1, default=float))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
