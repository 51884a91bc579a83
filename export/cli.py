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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from acula.aligner.checkpoint import load_checkpoint
from acula.aligner.corpus import load_corpus
from acula.aligner.data import FeatureBank, dataset_balanced_weights, record_features, sample_batch, windows
from acula.distill.student import StreamingStudent, StudentConfig
from acula.distill.train import DistillConfig
from acula.export.bundle import bundle_digest, npy_bytes, write_bundle
from acula.export.calibration import ValOutputs, calibrate_screening, calibrate_temperatures
from acula.export.operating_point import RULES, pooled_point
from acula.export.writers import INPUT_NAME, OUTPUT_NAMES, export_onnx_fp32, export_onnx_int8, export_tflite
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.label_sets import label_sets
from acula.sdk.level import DEFAULT_REF, LevelShift, shift_crops, shift_cut_windows
from acula.sdk.runtimes import make_backend

LICENCE = ("Code Apache-2.0. Weights trained on Coswara (CC BY 4.0, LEAP Lab IISc), ESC-10 (CC BY 3.0), PhysioNet "
           "2016 (ODC-By) and ICBHI 2017 (research use); initialised from EfficientAT mn04 (MIT). "
           "Screening support and research only; not a diagnostic device.")


def load_student(run: str | Path) -> tuple[StreamingStudent, dict[str, Any]]:
    state, meta = load_checkpoint(run)
    student = StreamingStudent(StudentConfig.from_dict(meta["student_config"]))
    student.load_state_dict(state)
    return student.eval(), meta


#: int8 calibration windows per writer.  onnxruntime's percentile calibration takes 256 (``int8_export.md``); the
#: TFLite writer's histogram observers take 1024: with 256, the cough windows of validation kept a 99th-percentile
#: cough-logit error of 1.2-1.4 (two students), with 1024 0.38-0.52, the smallest of 256-4096
#: (``python -m acula.benchmarks.int8_tflite_calibration``, ``benchmarks/results/int8_tflite_calibration.md``)
CALIBRATION_WINDOWS = 256
TFLITE_CALIBRATION_WINDOWS = 1024


def calibration_sets(corpus_dir: Path, window_frames: int, counts: Sequence[int], seed: int = 0,
                     front: FrontendConfig | None = None, level: LevelShift | None = None) -> dict[int, np.ndarray]:
    """``n`` -> ``n`` dataset-balanced training crops, for each of ``counts``; each set drawn from its own
    generator seeded ``seed`` (so a set does not depend on the others), the corpus and its features read once;
    ``front``: the model's front end (None: the default configuration); ``level``: the bundle's level shift, the
    crops shifted by their own peak (``sdk.level.shift_crops``)."""
    corpus = load_corpus(corpus_dir)
    bank = FeatureBank.for_corpus(corpus, front, progress=False)
    idx = corpus.indices("train")
    weights = dataset_balanced_weights([corpus.rows[i]["dataset"] for i in idx])
    sets = {n: sample_batch(bank, idx, weights, n, window_frames, np.random.default_rng(seed))[1].astype(np.float32)
            for n in counts}
    return sets if level is None else {n: shift_crops(level, crops) for n, crops in sets.items()}


def calibration_windows(corpus_dir: Path, window_frames: int, n: int = CALIBRATION_WINDOWS,
                        seed: int = 0, front: FrontendConfig | None = None,
                        level: LevelShift | None = None) -> np.ndarray:
    return calibration_sets(corpus_dir, window_frames, (n,), seed, front, level)[n]


def run_model(path: Path, backend: str, windows: np.ndarray) -> np.ndarray:
    """Embeddings of an exported graph on ``windows``, through the SDK's runtime for ``backend``."""
    return make_backend(backend, path.read_bytes(), 1)(windows)[0]


def run_onnx(path: Path, windows: np.ndarray) -> np.ndarray:
    return run_model(path, "onnxruntime", windows)


@dataclass(frozen=True)
class ExportTarget:
    """One model file of a bundle: its name, the ``sdk.runtimes`` backend that runs it, its precision, and how it
    is written (student, path, int8 calibration windows, the files written so far by name) -> path; ``calibration``:
    how many calibration windows it is given."""

    file: str
    backend: str
    precision: str
    write: Callable[[StreamingStudent, Path, np.ndarray, dict[str, Path]], Path]
    calibration: int = CALIBRATION_WINDOWS

    @property
    def parity_key(self) -> str:
        """fp32: max abs difference to torch; int8: min cosine to ONNX fp32 (the manifest's parity keys)."""
        prefix = "onnx" if self.backend == "onnxruntime" else self.backend
        return f"{prefix}_{self.precision}_" + ("max_abs_diff" if self.precision == "fp32" else "min_cosine")


#: the model files ``acula export`` writes, in order (a target may read a file written before it)
EXPORT_TARGETS = (
    ExportTarget("student_fp32.onnx", "onnxruntime", "fp32", lambda s, p, calib, made: export_onnx_fp32(s, p)),
    ExportTarget("student_int8.onnx", "onnxruntime", "int8",
                 lambda s, p, calib, made: export_onnx_int8(made["student_fp32.onnx"], p, calib)),
    ExportTarget("student_fp32.tflite", "tflite", "fp32", lambda s, p, calib, made: export_tflite(s, p)),
    ExportTarget("student_int8.tflite", "tflite", "int8", lambda s, p, calib, made: export_tflite(s, p, calib),
                 TFLITE_CALIBRATION_WINDOWS),
)
#: the graph the SDK loads by default, whose cough probabilities the operating point is chosen on
DEFAULT_MODEL = "student_int8.onnx"


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


def validation_outputs(student: StreamingStudent, corpus_dir: Path, cough_model: Path | None = None,
                       front: FrontendConfig | None = None, level: LevelShift | None = None) -> ValOutputs:
    """Embeddings from the torch student on the cached (float16) features; cough probabilities from
    ``cough_model`` (an exported ONNX graph: the int8 one the SDK loads by default) on float32 features
    recomputed as the SDK computes them, so the operating point holds for what ships, or, without it, from
    the torch student on the cached features.  ``front``: the front end the student was trained on (None: the
    default configuration); features of another front end would calibrate a model the bundle does not ship.
    ``level``: the bundle's level shift, applied to every window as the SDK applies it."""
    corpus = load_corpus(corpus_dir)
    bank = FeatureBank.for_corpus(corpus, front, progress=False)
    out = ValOutputs([], [], [], [])
    session = None
    if cough_model is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(cough_model), providers=["CPUExecutionProvider"])
        frontend = LogMelFrontend(front)  # the configuration the feature bank uses
    with torch.no_grad():
        for i in corpus.indices("val"):
            feats = bank.get(i)
            crops = windows(feats, student.cfg.window_frames, student.cfg.hop_frames)
            if level is not None:
                crops = shift_cut_windows(level, feats, crops, student.cfg.hop_frames)
            emb, heads = student(torch.from_numpy(crops))
            if session is None:
                logits = heads[:, 0].numpy()
            else:
                exact_feats = record_features(corpus, i, frontend)
                exact = windows(exact_feats, student.cfg.window_frames, student.cfg.hop_frames).astype(np.float32)
                if level is not None:
                    exact = shift_cut_windows(level, exact_feats, exact, student.cfg.hop_frames)
                logits = np.asarray(session.run([OUTPUT_NAMES[1]], {INPUT_NAME: exact})[0])[:, 0]
            out.rows.append(corpus.rows[i])
            out.n_frames.append(feats.shape[0])
            out.embeddings.append(emb.numpy())
            out.cough_probs.append(1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
    return out


def manifest_label_sets(texts: list[str]) -> dict[str, dict[str, list[int]]]:
    """Each label set's prompt indices, sets and labels in the order the manifest stores them (its JSON is written
    with sorted keys) and so the order the SDK applies a set's per-label calibration bias in.  Fitting the bias in
    ``sdk/label_sets.json``'s order instead put each label's bias on another label (heart's sign flipped); bundles
    exported before 2026-12-03 were affected, ``python -m acula.export.refit`` refits one."""
    index = {t: i for i, t in enumerate(texts)}
    return {name: {label: [index[p] for p in labels[label]] for label in sorted(labels)}
            for name, labels in sorted(label_sets().items())}


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
                  signing_key: Any = None, level: LevelShift | None = None,
                  operating_point: str = "clean") -> dict[str, Any]:
    """``level``: the SDK scores the bundle on windows shifted to a running level, with the level-blind gate
    (``sdk.level``): calibration, the operating point and the int8 calibration crops are computed on such windows,
    and the manifest carries the ``level`` block.  ``operating_point``: the cough operating point's rule,
    ``clean`` (val recordings as recorded) or ``pooled`` (phone recordings also at 8 kHz and mu-law:
    ``export.operating_point.pooled_point``, on the bundle once written; then written again with it)."""
    if operating_point not in RULES:
        raise ValueError(f"operating_point must be one of {RULES}, got {operating_point!r}")
    student, meta = load_student(run)
    cfg = student.cfg
    front = FrontendConfig.from_dict(meta["frontend"])  # the features the student was trained on, everywhere below
    trained = DistillConfig.from_dict(meta["distill_config"]).level_shift() if "distill_config" in meta else None
    if trained is not None:  # trained on level-shifted crops: scored so (its own shift when no flag asks), or refused
        if level is None:
            level = trained
        elif (level.ref, level.range_db, level.history_frames, level.floor) != (
                trained.ref, trained.range_db, trained.history_frames, None):
            flags = f"--level-shift {trained.ref}" + (
                f" --level-range-db {trained.range_db}" if trained.range_db is not None else "")
            raise ValueError(f"{run} was trained on level-shifted crops (ref {trained.ref}, range_db "
                             f"{trained.range_db}, history {trained.history_frames} frames): export it with {flags}")
    if level is not None and waveform_graph:
        raise ValueError("a level-shifted bundle cannot carry the waveform graph: the running level needs the frames "
                         "before each window, which one window's waveform lacks")
    if level is not None:  # the floor cell keep_floor names, the relative floor's cell: in this front end's units
        level = level.for_front(front)
    calib = calibration_sets(corpus_dir, cfg.window_frames, sorted(
        {t.calibration for t in EXPORT_TARGETS if tflite or t.backend != "tflite"} | {CALIBRATION_WINDOWS}),
        front=front, level=level)
    check = calib[CALIBRATION_WINDOWS][:32]
    with torch.no_grad():
        ref = student(torch.from_numpy(check))[0].numpy()
    parity: dict[str, float] = {}
    files: dict[str, tuple[bytes, dict[str, Any]]] = {}
    io_sig = {"inputs": [{"name": INPUT_NAME, "shape": [1, cfg.window_frames, cfg.n_mels], "dtype": "float32"}],
              "outputs": [{"name": "embedding", "shape": [1, cfg.embed_dim]},
                          {"name": "heads", "shape": [1, max(1, len(cfg.heads))]}]}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        made: dict[str, Path] = {}
        fp32 = None
        for target in EXPORT_TARGETS:
            if target.backend == "tflite" and not tflite:
                continue
            path = made[target.file] = target.write(student, tmp / target.file, calib[target.calibration], made)
            out_check = run_model(path, target.backend, check)
            if target.precision == "fp32":
                fp32 = out_check if fp32 is None else fp32  # the first fp32 graph (ONNX): the int8 reference
                parity[target.parity_key] = float(np.max(np.abs(out_check - ref)))
            else:
                parity[target.parity_key] = cosine_min(out_check, fp32)
            files[target.file] = (path.read_bytes(), {"role": "student", "backend": target.backend,
                                                      "precision": target.precision, **io_sig})
        val = validation_outputs(student, corpus_dir, cough_model=made[DEFAULT_MODEL], front=front, level=level)
        if waveform_graph:
            from acula.export.waveform import INPUT_NAME as WAVE_INPUT
            from acula.export.waveform import check_windows, export_waveform_onnx

            wpath = export_waveform_onnx(student, front, tmp / "student_waveform_fp32.onnx")
            waves, logmel = check_windows(front, cfg.window_frames, cfg.hop_frames)
            with torch.no_grad():
                wref = student(torch.from_numpy(logmel))[0].numpy()
            parity["waveform_onnx_fp32_max_abs_diff"] = float(np.max(np.abs(run_onnx(wpath, waves) - wref)))
            files[wpath.name] = (wpath.read_bytes(), {
                "role": "waveform_student", "backend": "onnxruntime", "precision": "fp32",
                "inputs": [{"name": WAVE_INPUT, "shape": [1, int(waves.shape[1])], "dtype": "float32"}],
                "outputs": io_sig["outputs"]})
    prompts = np.load(Path(run) / "prompt_embeddings.npy") if Path(run).is_dir() else np.load(
        Path(run).parent / "prompt_embeddings.npy")
    texts = json.loads((Path(run) / "prompt_texts.json").read_text())
    sets = manifest_label_sets(texts)
    files["prompts.npy"] = (npy_bytes(prompts.astype(np.float32)), {"role": "prompt_bank"})
    manifest = {
        "name": out.stem, "frontend": meta["frontend"], "window_frames": cfg.window_frames,
        "hop_frames": cfg.hop_frames, "embed_dim": cfg.embed_dim,
        "prompt_bank": {"file": "prompts.npy", "texts": texts, "label_sets": sets},
        "heads": {name: {"index": i} for i, name in enumerate(cfg.heads)},
        "calibration": {"logit_scale": float(meta.get("logit_scale", 14.3)),
                        **calibrate_temperatures(val, prompts, float(meta.get("logit_scale", 14.3)), sets)},
        "screening": {**calibrate_screening(cfg.window_frames, cfg.hop_frames, val),
                      "probabilities_from": DEFAULT_MODEL},
        "provenance": {"student_run": str(run), "teacher_run": meta.get("teacher_run"),
                       "teacher_id": meta.get("teacher_id"), "corpus": str(corpus_dir), "git_commit": git_commit(),
                       "student_config": cfg.to_dict(), "distill_config": meta.get("distill_config"),
                       "student_parameters": sum(p.numel() for p in student.parameters()),
                       "parity": parity, "data": data_provenance(corpus_dir),
                       **({"teacher_bundle_sha256": meta["teacher_bundle_sha256"]}
                          if meta.get("teacher_bundle_sha256") else {})},
        "licence": LICENCE,
        **({"level": level.to_manifest()} if level is not None else {}),
    }
    if extra_manifest:
        manifest = {**manifest, **extra_manifest}
    if operating_point == "pooled":
        # screened by the SDK on a staged copy of the bundle, then written once to ``out``: the copy keeps a failed
        # screening from leaving a half-made bundle there, and it is never a packaged directory (sdk/models/NAME),
        # whose pinned digest names the bundle being replaced, not this one
        with tempfile.TemporaryDirectory(prefix="acula-export-") as stage:
            staged = write_bundle(Path(stage) / "bundle", files, manifest)
            manifest["screening"] = {**pooled_point(staged, corpus_dir), "probabilities_from": DEFAULT_MODEL}
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
    parser.add_argument("--level-shift", nargs="?", type=float, const=DEFAULT_REF, metavar="REF",
                        help="score on windows shifted so the loudest cell of the last 10 s sits at REF (normalised "
                             f"log-mel; default {DEFAULT_REF}), with the level-blind quality gate (sdk.level); for a "
                             "student trained on a low-floored front end (amin_power 1e-16).  A student trained on "
                             "shifted crops (DistillConfig.student_level_ref) gets its own shift without this flag "
                             "and refuses any other")
    parser.add_argument("--level-keep-floor", action="store_true",
                        help="with --level-shift: cells at the front end's floor (digital silence) stay there instead "
                             "of moving with the running level")
    parser.add_argument("--level-range-db", type=float, metavar="DB",
                        help="with --level-shift: a relative floor, cells more than DB under the reference level are "
                             "raised to it (near-silence reads the same at every gain; excludes --level-keep-floor)")
    parser.add_argument("--operating-point", choices=RULES, default="pooled",
                        help="the cough operating point's rule: pooled (the default since 2026-12-06: phone "
                             "recordings as recorded and as a phone call delivers them, 8 kHz and mu-law; steadier "
                             "between builds, benchmarks/results/selection_rule_operating_point.md) or clean (val "
                             "recordings as recorded)")
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
    if (args.level_keep_floor or args.level_range_db is not None) and args.level_shift is None:
        parser.error("--level-keep-floor and --level-range-db need --level-shift")
    if args.level_keep_floor and args.level_range_db is not None:
        parser.error("--level-keep-floor and --level-range-db exclude each other: silence lands on the relative floor")
    if args.level_range_db is not None and not args.level_range_db > 0:
        parser.error("--level-range-db must be > 0")
    # floor: a placeholder here; export_bundle puts the student's front end's floor cell in its place (for_front)
    level = None if args.level_shift is None else LevelShift(ref=args.level_shift,
                                                             floor=0.0 if args.level_keep_floor else None,
                                                             range_db=args.level_range_db)
    parity = export_bundle(Path(args.student), Path(args.corpus), out, args.zip, not args.no_tflite,
                           waveform_graph=args.waveform_graph, signing_key=key, level=level,
                           operating_point=args.operating_point)
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
