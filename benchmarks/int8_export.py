"""How close is each way of writing the int8 ONNX student to its fp32 graph, on the validation windows?

    python -m acula.benchmarks.int8_export [--bundle runs/bundle-X] [--corpus runs/corpus] [--json OUT]

The bundle's fp32 ONNX graph is quantised again under each choice (activation ranges from the percentile or the
min/max of the calibration windows ``acula export`` uses; the head layer int8 or float) and run with its fp32
graph on every validation window of the corpus, features computed as the SDK computes them.  Printed per choice:
the cough-logit error (mean, 99th percentile, max; the screening threshold reads that logit), the embedding
cosine (mean, min) and the windows whose side of the bundle's operating point changes.  ``export_onnx_int8``
takes the choice with the smallest 99th-percentile cough-logit error; the test split is never read.
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

CHOICES: tuple[tuple[str, float | None, bool], ...] = (
    ("percentile 99.99, int8 heads (until 2026-12-03)", 99.99, False),
    ("percentile 99.999, int8 heads", 99.999, False),
    ("min/max, int8 heads", None, False),
    ("percentile 99.99, float heads", 99.99, True),
    ("percentile 99.999, float heads", 99.999, True),
    ("min/max, float heads", None, True),
)


def val_windows(corpus_dir: Path, window_frames: int, hop_frames: int) -> np.ndarray:
    from acula.aligner.corpus import load_corpus
    from acula.aligner.data import record_features, windows
    from acula.sdk.frontend import LogMelFrontend

    corpus, frontend = load_corpus(corpus_dir), LogMelFrontend()
    return np.concatenate([windows(record_features(corpus, i, frontend), window_frames, hop_frames)
                           for i in corpus.indices("val")]).astype(np.float32)


def run_graph(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, head logits) of an ONNX graph through the SDK's own onnxruntime backend."""
    from acula.sdk.runtimes import make_backend

    emb, heads = make_backend("onnxruntime", path.read_bytes(), 1)(x)
    return np.asarray(emb), np.asarray(heads)


def agreement(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], on: float) -> dict[str, float]:
    (e0, h0), (e1, h1) = ref, got
    cos = np.sum(e0 * e1, 1) / (np.linalg.norm(e0, axis=1) * np.linalg.norm(e1, axis=1) + 1e-12)
    err = np.abs(h1[:, 0] - h0[:, 0]).astype(np.float64)
    p0, p1 = (1.0 / (1.0 + np.exp(-h[:, 0].astype(np.float64))) for h in (h0, h1))
    return {"logit_err_mean": float(err.mean()), "logit_err_p99": float(np.quantile(err, 0.99)),
            "logit_err_max": float(err.max()), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "windows_crossing": int(np.sum((p0 >= on) != (p1 >= on)))}


def measure(bundle_dir: Path, corpus_dir: Path) -> dict[str, Any]:
    from acula.export.cli import calibration_windows
    from acula.export.writers import export_onnx_int8

    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    wf, hf, on = manifest["window_frames"], manifest["hop_frames"], manifest["screening"]["cough_on"]
    fp32 = bundle_dir / "student_fp32.onnx"
    x = val_windows(corpus_dir, wf, hf)
    ref = run_graph(fp32, x)
    calib = calibration_windows(corpus_dir, wf)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, percentile, float_heads in CHOICES:
            out = export_onnx_int8(fp32, Path(tmp) / "int8.onnx", calib, percentile, float_heads)
            rows.append({"choice": name, "percentile": percentile, "float_heads": float_heads,
                         "bytes": out.stat().st_size, **agreement(ref, run_graph(out, x), on)})
            print(f"  {name}: cough-logit error p99 {rows[-1]['logit_err_p99']:.3f}", file=sys.stderr)
    best = min(rows, key=lambda r: r["logit_err_p99"])
    return {"bundle": str(bundle_dir), "corpus": str(corpus_dir), "val_windows": int(len(x)), "operating_point": on,
            "machine": machine_line(), "rows": rows, "chosen": best["choice"]}


def markdown(res: dict[str, Any]) -> str:
    lines = ["# int8 ONNX export choices against fp32, validation windows\n",
             f"Bundle `{res['bundle']}`, {res['val_windows']} validation windows of `{res['corpus']}`, operating "
             f"point {res['operating_point']}.  `python -m acula.benchmarks.int8_export --bundle {res['bundle']}`."
             f"  {res['machine']}\n",
             "| choice | cough-logit error mean | p99 | max | embedding cosine mean | min | windows crossing | bytes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['choice']} | {r['logit_err_mean']:.3f} | {r['logit_err_p99']:.3f} | "
                     f"{r['logit_err_max']:.2f} | {r['cosine_mean']:.5f} | {r['cosine_min']:.4f} | "
                     f"{r['windows_crossing']} | {r['bytes']:,} |")
    lines.append(f"\nChosen by the smallest 99th-percentile cough-logit error: **{res['chosen']}** "
                 "(`export_onnx_int8`'s defaults).  reduce_range stays on in every row: onnxruntime's u8s8 kernels "
                 "saturate on x86 CPUs without VNNI otherwise.\n")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.int8_export", __doc__, argv)
    parser.add_argument("--bundle", default="runs/bundle-sup-heads", help="bundle directory (its fp32 ONNX graph)")
    parser.add_argument("--corpus", default="runs/corpus", help="corpus with the val split and calibration windows")
    parser.add_argument("--json", default="benchmarks/results/int8_export.json", help="results (JSON; .md beside)")
    args = parser.parse_args(argv)
    bundle, corpus = Path(args.bundle), Path(args.corpus)
    if not (bundle / "student_fp32.onnx").is_file() or not (corpus / "manifest.jsonl").is_file():
        print(f"needs a bundle directory with student_fp32.onnx ({bundle}) and a corpus ({corpus})",
              file=sys.stderr)
        return 2
    res = measure(bundle, corpus)
    write_results(args.json, res, markdown)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
