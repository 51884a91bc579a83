"""A lever measured for issue 24: remove the label logits' level dependence after the fact, without retraining.

    python -m acula.benchmarks.level_compensation [--bundle default] [--label-set heart] [--fit 120] [--scored 400]
                                                  [--json OUT.json]

The shipped student's heart probability moves with recording level (quieter reads as more abnormal).  If that
response were one slope per label in the window's RMS level (dB), a term ``- slope * (level - ref)`` in the
label logits, computed from the level the quality gate measures anyway, would cancel it while streaming.  The
slopes are fitted on training-split recordings under gain changes (0, -6, -12, -24 dB) by least squares of each
window's logit change on its level change: the model's own sensitivity, no labels used.  Validation recordings
are then scored as the SDK's native probability (mean logit over the gated windows, softmax) with and without
the term, at each gain, and at 1.5x and 2x the fitted slopes to see whether a steeper term does better.

It reports the mean and largest probability shift against the untouched recording and the AUROC per gain.
Choices made from it are made on validation only; the test split is not scored here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, write_results

GAINS = (0, -6, -12, -24)
REF_DB = -30.0
TASKS = {"heart": ("physionet2016", "abnormal", lambda r: r["metadata"].get("outcome") == "abnormal"),
         "lung": ("icbhi", "crackles", lambda r: bool(r["metadata"].get("crackles")))}


def window_outputs(model: Any, samples: np.ndarray, label_set: str) -> dict[int, tuple[np.ndarray, np.ndarray] | None]:
    """Per gain: (label logits of the gated-in windows, their RMS level in dB), or None if no window passed."""
    out: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
    for g in GAINS:
        y = (samples * 10 ** (g / 20)).astype(np.float32)
        stream = model.stream()
        wins = [w for w in stream.accept(y, 16000) + stream.flush() if not w.problems]
        if not wins:
            out[g] = None
            continue
        levels = []
        for w in wins:
            seg = y[int(w.start_s * 16000) : int(w.end_s * 16000)].astype(np.float64)
            levels.append(10 * np.log10(max(float(np.mean((seg - seg.mean()) ** 2)), 1e-20)))
        out[g] = (np.array([w.label_logits[label_set] for w in wins]), np.array(levels))
    return out


def fit_slopes(outputs: list[dict[int, Any]]) -> np.ndarray:
    """Least-squares slope per label of a window's logit change on its level change, over every gain."""
    dl, dlev = [], []
    for o in outputs:
        if o[0] is None:
            continue
        for g in GAINS[1:]:
            if o[g] is not None and len(o[g][0]) == len(o[0][0]):
                dl.append(o[g][0] - o[0][0])
                dlev.append(o[g][1] - o[0][1])
    d, lev = np.concatenate(dl), np.concatenate(dlev)
    return (d * lev[:, None]).sum(0) / (lev**2).sum()


def native_probability(logits: np.ndarray, levels: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    z = (logits - np.outer(levels - REF_DB, slopes)).mean(0)
    p = np.exp(z - z.max())
    return p / p.sum()


def markdown(res: dict[str, Any]) -> str:
    lines = [f"# Level term in the label logits ({res['label_set']}, val)\n", f"Command: `{res['command']}`\n",
             f"Slopes per dB ({', '.join(res['labels'])}), fitted on {res['n_fit']} training recordings: "
             + ", ".join(f"{s:+.4f}" for s in res["slopes_per_db"]) + f".  Scored: {res['n_scored']} validation "
             f"recordings, AUROC of p({res['positive']}).\n",
             "| variant | gain dB | mean shift | max shift | AUROC | AUROC minus shipped [95 % CI] |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        d = r.get("auroc_vs_shipped")
        diff = f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" if d else "-"
        lines.append(f"| {r['variant']} | {r['gain_db']} | {r['shift_mean']:.3f} | {r['shift_max']:.3f} | "
                     f"{r['auroc']:.3f} | {diff} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.level_compensation", __doc__, argv)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--corpus", default="runs/corpus")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--label-set", default="heart", choices=sorted(TASKS))
    parser.add_argument("--fit", type=int, default=120, help="training-split recordings the slopes are fitted on")
    parser.add_argument("--scored", type=int, default=400, help="validation recordings scored (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here, and the table beside them (.md)")
    args = parser.parse_args(argv)
    from acula.aligner import protocol as P
    from acula.sdk.audio import load_audio
    from acula.sdk.model import load
    from tqdm import tqdm

    model = load(args.bundle, "onnxruntime", "fp32")
    dataset, positive, is_positive = TASKS[args.label_set]
    rows = [json.loads(line) for line in Path(args.corpus, "manifest.jsonl").read_text().splitlines() if line]
    rng = np.random.default_rng(args.seed)

    def pick(split: str, n: int) -> list[dict[str, Any]]:
        pool = [r for r in rows if r["dataset"] == dataset and r["split"] == split]
        return [pool[i] for i in sorted(rng.choice(len(pool), min(n, len(pool)), replace=False))]

    def outputs(recs: list[dict[str, Any]], what: str) -> list[dict[int, Any]]:
        return [window_outputs(model, load_audio(Path(args.data, r["path"]), 16000, r["start_s"], r["end_s"]).samples,
                               args.label_set) for r in tqdm(recs, desc=what, unit="rec")]

    slopes = fit_slopes(outputs(pick("train", args.fit), "fit (train)"))
    val = pick("val", args.scored)
    val_out = outputs(val, "score (val)")
    keep = [k for k, o in enumerate(val_out) if all(o[g] is not None for g in GAINS)]
    y = np.array([is_positive(val[k]) for k in keep])
    col = model.label_sets[args.label_set].index(positive)
    res: dict[str, Any] = {"bundle": args.bundle, "label_set": args.label_set,
                           "labels": model.label_sets[args.label_set], "slopes_per_db": slopes.tolist(),
                           "n_fit": args.fit, "n_scored": len(keep), "positive": positive, "rows": [],
                           "command": f"python -m acula.benchmarks.level_compensation --label-set {args.label_set} "
                                      f"--fit {args.fit} --scored {args.scored}"}
    groups = np.array([val[k]["group_id"] for k in keep])
    shipped: dict[int, np.ndarray] = {}
    for name, mult in (("as shipped", 0.0), ("level term, fitted slopes", 1.0), ("level term, 1.5x", 1.5),
                       ("level term, 2x", 2.0)):
        probs = {g: np.array([native_probability(*val_out[k][g], slopes * mult) for k in keep]) for g in GAINS}
        for g in GAINS:
            shift = np.abs(probs[g] - probs[0]).max(1)
            row = {"variant": name, "gain_db": g, "shift_mean": float(shift.mean()),
                   "shift_max": float(shift.max()), "auroc": P.auroc(y, probs[g][:, col])}
            if mult:  # AUROC against the shipped scoring on the same records, paired patient bootstrap
                row["auroc_vs_shipped"] = P.paired_bootstrap(y, probs[g][:, col], shipped[g], groups)
            else:
                shipped[g] = probs[g][:, col]
            res["rows"].append(row)
    print(markdown(res))
    if args.json:
        write_results(args.json, res, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
