"""How many calibration windows does the int8 TFLite writer need?  Chosen on validation windows, several students.

    python -m acula.benchmarks.int8_tflite_calibration [--bundle DIR ...] [--counts 256 512 ...] [--corpus runs/corpus]

For each bundle, its student (the distillation run its manifest names) is written as int8 TFLite
(``export.writers.export_tflite``: PT2E static, histogram observers, per-channel weights) from each count of
``export.cli.calibration_windows`` (seed 0, train split), and run with the SDK's TFLite runtime on every validation
window of the corpus, against the torch student.  Printed per student and count: the cough-logit error over all
windows and over the cough windows (fp32 logit > 0, where the screening threshold lies), and the windows whose side
of the bundle's operating point changes.  The count with the smallest cough-window 99th-percentile error, averaged
over the students, is the one ``acula export`` uses (``export.cli.TFLITE_CALIBRATION_WINDOWS``); the test split is
never read.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, machine_line, write_results
from acula.benchmarks.int8_export import agreement, val_windows

DEFAULT_BUNDLES = ("sdk/models/default", "runs/bundle-gain24-both")
DEFAULT_COUNTS = (256, 512, 1024, 2048, 4096)


def measure_student(bundle_dir: Path, corpus_dir: Path, counts: Sequence[int]) -> dict[str, Any]:
    import torch
    from acula.export.cli import calibration_windows, load_student
    from acula.export.writers import export_tflite
    from acula.sdk.runtimes import make_backend

    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    run = Path(manifest["provenance"]["student_run"])
    student, _ = load_student(run)
    on = float(manifest["screening"]["cough_on"])
    x = val_windows(corpus_dir, manifest["window_frames"], manifest["hop_frames"])
    with torch.no_grad():
        parts = [student(torch.from_numpy(x[i : i + 512])) for i in range(0, len(x), 512)]
    ref = (np.concatenate([e.numpy() for e, _ in parts]), np.concatenate([h.numpy() for _, h in parts]))
    cough = ref[1][:, 0] > 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            path = export_tflite(student, Path(tmp) / f"int8_{n}.tflite",
                                 calibration_windows(corpus_dir, student.cfg.window_frames, n))
            got = make_backend("tflite", path.read_bytes(), 1)(x)  # the SDK's runtime, a window a call
            err = np.abs(got[1][:, 0] - ref[1][:, 0]).astype(np.float64)
            rows.append({"windows": n, **agreement(ref, got, on),
                         "cough_logit_err_p99": float(np.quantile(err[cough], 0.99)),
                         "cough_logit_err_max": float(err[cough].max())})
            print(f"  {bundle_dir} {n} windows: cough-window error p99 {rows[-1]['cough_logit_err_p99']:.3f}",
                  file=sys.stderr)
    return {"bundle": str(bundle_dir), "student_run": str(run), "val_windows": int(len(x)),
            "cough_windows": int(cough.sum()), "operating_point": on, "rows": rows}


def measure(bundles: Sequence[Path], corpus_dir: Path, counts: Sequence[int]) -> dict[str, Any]:
    students = [measure_student(b, corpus_dir, counts) for b in bundles]
    mean = {n: float(np.mean([next(r for r in s["rows"] if r["windows"] == n)["cough_logit_err_p99"]
                              for s in students])) for n in counts}
    return {"corpus": str(corpus_dir), "counts": list(counts), "machine": machine_line(), "students": students,
            "mean_cough_logit_err_p99": {str(n): v for n, v in mean.items()},
            "chosen": int(min(mean, key=lambda n: mean[n]))}


def markdown(res: dict[str, Any]) -> str:
    bundles = " ".join(f"--bundle {s['bundle']}" for s in res["students"])
    lines = ["# int8 TFLite calibration windows against the fp32 student, validation windows\n",
             f"`python -m acula.benchmarks.int8_tflite_calibration {bundles} --counts "
             f"{' '.join(map(str, res['counts']))}`.  Corpus `{res['corpus']}`.  {res['machine']}\n",
             "Cough windows: validation windows whose fp32 cough logit is above 0 (the operating point's side of the "
             "scale).  'crossing': windows whose side of the bundle's operating point int8 changes.\n",
             "| student | calibration windows | cough-logit error p99, all | max, all | p99, cough windows | max, "
             "cough windows | embedding cosine min | crossing |", "|---|---|---|---|---|---|---|---|"]
    for s in res["students"]:
        for r in s["rows"]:
            lines.append(f"| {s['bundle']} ({s['val_windows']:,} windows, {s['cough_windows']} cough) | "
                         f"{r['windows']} | {r['logit_err_p99']:.3f} | {r['logit_err_max']:.2f} | "
                         f"{r['cough_logit_err_p99']:.3f} | {r['cough_logit_err_max']:.2f} | {r['cosine_min']:.4f} | "
                         f"{r['windows_crossing']} |")
    means = ", ".join(f"{n}: {res['mean_cough_logit_err_p99'][str(n)]:.3f}" for n in res["counts"])
    crossed = {n: sum(r["windows_crossing"] for s in res["students"] for r in s["rows"] if r["windows"] == n)
               for n in res["counts"]}
    crossing = ", ".join(f"{n}: {c}" for n, c in crossed.items())
    lines.append(f"\nMean over the students of the cough-window p99 error: {means}.  Chosen: **{res['chosen']}** "
                 "windows (`export.cli.TFLITE_CALIBRATION_WINDOWS`).  Windows crossing the operating point, summed "
                 f"over the students (a handful each, so a noisy figure; not the criterion): {crossing}.  With about "
                 "100 cough windows a student, the p99 is close to the largest error or two.\n")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.int8_tflite_calibration", __doc__, argv)
    parser.add_argument("--bundle", action="append", help=f"bundle directory (repeatable; default {DEFAULT_BUNDLES})")
    parser.add_argument("--counts", type=int, nargs="+", default=list(DEFAULT_COUNTS))
    parser.add_argument("--corpus", default="runs/corpus", help="corpus with the val split and calibration windows")
    parser.add_argument("--json", default="benchmarks/results/int8_tflite_calibration.json",
                        help="results (JSON; .md beside)")
    args = parser.parse_args(argv)
    bundles, corpus = [Path(b) for b in (args.bundle or DEFAULT_BUNDLES)], Path(args.corpus)
    missing = [str(b) for b in bundles if not (b / "manifest.json").is_file()]
    if missing or not (corpus / "manifest.jsonl").is_file():
        print(f"needs bundle directories ({', '.join(missing) or 'ok'}) and a corpus ({corpus})", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.counts):
        print("--counts must be positive", file=sys.stderr)
        return 2
    res = measure(bundles, corpus, args.counts)
    write_results(args.json, res, markdown)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
