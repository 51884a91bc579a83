"""Re-quantise and re-calibrate a bundle from its own graphs, without the torch checkpoint.

    python -m acula.export.refit sdk/models/default --corpus runs/corpus [--out DIR]

Why: the int8 ONNX of bundles exported before ``reduce_range`` was used (see ``export.writers``) uses full
8-bit weights, and onnxruntime's u8 x s8 kernels on x86 CPUs without VNNI (AVX2 only) saturate their 16-bit
sums: the packaged default then answered 0.39 embedding cosine to fp32 on a real cough.  This rewrites
``student_int8.onnx`` with today's export (same calibration windows: ``export.cli.calibration_windows``, seed
0), re-measures its parity to the fp32 graph, recomputes the cough operating point on the validation split
from the new int8 graph when the screening probabilities come from it (as ``acula export`` does), refits the
label sets' calibration (temperature and per-label bias, ``export.calibration.calibrate_temperatures``) on the
validation split's embeddings from the bundle's fp32 ONNX graph on the SDK's own features, and writes the
bundle with every other file and field unchanged.  A new manifest digest results: update
``sdk.bundle.PINNED_SHA256`` for a packaged bundle.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from acula.export.bundle import bundle_parts, rewrite_staged, write_bundle
from acula.export.operating_point import POOLED_CALIBRATED_ON, pooled_point
from acula.sdk.bundle import Bundle, manifest_digest, read_bundle

INT8_FILE, FP32_FILE = "student_int8.onnx", "student_fp32.onnx"


def val_outputs(bundle: Bundle, cough_model: bytes, corpus_dir: Path, split: str = "val") -> Any:
    """``export.calibration.ValOutputs`` on ``split``, features as the SDK computes them: cough probabilities
    from ``cough_model``, embeddings (the first ``TEMPERATURE_WINDOWS`` windows) from the
    bundle's fp32 ONNX graph."""
    from acula.aligner.corpus import load_corpus
    from acula.aligner.data import record_features, windows
    from acula.export.calibration import TEMPERATURE_WINDOWS, ValOutputs
    from acula.sdk.frontend import LogMelFrontend
    from acula.sdk.level import bundle_level, shift_cut_windows
    from acula.sdk.runtimes import make_backend

    level = bundle_level(bundle)
    corpus = load_corpus(corpus_dir)
    frontend = LogMelFrontend(bundle.frontend)
    backend = make_backend("onnxruntime", cough_model, 1)
    fp32 = make_backend("onnxruntime", bundle.files[FP32_FILE], 1)
    head = int(bundle.manifest["heads"]["cough"]["index"])
    wf, hf = int(bundle.manifest["window_frames"]), int(bundle.manifest["hop_frames"])
    out = ValOutputs([], [], [], [])
    for i in corpus.indices(split):
        feats = record_features(corpus, i, frontend)
        crops = windows(feats, wf, hf).astype(np.float32)
        if level is not None:  # the windows the SDK scores this bundle on
            crops = shift_cut_windows(level, feats, crops, hf)
        logits = np.concatenate([backend(w[None])[1][:, head] for w in crops])
        out.embeddings.append(np.concatenate([fp32(w[None])[0] for w in crops[:TEMPERATURE_WINDOWS]]))
        out.rows.append(corpus.rows[i])
        out.n_frames.append(feats.shape[0])
        out.cough_probs.append(1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
    return out


def refit(src: Path, corpus_dir: Path, out: Path) -> dict[str, Any]:
    from acula.export.calibration import calibrate_screening, calibrate_temperatures
    from acula.export.cli import calibration_windows, cosine_min
    from acula.export.writers import export_onnx_int8
    from acula.sdk.runtimes import make_backend

    bundle = read_bundle(src)
    m = bundle.manifest
    from acula.sdk.level import bundle_level

    level = bundle_level(bundle)
    calib = calibration_windows(corpus_dir, int(m["window_frames"]), front=bundle.frontend, level=level)
    check = calib[:32]
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / FP32_FILE
        fp32_path.write_bytes(bundle.files[FP32_FILE])
        int8 = export_onnx_int8(fp32_path, Path(tmp) / INT8_FILE, calib).read_bytes()
    ref = make_backend("onnxruntime", bundle.files[FP32_FILE], 1)(check)[0]
    before = cosine_min(make_backend("onnxruntime", bundle.files[INT8_FILE], 1)(check)[0], ref)
    after = cosine_min(make_backend("onnxruntime", int8, 1)(check)[0], ref)
    files, manifest = bundle_parts(bundle)
    manifest["provenance"] = {**m["provenance"], "parity": {**m["provenance"]["parity"],
                                                            "onnx_int8_min_cosine": after},
                              "int8_onnx_requantized": "reduce_range (python -m acula.export.refit)"}
    val = val_outputs(bundle, int8, corpus_dir)
    cal = m["calibration"]
    sets = m["prompt_bank"]["label_sets"]
    manifest["calibration"] = {"logit_scale": cal["logit_scale"],
                               **calibrate_temperatures(val, bundle.array(m["prompt_bank"]["file"]),
                                                        float(cal["logit_scale"]), sets)}
    screening_changed = False
    # the point is chosen again on the new int8 graph, by the rule that chose it (pooled: through the SDK on the
    # bundle once written, so after the first write)
    rechoose = m.get("screening", {}).get("probabilities_from") == INT8_FILE
    pooled = m.get("screening", {}).get("calibrated_on") == POOLED_CALIBRATED_ON
    if rechoose and not pooled:
        point = calibrate_screening(int(m["window_frames"]), int(m["hop_frames"]), val)
        new = {**m["screening"], **point}
        screening_changed = any(new[k] != m["screening"].get(k) for k in ("cough_on", "cough_off"))
        manifest["screening"] = new
    files[INT8_FILE] = (int8, files[INT8_FILE][1])
    write_bundle(out, files, manifest)
    if rechoose and pooled:
        new = {**manifest["screening"], **pooled_point(out, corpus_dir)}
        screening_changed = any(new[k] != m["screening"].get(k) for k in ("cough_on", "cough_off"))
        manifest["screening"] = new
        write_bundle(out, files, manifest)
    written = read_bundle(out)
    return {"bundle": str(out), "digest": manifest_digest(written.manifest),
            "onnx_int8_min_cosine_before": before, "onnx_int8_min_cosine_after": after,
            "screening": {k: written.manifest["screening"].get(k) for k in ("cough_on", "cough_off")},
            "screening_changed": screening_changed,
            "calibration": {k: {"temperature": written.manifest["calibration"]["temperature"].get(k),
                                "bias": written.manifest["calibration"]["bias"].get(k),
                                **{f: v for f, v in r.items() if f.startswith("ece") or f == "spread_p5_p95"}}
                            for k, r in written.manifest["calibration"]["report"].items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.export.refit", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="bundle directory to read")
    parser.add_argument("--corpus", type=Path, required=True, help="corpus of the int8 calibration windows")
    parser.add_argument("--out", type=Path, help="where to write (default: over the bundle)")
    args = parser.parse_args(argv)
    # staged and verified first: a failure leaves the bundle alone
    result = rewrite_staged(args.bundle, args.out or args.bundle, lambda staged: refit(args.bundle, args.corpus,
                                                                                         staged))
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
