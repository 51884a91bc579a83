"""Calibration of a bundle's zero-shot probabilities on the split it was fitted on and on the held-out one.

    python -m acula.benchmarks.calibration --corpus runs/corpus [--bundle default] [--json]

The bundle's temperature and per-label bias were fitted on the validation split (``acula export`` or
``python -m acula.export.refit``); this scores the clip-level softmax the SDK computes, with them, on ``val`` and on
``test``: expected calibration error (10 bins) with a 95 % bootstrap interval over clips, NLL, the 5th-95th
percentile of each label's probability, and, for comparison, the same with the temperature alone (the bias
dropped) and uncalibrated.  Writes ``benchmarks/results/calibration.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import machine_line

N_BOOT = 1000
RESULTS = Path(__file__).resolve().parent / "results"


def ece_interval(logits: np.ndarray, y: np.ndarray, t: float, bias: np.ndarray | None, seed: int = 0
                 ) -> tuple[float, float, float]:
    from acula.export.calibration import ece

    rng = np.random.default_rng(seed)
    draws = [ece(logits[idx], y[idx], t, bias=bias) for idx in rng.integers(0, len(y), (N_BOOT, len(y)))]
    return ece(logits, y, t, bias=bias), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def score_split(bundle: Any, corpus: Path, split: str) -> dict[str, Any]:
    from acula.export.calibration import clip_logits_and_labels, nll, softmax_probs
    from acula.export.refit import INT8_FILE, val_outputs

    m = bundle.manifest
    cal = m["calibration"]
    outs = val_outputs(bundle, bundle.files[INT8_FILE], corpus, split)
    per_set = clip_logits_and_labels(outs, bundle.array(m["prompt_bank"]["file"]), float(cal["logit_scale"]),
                                     m["prompt_bank"]["label_sets"])
    rows: dict[str, Any] = {}
    for name, (logits, y, order) in per_set.items():
        if len(set(y.tolist())) < 2:
            continue
        t = float(cal["temperature"].get(name, 1.0))
        bias = np.asarray(cal.get("bias", {}).get(name, np.zeros(len(order))), np.float64)
        prob = softmax_probs(logits, t, bias)
        row: dict[str, Any] = {"n_clips": len(y),
                               "label_counts": {lab: int(np.sum(y == j)) for j, lab in enumerate(order)}}
        variants = {"shipped": (t, bias), "temperature_only": (t, None), "uncalibrated": (1.0, None)}
        for key, (tt, bb) in variants.items():
            e, lo, hi = ece_interval(logits, y, tt, bb)
            row[key] = {"ece": e, "ece_95": [lo, hi], "nll": nll(logits, y, tt, bb)}
        row["spread_p5_p95"] = {lab: [float(np.percentile(prob[:, j], 5)), float(np.percentile(prob[:, j], 95))]
                                for j, lab in enumerate(order)}
        rows[name] = row
    return rows


def render(report: dict[str, Any]) -> str:
    lines = ["# Calibration of the zero-shot probabilities, fitted split and held-out split", "",
             f"Bundle `{report['bundle']}` (digest {report['digest'][:12]}), {report['machine']}.",
             "Fitted on val (temperature and per-label bias, `export.calibration`); test was not used for any "
             "choice. ECE: 10 confidence bins, 95 % bootstrap interval over clips "
             f"({N_BOOT} resamples). 'temperature only' drops the shipped bias and keeps the shipped temperature "
             "(fitted jointly with the bias, so it is not the temperature-only fit). ECE is biased upward under "
             "resampling, so a very small point estimate can sit below its bootstrap interval.", "",
             "| split | label set | clips | ECE shipped [95 %] | ECE temperature only | ECE uncalibrated | NLL shipped "
             "| probability p5-p95 |", "|---|---|---|---|---|---|---|---|"]
    for split, sets in report["splits"].items():
        for name, r in sets.items():
            s = r["shipped"]
            spread = "; ".join(f"{lab} {lo:.2f}-{hi:.2f}" for lab, (lo, hi) in r["spread_p5_p95"].items())
            lines.append(f"| {split} | {name} | {r['n_clips']} | {s['ece']:.3f} [{s['ece_95'][0]:.3f}, "
                         f"{s['ece_95'][1]:.3f}] | {r['temperature_only']['ece']:.3f} | "
                         f"{r['uncalibrated']['ece']:.3f} | {s['nll']:.3f} | {spread} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from acula import sdk

    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.calibration",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="corpus from 'acula corpus build'")
    parser.add_argument("--bundle", default="default", help="bundle name or path")
    parser.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for calibration.{json,md}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    args = parser.parse_args(argv)
    bundle = sdk.load(args.bundle, precision="fp32").bundle
    report = {"bundle": str(args.bundle), "digest": bundle.sha256, "machine": machine_line(),
              "splits": {split: score_split(bundle, args.corpus, split) for split in args.splits}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "calibration.md").write_text(render(report))
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
