"""Evaluation harness: one function over a task table (``tasks.json``), no per-data-set code.

    python -m acula.aligner.evaluate --corpus runs/corpus --run aligned=runs/align-default --peers mfcc yamnet mn04

Population: the corpus records in ``--splits`` (default val + test), which the
aligner never trained on.  Linear probe (``aligner.probe``): standardised features,
logistic regression, out-of-fold AUROC with group-aware folds (5 seeds, mean and
std), or leave-one-value-out (PhysioNet databases; mean and std over held-out values).
Its C is chosen from ``PROBE_C_GRID`` on records that are never scored (``choose_c``).
With ``--probe-train-splits train`` a second probe table is added: the same
records scored the same way, but every fold's probe is also fit on the task's
training-split records (other participants; the aligner's own training records,
with the labels its reports were written from), as in the usual
train-on-train-split, score-on-held-out protocol.  ``--no-probe``: zero-shot only.
Zero-shot: cosine of the audio joint embedding with the projected prompt bank,
positive minus negative prompts; the prompts are labels of ``sdk/label_sets.json``
that each task names.  Writes markdown and JSON to --out (``aligner.eval_report``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from acula.aligner.corpus import Corpus, load_corpus, row_field
from acula.aligner.data import FeatureBank, windows
from acula.aligner.eval_report import plot_rocs, to_markdown
from acula.aligner.probe import PROBE_C_GRID, ProbeResult, bootstrap_ci, choose_c, probe_auroc
from acula.aligner.protocol import auroc, one_se_choice
from acula.sdk.label_sets import descriptions, templates
from acula.sdk.scoring import clip_embedding
from tqdm import tqdm

__all__ = ["PROBE_C_GRID", "AlignedEncoder", "ProbeResult", "build_prompt_bank", "bundle_system", "choose_c",
           "evaluate", "main", "one_se_choice", "probe_auroc", "spread", "task_table", "to_markdown",
           "zero_shot_scores"]

MAX_WINDOWS = 24
PEERS = ("mfcc", "yamnet", "mn04")

#: a system: record index -> (features for the probe, what its zero-shot function takes)
System = Callable[[int], tuple[np.ndarray, Any]]
#: a system's zero-shot rule: (second outputs of the scored records, task) -> scores, {variant: scores} or None
ZeroShot = Callable[[list[Any], dict[str, Any]], Any]


def spread(n: int, most: int = MAX_WINDOWS) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` windows, evenly spread from the first to the last, so a long
    recording is represented over its whole length (the same rule for teacher and bundle systems)."""
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).round().astype(int)


@lru_cache(maxsize=1)
def task_table() -> dict[str, Any]:
    return json.loads(resources.files("acula.aligner").joinpath("tasks.json").read_text())


def default_prompt_table() -> dict[str, Any]:
    """The task prompts laid out as a ``--prompts`` table, from the labels each task names in its label set:
    {"templates": [...], prompt set: {"positive": [description, ...], "negative": [...]}}."""
    sets = descriptions()
    out: dict[str, Any] = {"templates": templates()}
    for task in task_table()["tasks"]:
        zs = task["zero_shot"]
        labels = sets[zs["label_set"]]
        negative = zs.get("negative_descriptions") or [d for lab in zs["negative"] for d in labels[lab]]
        out[task["prompts"]] = {"positive": list(labels[zs["positive"]]), "negative": list(negative)}
    return out


def build_prompt_bank(name: str, table: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Label names x templates -> {"positive": [...], "negative": [...]} (open_clip style).  ``table``: a
    prompt table laid out as ``default_prompt_table()`` (``--prompts FILE``); default that table."""
    table = default_prompt_table() if table is None else table
    return {side: [t.format(label) for label in table[name][side] for t in table["templates"]]
            for side in ("positive", "negative")}


def task_rows(corpus: Corpus, task: dict[str, Any], splits: Sequence[str]) -> tuple[list[int], np.ndarray]:
    idx, labels = [], []
    for i, row in enumerate(corpus.rows):
        if row["dataset"] in task["datasets"] and row["split"] in splits:
            value = row_field(row, task["field"])
            idx.append(i)
            labels.append(str(value) in task["positive"])
    return idx, np.asarray(labels, dtype=int)


class AlignedEncoder:
    """Pooled features and joint embeddings from an ``acula align`` checkpoint (or the unaligned mn04)."""

    def __init__(self, run: str | None, weights_dir: str | None = None, pooling: str = "freq") -> None:
        import dataclasses

        from acula.aligner.checkpoint import load_checkpoint
        from acula.aligner.config import AlignConfig
        from acula.aligner.model import AcuLaModel
        from acula.aligner.train import default_weights_dir

        if run is None:  # the AudioSet encoder without alignment
            cfg = dataclasses.replace(AlignConfig(), pooling=pooling)
            self.model = AcuLaModel(cfg, 384, weights_dir=weights_dir or default_weights_dir())
            self.aligned = False
        else:
            state, meta = load_checkpoint(run)
            cfg = AlignConfig.from_dict(meta["align_config"])
            self.model = AcuLaModel(dataclasses.replace(cfg, encoder_weights=None), meta["text_dim"])
            self.model.load_state_dict(state)
            self.aligned = True
        self.model.eval()
        self.cfg = cfg

    @torch.no_grad()
    def __call__(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = windows(feats, self.cfg.crop_frames, self.cfg.crop_frames // 2)
        w = w[spread(w.shape[0])]
        pooled = self.model.pooled(torch.from_numpy(np.ascontiguousarray(w)))
        joint = torch.nn.functional.normalize(self.model.audio_proj(pooled), dim=-1).mean(0)
        return pooled.mean(0).numpy(), joint.numpy()

    @torch.no_grad()
    def text(self, embeddings: np.ndarray) -> np.ndarray:
        z = self.model.text_proj(torch.from_numpy(embeddings))
        return torch.nn.functional.normalize(z, dim=-1).numpy()


def zero_shot_scores(joint: np.ndarray, prompts: dict[str, np.ndarray]) -> np.ndarray:
    joint = np.stack(joint)
    j = joint / np.linalg.norm(joint, axis=1, keepdims=True)
    return (j @ prompts["positive"].T).mean(1) - (j @ prompts["negative"].T).mean(1)


def _probe_fields(key: str, r: ProbeResult, **after_ci95: Any) -> dict[str, Any]:
    """A probe's keys of a result row, in the JSON's order (``after_ci95``: the training records' count)."""
    out: dict[str, Any] = {f"{key}_auroc": r.auroc, f"{key}_std": r.std, f"{key}_ci95": list(r.ci95),
                           **after_ci95, f"{key}_c": list(r.c)}
    if r.folds:
        out[f"{key}_folds"] = list(r.folds)
    return out


def _zero_shot_fields(key: str, scores: Any, y: np.ndarray, groups: np.ndarray, split_of: np.ndarray,
                      splits: Sequence[str]) -> dict[str, Any]:
    sc = np.asarray(scores)
    out: dict[str, Any] = {f"{key}_auroc": auroc(y, sc), f"{key}_ci95": list(bootstrap_ci(y, sc, groups))}
    if len(splits) > 1:  # each scored split alone: a choice made on one split shows here
        masks = {sp: split_of == sp for sp in splits}
        out[f"{key}_by_split"] = {sp: auroc(y[m], sc[m]) for sp, m in masks.items() if len(set(y[m])) == 2}
    return out


def evaluate(corpus: Corpus, systems: dict[str, System], zero_shot: dict[str, ZeroShot], splits: Sequence[str],
             probe_train_splits: Sequence[str] = (), probe: bool = True) -> list[dict[str, Any]]:
    """Run every task for every system; ``zero_shot[name](second outputs, task) -> scores``.

    With ``probe_train_splits`` a second linear probe (``probe_train_*`` keys) is also fit on those splits'
    records in every fold; only the ``splits`` records are ever scored.  ``probe=False``: zero-shot only."""
    tasks = task_table()["tasks"]
    if set(splits) & set(probe_train_splits):
        raise ValueError(f"probe training splits {list(probe_train_splits)} overlap the scored splits {list(splits)}")
    train_splits = probe_train_splits if probe else ()
    needed = sorted({i for t in tasks for sp in (splits, train_splits) for i in task_rows(corpus, t, sp)[0]})
    results = []
    for name, fn in systems.items():
        t0 = time.perf_counter()
        cache = {i: fn(i) for i in tqdm(needed, desc=f"embedding ({name})", unit="clip")}
        embed_s = time.perf_counter() - t0
        for task in tasks:
            idx, y = task_rows(corpus, task, splits)
            groups = np.asarray([corpus.rows[i]["group_id"] for i in idx])
            split_of = np.asarray([corpus.rows[i]["split"] for i in idx])
            row: dict[str, Any] = {"system": name, "task": task["name"], "n": len(idx), "n_pos": int(y.sum()),
                                   "embed_s": embed_s}
            if probe:
                x = np.stack([cache[i][0] for i in idx])
                meta = [corpus.rows[i]["metadata"] for i in idx]
                if train_splits:
                    tidx, ty = task_rows(corpus, task, train_splits)
                    extra = (np.stack([cache[i][0] for i in tidx]), ty, [corpus.rows[i]["metadata"] for i in tidx],
                             np.asarray([corpus.rows[i]["group_id"] for i in tidx]))
                    if set(groups) & {corpus.rows[i]["group_id"] for i in tidx}:
                        raise ValueError(f"{task['name']}: a participant is in both the probe training and scored "
                                         "splits")
                    row.update(_probe_fields("probe_train", probe_auroc(x, y, groups, task["scheme"], meta, extra),
                                             probe_train_n=len(tidx), probe_train_splits=list(train_splits)))
                result = probe_auroc(x, y, groups, task["scheme"], meta)
                row.update(_probe_fields("probe", result))
            if name in zero_shot:
                scores = zero_shot[name]([cache[i][1] for i in idx], task)
                variants = scores if isinstance(scores, dict) else {"zero_shot": scores}
                for key, sc in variants.items():
                    if sc is not None:
                        row.update(_zero_shot_fields(key, sc, y, groups, split_of, splits))
            if probe:
                row["_roc"] = (result.y, result.scores)
            results.append(row)
    return results


def bundle_system(spec: str, corpus: Corpus, task_prompts: Callable[[dict[str, Any]], dict[str, np.ndarray]]
                  | None = None) -> tuple[str, Callable[[int], tuple[np.ndarray, Any]], Callable[[Any, Any], Any]]:
    """NAME=PATH[:backend:precision] -> (name, embedding fn, zero-shot fn) through the SDK only.

    Zero-shot: the SDK's label-set probability (``zero_shot_sdk``); with ``task_prompts`` (task -> projected
    prompt embeddings of the teacher the bundle was distilled from) also the teacher's own rule on the
    bundle's embeddings (``zero_shot``), so teacher and student are compared with identical scoring."""
    from acula.sdk.audio import load_audio
    from acula.sdk.model import load

    name, _, rest = spec.partition("=")
    path, backend, precision = (rest.split(":") + ["onnxruntime", "int8"])[:3]
    model = load(path, backend, precision)

    def embed(i: int) -> tuple[np.ndarray, Any]:
        r = corpus.records[i]
        clip = load_audio(corpus.audio_path(i), model.sample_rate_hz, r.start_s, r.end_s)
        stream = model.stream()  # flush() adds the tiled window of a clip shorter than one window
        windows = stream.accept(clip.samples, clip.sample_rate_hz) + stream.flush()
        windows = [windows[k] for k in spread(len(windows))]
        emb = np.stack([w.embedding for w in windows])
        clip_emb = clip_embedding(emb)
        logits = {k: np.mean([w.label_logits[k] for w in windows], 0) for k in model.label_sets}
        return clip_emb, (clip_emb, logits)

    def zero(outputs: list[tuple[np.ndarray, dict[str, np.ndarray]]], task: dict[str, Any]) -> dict[str, Any]:
        label_set, positive = task["zero_shot"]["label_set"], task["zero_shot"]["positive"]
        j = model.label_sets[label_set].index(positive)
        z = np.stack([lg[label_set] for _, lg in outputs])
        p = np.exp(z - z.max(1, keepdims=True))
        scores: dict[str, Any] = {"zero_shot_sdk": np.asarray(p[:, j] / p.sum(1))}
        if task_prompts is not None:
            scores["zero_shot"] = zero_shot_scores([e for e, _ in outputs], task_prompts(task))
        return scores

    return name, embed, zero


def _prompt_table(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    table = json.loads(Path(path).read_text())
    missing = sorted({t["prompts"] for t in task_table()["tasks"]} - set(table)) + (
        [] if "templates" in table else ["templates"])
    if missing:
        parser.error(f"{path} lacks prompt entries for {missing}")
    return {k: v for k, v in table.items() if not k.startswith("_")}


def _clip_samples(corpus: Corpus, i: int) -> np.ndarray:
    from acula.sdk.audio import load_audio

    r = corpus.records[i]
    return load_audio(corpus.audio_path(i), 16000, r.start_s, r.end_s).samples


def _yamnet_zero(scores: list[np.ndarray], task: dict[str, Any]) -> np.ndarray | None:
    from acula.sdk.yamnet import YAMNET_CLASSES

    names = task.get("yamnet_classes")
    return None if names is None else np.stack(scores)[:, [YAMNET_CLASSES[n] for n in names]].max(1)


def build_systems(args: argparse.Namespace, corpus: Corpus, bank: FeatureBank, weights: Path,
                  prompt_table: dict[str, Any] | None) -> tuple[dict[str, System], dict[str, ZeroShot]]:
    """The systems the command line names (bundles, peers, aligned runs), each with its zero-shot rule."""
    from acula.aligner.teacher import TextTeacher

    systems: dict[str, System] = {}
    zero: dict[str, ZeroShot] = {}
    teacher = TextTeacher() if args.run or args.prompt_run else None

    def prompts_of(enc: AlignedEncoder) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
        """task -> its prompt bank through the text teacher and ``enc``'s text projection."""
        def prompts(task: dict[str, Any]) -> dict[str, np.ndarray]:
            assert teacher is not None
            bank = build_prompt_bank(task["prompts"], prompt_table)
            return {k: enc.text(teacher.encode(v)) for k, v in bank.items()}
        return prompts

    task_prompts = prompts_of(AlignedEncoder(args.prompt_run)) if args.prompt_run else None
    for spec in args.bundle:
        name, embed_fn, zero_fn = bundle_system(spec, corpus, task_prompts)
        systems[name], zero[name] = embed_fn, zero_fn
    if "mfcc" in args.peers:
        from acula.aligner.peers import MFCCStats

        mfcc = MFCCStats()
        systems["MFCC stats"] = lambda i: (mfcc(_clip_samples(corpus, i)), None)
    if "yamnet" in args.peers and (weights / "yamnet.tflite").is_file():
        from acula.sdk.yamnet import YAMNet

        yam = YAMNet(weights / "yamnet.tflite")
        systems["YAMNet"] = lambda i: yam.run(_clip_samples(corpus, i))
        zero["YAMNet"] = _yamnet_zero
    if "mn04" in args.peers:
        mn = AlignedEncoder(None, str(weights))
        systems["mn04 AudioSet (unaligned)"] = lambda i: mn(bank.get(i))
    for spec in args.run:
        name, _, path = spec.partition("=")
        enc = AlignedEncoder(path)
        systems[name] = lambda i, enc=enc: enc(bank.get(i))
        prompts = prompts_of(enc)
        zero[name] = lambda joint, task, prompts=prompts: zero_shot_scores(joint, prompts(task))
    return systems, zero


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog="acula eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="corpus directory from 'acula corpus build'")
    parser.add_argument("--data", help="data root: build (once) a corpus under --work when --corpus is not given")
    parser.add_argument("--work", default="runs/eval", help="where --data builds its corpus")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR of an acula align run")
    parser.add_argument("--bundle", action="append", default=[],
                        help="NAME=BUNDLE[:backend:precision] evaluated through the SDK (default onnxruntime int8)")
    parser.add_argument("--prompt-run", help="acula align run whose text projection also scores the bundles' "
                        "zero-shot with the task prompts, the rule used for --run systems (retention tables)")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS),
                        help="peer systems evaluated beside the runs and bundles")
    parser.add_argument("--weights", default=None, help="weights folder (default $ACULA_WEIGHTS or ../shared/weights)")
    parser.add_argument("--splits", nargs="*", default=["val", "test"], help="the records that are scored")
    parser.add_argument("--probe-train-splits", nargs="*", default=[],
                        help="also report a linear probe fit on these splits' records too (e.g. train: the "
                        "aligner's training records) in every fold; they are never scored")
    parser.add_argument("--no-probe", action="store_true", help="zero-shot only: no linear probe (minutes faster)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for align_eval.md / .json")
    parser.add_argument("--name", default="align_eval", help="file stem of the results")
    parser.add_argument("--prompts", help="JSON prompt table used for zero-shot instead of the task table's labels "
                        "(e.g. configs/prompts/negated-findings.json, the table before negations were dropped)")
    return parser.parse_args(argv), parser


def main(argv: Sequence[str] | None = None) -> int:
    args, parser = parse_args(argv)
    prompt_table = _prompt_table(args.prompts, parser) if args.prompts else None
    torch.set_num_threads(args.threads)
    from acula.aligner.train import default_weights_dir

    if args.corpus is None:
        if args.data is None:
            parser.error("give --corpus DIR or --data DIR")
        from acula.aligner.corpus import build_corpus

        args.corpus = str(Path(args.work) / "corpus")
        if not (Path(args.corpus) / "manifest.jsonl").is_file():
            build_corpus(Path(args.data), Path(args.corpus))
    corpus = load_corpus(args.corpus)
    bank = FeatureBank.for_corpus(corpus)
    weights = Path(args.weights or default_weights_dir())
    systems, zero = build_systems(args, corpus, bank, weights, prompt_table)
    results = evaluate(corpus, systems, zero, args.splits, args.probe_train_splits, probe=not args.no_probe)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# Alignment evaluation ({', '.join(args.splits)} records of {args.corpus}, never seen in alignment)"
              f"\n\nCommand: `python -m acula.aligner.evaluate {' '.join(argv if argv is not None else sys.argv[1:])}`")
    md = to_markdown(results, header)
    plots = plot_rocs(results, out, args.name)
    if plots:
        md += "\nROC curves: " + ", ".join(f"`{p.name}`" for p in plots) + "\n"
    (out / f"{args.name}.md").write_text(md)
    (out / f"{args.name}.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "_roc"}
                                                       for r in results], indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
