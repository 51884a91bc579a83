"""``acula export``: write the student as ONNX and TFLite (fp32 and int8) into a hashed bundle.

    acula export --student runs/distill --corpus runs/corpus --out bundles/mybundle [--zip]

Calibration windows for int8 come from the corpus' training split.  The command
checks parity before writing: torch vs ONNX fp32 vs TFLite fp32 (max abs
difference) and int8 vs fp32 (cosine), and stores the figures in the manifest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aligner.checkpoint import load_checkpoint
from aligner.corpus import load_corpus
from aligner.data import FeatureBank, dataset_balanced_weights, record_features, sample_batch, windows
from distill.prompts import label_sets
from distill.student import StreamingStudent, StudentConfig
from export.bundle import bundle_digest, npy_bytes, write_bundle
from export.writers import INPUT_NAME, OUTPUT_NAMES, export_onnx_fp32, export_onnx_int8, export_tflite
from sdk.frontend import LogMelFrontend
from sdk.frontend_config import FrontendConfig

LICENCE = ("Code Apache-2.0. Weights trained on Coswara (CC BY 4.0, LEAP Lab IISc), ESC-10 (CC BY 3.0), PhysioNet "
           "2016 (ODC-By) and ICBHI 2017 (research use); initialised from EfficientAT mn04 (MIT). "
           "Screening support and research only; not a diagnostic device.")


def load_student(run: str | Path) -> tuple[StreamingStudent, dict[str, Any]]:
    state, meta = load_checkpoint(run)
    student = StreamingStudent(StudentConfig.from_dict(meta["student_config"]))
    student.load_state_dict(state)
    return student.eval(), meta


def calibration_windows(corpus_dir: Path, window_frames: int, n: int = 256, seed: int = 0) -> np.ndarray:
    corpus = load_corpus(corpus_dir)
    bank = FeatureBank.for_corpus(corpus, progress=False)
    idx = corpus.indices("train")
    weights = dataset_balanced_weights([corpus.rows[i]["dataset"] for i in idx])
    _, crops = sample_batch(bank, idx, weights, n, window_frames, np.random.default_rng(seed))
    return crops.astype(np.float32)


def run_onnx(path: Path, windows: np.ndarray, input_name: str = INPUT_NAME) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run([OUTPUT_NAMES[0]], {input_name: windows})[0])


def run_tflite(path: Path, windows: np.ndarray) -> np.ndarray:
    from sdk.runtimes import TFLiteBackend

    backend = TFLiteBackend(path.read_bytes(), n_threads=1)
    return np.concatenate([backend(w[None])[0] for w in windows])


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


@dataclass
class ValOutputs:
    """The student's outputs on every validation record, computed once for both calibrations."""

    rows: list[dict[str, Any]]  # corpus manifest rows of the validation records
    n_frames: list[int]
    embeddings: list[np.ndarray]  # per record (n_windows, embed_dim)
    cough_probs: list[np.ndarray]  # per record (n_windows,)


def validation_outputs(student: StreamingStudent, corpus_dir: Path, cough_model: Path | None = None) -> ValOutputs:
    """Embeddings from the torch student on the cached (float16) features; cough probabilities from
    ``cough_model`` (an exported ONNX graph: the int8 one the SDK loads by default) on float32 features
    recomputed as the SDK computes them, so the operating point holds for what ships, or, without it, from
    the torch student on the cached features."""
    corpus = load_corpus(corpus_dir)
    bank = FeatureBank.for_corpus(corpus, progress=False)
    out = ValOutputs([], [], [], [])
    session = None
    if cough_model is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(cough_model), providers=["CPUExecutionProvider"])
        frontend = LogMelFrontend()  # the configuration the feature bank uses
    with torch.no_grad():
        for i in corpus.indices("val"):
            feats = bank.get(i)
            crops = windows(feats, student.cfg.window_frames, student.cfg.hop_frames)
            emb, heads = student(torch.from_numpy(crops))
            if session is None:
                logits = heads[:, 0].numpy()
            else:
                exact = windows(record_features(corpus, i, frontend), student.cfg.window_frames,
                                student.cfg.hop_frames).astype(np.float32)
                logits = np.asarray(session.run([OUTPUT_NAMES[1]], {INPUT_NAME: exact})[0])[:, 0]
            out.rows.append(corpus.rows[i])
            out.n_frames.append(feats.shape[0])
            out.embeddings.append(emb.numpy())
            out.cough_probs.append(1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
    return out


#: recording groups of the cough operating point, and the most of each group's validation recordings that may
#: carry a cough event (the shipped detector's targets: <= 3 % of non-cough phone recordings, <= 1 % of
#: stethoscope recordings)
SCREENING_TARGETS: dict[str, float] = {"phone non-cough": 0.03, "stethoscope": 0.01}


def screening_group(row: dict[str, Any]) -> str:
    modality = row["modality"]
    if modality == "cough":
        return "cough"
    if modality in ("breathing", "speech"):
        return "phone non-cough"
    return "stethoscope" if modality in ("heart", "lung") else "other"


def choose_operating_point(sequences: dict[str, list[np.ndarray]], noncough_hours: float, window_s: float,
                           hop_s: float, targets: dict[str, float] | None = None,
                           candidates: Sequence[float] | None = None) -> dict[str, Any]:
    """The lowest 'on' threshold at which, for every group in ``targets``, at most that fraction of its
    recordings carries a cough event, with the SDK's own event logic (hysteresis off = 0.8 on, minimum
    duration 0.25 s, refractory 1 s).  ``sequences``: per group, each recording's per-window cough
    probabilities (NaN: gated out).  The lowest such threshold keeps the most recall.  When no candidate
    meets the targets, the highest is taken and ``targets_met`` says so."""
    from sdk.screening import EventDetector, ScreeningConfig

    targets = SCREENING_TARGETS if targets is None else targets
    grid = sorted({round(float(t), 4) for t in (candidates if candidates is not None
                                                 else np.linspace(0.5, 0.995, 100))})

    def n_events(seq: np.ndarray, on: float) -> int:
        det = EventDetector(ScreeningConfig(on=on, off=round(0.8 * on, 4), min_duration_s=0.25, refractory_s=1.0))
        n = sum(len(det.update(k * hop_s, k * hop_s + window_s, None if np.isnan(p) else float(p)))
                for k, p in enumerate(seq))
        return n + len(det.flush())

    def flagged(group: str, on: float) -> float:
        seqs = sequences.get(group, [])
        return float(np.mean([n_events(q, on) > 0 for q in seqs])) if seqs else 0.0

    chosen, met = grid[-1], False
    for on in grid:
        if all(flagged(g, on) <= limit for g, limit in targets.items()):
            chosen, met = on, True
            break
    events = sum(n_events(q, chosen) for g, seqs in sequences.items() if g != "cough" for q in seqs)
    return {"cough_on": chosen, "cough_off": round(0.8 * chosen, 4), "min_duration_s": 0.25, "refractory_s": 1.0,
            "smoothing_windows": 1, "calibrated_on": "val split", "targets": dict(targets), "targets_met": met,
            "val_fraction_flagged": {g: flagged(g, chosen) for g in sorted(sequences)},
            "val_cough_recording_recall": flagged("cough", chosen) if sequences.get("cough") else None,
            "val_false_alarms_per_hour": events / max(noncough_hours, 1e-9),
            "val_noncough_hours": round(noncough_hours, 3),
            "n_val_recordings": {g: len(v) for g, v in sorted(sequences.items())}}


def calibrate_screening(student: StreamingStudent, val: ValOutputs) -> dict[str, Any]:
    """Cough operating point from the validation split (never trained on); see ``choose_operating_point``."""
    W, H = student.cfg.window_frames, student.cfg.hop_frames
    sequences: dict[str, list[np.ndarray]] = {}
    hours = 0.0
    for row, n_frames, probs in zip(val.rows, val.n_frames, val.cough_probs, strict=True):
        group = screening_group(row)
        sequences.setdefault(group, []).append(probs)
        if group != "cough":
            hours += n_frames * 0.032 / 3600
    return choose_operating_point(sequences, hours, W * 0.032, H * 0.032)


#: how a corpus record maps to a label of each label set, for temperature calibration (None: not used)
def _label_for(row: dict[str, Any], label_set: str) -> str | None:
    m, modality = row["metadata"], row["modality"]
    if label_set == "heart" and modality == "heart":
        return {"normal": "normal", "abnormal": "abnormal"}.get(str(m.get("outcome")))
    if label_set == "lung" and modality == "lung":
        c, w = int(m.get("crackles", 0)), int(m.get("wheezes", 0))
        return "normal" if not (c or w) else "crackles" if c and not w else "wheezes" if w and not c else None
    if label_set == "sound":
        return {"cough": "cough", "breathing": "breathing", "speech": "speech", "environment": "other"}.get(modality)
    return None


def calibrate_temperatures(val: ValOutputs, prompts: np.ndarray, logit_scale: float,
                           sets: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """One temperature per label set, fitted on the validation split by the negative log-likelihood of the
    clip-level softmax (mean of window logits, first 40 windows of a record), as the SDK computes it.
    Reports ECE before and after."""
    p = prompts / np.linalg.norm(prompts, axis=1, keepdims=True)
    clip_emb = [e[:40] / np.linalg.norm(e[:40], axis=1, keepdims=True) for e in val.embeddings]
    temps, report = {}, {}
    grid = np.exp(np.linspace(np.log(0.05), np.log(200.0), 161))
    for name, labels in sets.items():
        order = sorted(labels)
        xs, ys = [], []
        for row, e in zip(val.rows, clip_emb, strict=True):
            lab = _label_for(row, name)
            if lab is None or lab not in labels:
                continue
            sims = e @ p.T * logit_scale
            xs.append(np.stack([sims[:, labels[lab_]].mean(1) for lab_ in order], 1).mean(0))
            ys.append(order.index(lab))
        if len(set(ys)) < 2:
            continue
        logits, y = np.stack(xs), np.asarray(ys)

        def nll(t: float, logits: np.ndarray = logits, y: np.ndarray = y) -> float:
            z = logits / t
            z = z - z.max(1, keepdims=True)
            return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())

        def ece(t: float, logits: np.ndarray = logits, y: np.ndarray = y) -> float:
            z = np.exp(logits / t - (logits / t).max(1, keepdims=True))
            prob = z / z.sum(1, keepdims=True)
            conf, pred = prob.max(1), prob.argmax(1)
            bins = np.minimum((conf * 10).astype(int), 9)
            return float(sum(abs(np.mean(pred[bins == b] == y[bins == b]) - conf[bins == b].mean()) * np.mean(bins == b)
                             for b in range(10) if np.any(bins == b)))

        best = float(min(grid, key=nll))
        temps[name] = round(best, 4)
        report[name] = {"n_val_clips": len(y), "nll_before": nll(1.0), "nll_after": nll(best),
                        "ece_before": ece(1.0), "ece_after": ece(best)}
    return {"temperature": temps, "fitted_on": "val split", "report": report}


def data_provenance(corpus_dir: Path) -> dict[str, Any]:
    corpus = load_corpus(corpus_dir)
    counts: dict[str, dict[str, int]] = {}
    for row in corpus.rows:
        counts.setdefault(row["dataset"], {}).setdefault(row["split"], 0)
        counts[row["dataset"]][row["split"]] += 1
    return {"datasets": sorted(counts), "records_by_split": counts, "trained_on": "train split",
            "held_out": "val (operating point) and test, group-disjoint by participant / patient",
            "teacher_text_model": corpus.info.get("teacher_id")}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def export_bundle(run: Path, corpus_dir: Path, out: Path, as_zip: bool = False, tflite: bool = True,
                  extra_manifest: dict[str, Any] | None = None, waveform_graph: bool = False,
                  signing_key: Any = None) -> dict[str, Any]:
    student, meta = load_student(run)
    cfg = student.cfg
    calib = calibration_windows(corpus_dir, cfg.window_frames)
    check = calib[:32]
    with torch.no_grad():
        ref = student(torch.from_numpy(check))[0].numpy()
    parity: dict[str, float] = {}
    files: dict[str, tuple[bytes, dict[str, Any]]] = {}
    io_sig = {"inputs": [{"name": INPUT_NAME, "shape": [1, cfg.window_frames, cfg.n_mels], "dtype": "float32"}],
              "outputs": [{"name": "embedding", "shape": [1, cfg.embed_dim]},
                          {"name": "heads", "shape": [1, max(1, len(cfg.heads))]}]}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        onnx32 = export_onnx_fp32(student, tmp / "student_fp32.onnx")
        onnx8 = export_onnx_int8(onnx32, tmp / "student_int8.onnx", calib)
        val = validation_outputs(student, corpus_dir, cough_model=onnx8)
        fp32 = run_onnx(onnx32, check)
        parity["onnx_fp32_max_abs_diff"] = float(np.max(np.abs(fp32 - ref)))
        parity["onnx_int8_min_cosine"] = cosine_min(run_onnx(onnx8, check), fp32)
        made = [(onnx32, "onnxruntime", "fp32"), (onnx8, "onnxruntime", "int8")]
        if tflite:
            tfl32 = export_tflite(student, tmp / "student_fp32.tflite")
            tfl8 = export_tflite(student, tmp / "student_int8.tflite", calib)
            parity["tflite_fp32_max_abs_diff"] = float(np.max(np.abs(run_tflite(tfl32, check) - ref)))
            parity["tflite_int8_min_cosine"] = cosine_min(run_tflite(tfl8, check), fp32)
            made += [(tfl32, "tflite", "fp32"), (tfl8, "tflite", "int8")]
        for path, backend, precision in made:
            files[path.name] = (path.read_bytes(), {"role": "student", "backend": backend, "precision": precision,
                                                    **io_sig})
        if waveform_graph:
            from export.waveform import INPUT_NAME as WAVE_INPUT
            from export.waveform import check_windows, export_waveform_onnx

            front = FrontendConfig.from_dict(meta["frontend"])
            wpath = export_waveform_onnx(student, front, tmp / "student_waveform_fp32.onnx")
            waves, logmel = check_windows(front, cfg.window_frames, cfg.hop_frames)
            with torch.no_grad():
                wref = student(torch.from_numpy(logmel))[0].numpy()
            parity["waveform_onnx_fp32_max_abs_diff"] = float(np.max(np.abs(run_onnx(wpath, waves, WAVE_INPUT)
                                                                            - wref)))
            files[wpath.name] = (wpath.read_bytes(), {
                "role": "waveform_student", "backend": "onnxruntime", "precision": "fp32",
                "inputs": [{"name": WAVE_INPUT, "shape": [1, int(waves.shape[1])], "dtype": "float32"}],
                "outputs": io_sig["outputs"]})
    prompts = np.load(Path(run) / "prompt_embeddings.npy") if Path(run).is_dir() else np.load(
        Path(run).parent / "prompt_embeddings.npy")
    texts = json.loads((Path(run) / "prompt_texts.json").read_text())
    index = {t: i for i, t in enumerate(texts)}
    sets = {name: {label: [index[p] for p in prompts_] for label, prompts_ in labels.items()}
            for name, labels in label_sets().items()}
    files["prompts.npy"] = (npy_bytes(prompts.astype(np.float32)), {"role": "prompt_bank"})
    manifest = {
        "name": out.stem, "frontend": meta["frontend"], "window_frames": cfg.window_frames,
        "hop_frames": cfg.hop_frames, "embed_dim": cfg.embed_dim,
        "prompt_bank": {"file": "prompts.npy", "texts": texts, "label_sets": sets},
        "heads": {name: {"index": i} for i, name in enumerate(cfg.heads)},
        "calibration": {"logit_scale": float(meta.get("logit_scale", 14.3)),
                        **calibrate_temperatures(val, prompts, float(meta.get("logit_scale", 14.3)), sets)},
        "screening": {**calibrate_screening(student, val), "probabilities_from": onnx8.name},
        "provenance": {"student_run": str(run), "teacher_run": meta.get("teacher_run"),
                       "teacher_id": meta.get("teacher_id"), "corpus": str(corpus_dir), "git_commit": git_commit(),
                       "student_config": cfg.to_dict(), "distill_config": meta.get("distill_config"),
                       "student_parameters": sum(p.numel() for p in student.parameters()),
                       "parity": parity, "data": data_provenance(corpus_dir)},
        "licence": LICENCE,
    }
    if extra_manifest:
        manifest = {**manifest, **extra_manifest}
    write_bundle(out, files, manifest, as_zip=as_zip, signing_key=signing_key)
    return parity


def _not_replaceable(out: Path) -> str | None:
    """Why ``--force`` must not write over ``out`` (the write removes files the new bundle lacks), or None when
    ``out`` holds nothing but a bundle's own files: its manifest, signature and the files the manifest lists."""
    import zipfile

    if out.is_file():
        if zipfile.is_zipfile(out):
            with zipfile.ZipFile(out) as zf:
                if "manifest.json" in zf.namelist():
                    return None
        return f"{out} is a file but not a bundle zip"
    try:
        listed = set(json.loads((out / "manifest.json").read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{out} holds no readable bundle manifest.json"
    others = sorted(p.name for p in out.iterdir()
                    if p.is_file() and p.name not in listed | {"manifest.json", "manifest.sig"})
    return f"{out} also holds {', '.join(others)}; move them out first" if others else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True, help="acula distill run directory")
    parser.add_argument("--corpus", required=True, help="corpus for int8 calibration windows")
    parser.add_argument("--out", required=True, help="bundle directory (or .zip with --zip)")
    parser.add_argument("--zip", action="store_true", help="write one zip file instead of a directory")
    parser.add_argument("--no-tflite", action="store_true", help="ONNX only")
    parser.add_argument("--waveform-graph", action="store_true",
                        help="also write student_waveform_fp32.onnx: waveform in, embedding out, the front end "
                             "inside the graph (about 4 MB more: the DFT kernels)")
    parser.add_argument("--sign-key", help="Ed25519 private key (PEM, unencrypted) to sign the manifest with: "
                                           "writes manifest.sig (needs: pip install cryptography)")
    parser.add_argument("-f", "--force", action="store_true",
                        help="replace an existing bundle at --out (only the files its manifest lists are removed)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"acula export: {out} exists; pass --force to replace the bundle there", file=sys.stderr)
        return 1
    problem = _not_replaceable(out) if out.exists() else None
    if problem:
        print(f"acula export: --force replaces only a bundle this command wrote: {problem}", file=sys.stderr)
        return 1
    key = None
    if args.sign_key:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(Path(args.sign_key).read_bytes(), password=None)
    parity = export_bundle(Path(args.student), Path(args.corpus), out, args.zip, not args.no_tflite,
                           waveform_graph=args.waveform_graph, signing_key=key)
    digest = bundle_digest(out)
    print(json.dumps({"bundle": str(out), "manifest_sha256": digest, "signed": key is not None,
                      "parity": parity}, indent=2))
    packaged = Path(__file__).resolve().parents[1] / "sdk" / "models"
    if out.resolve().parent == packaged:
        print(f"acula export: {out} is packaged; set PINNED_SHA256[{out.name!r}] = {digest!r} in sdk/bundle.py "
              "or sdk.load refuses it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
