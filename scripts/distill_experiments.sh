#!/usr/bin/env bash
# Distillation variants of the default teacher (configs/distill/*.json), each distilled, exported and scored
# beside the shipped student under the primary protocol (aligner/primary.py, `acula eval-primary`: probe fit on
# the training split, patient-bootstrap intervals, paired differences against the shipped student).
#   bash scripts/distill_experiments.sh [CORPUS_DIR] [TEACHER_RUN] [RUNS]
# Writes benchmarks/results/distill_selection_primary_val.{md,json}: the validation split alone, because a
# variant is chosen there; test records are scored only for the chosen student, by scripts/eval_primary.sh
# (primary.md).  Needs TEACHER_RUN (scripts/train_default.sh).  About 12 minutes a variant on a 2-core CPU to
# distil and export; per-record outputs are cached under RUNS/eval_cache.
#
# distill_experiments.md and distill_selection_val.md in benchmarks/results/ are the older held-out-probe tables
# of `aligner.evaluate` (the experiment log of benchmarks/results/README.md); this script no longer writes them.
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
teacher=${2:-runs/default/align}
runs=${3:-runs}
py=.venv/bin/python
# one BLAS / OpenMP thread a process, as in scripts/eval_primary.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
shipped="shipped student int8 ONNX"
bundles=(--bundle "$shipped=default:onnxruntime:int8")
for cfg in configs/distill/*.json; do
  name=$(basename "$cfg" .json)
  work=$runs/distill-exp/$name
  $py -m acula distill --teacher "$teacher" --corpus "$corpus" --config "$cfg" --out "$work/distill"
  $py -m acula export --student "$work/distill" --corpus "$corpus" --out "$work/bundle" -f > "$work/export.log" 2>&1
  bundles+=(--bundle "$name int8 ONNX=$work/bundle:onnxruntime:int8")
done
$py -m acula.aligner.primary --corpus "$corpus" --cache "$runs/eval_cache" --scored val --peers \
  --run "teacher (iii) CKA+InfoNCE+mask=$teacher" "${bundles[@]}" --baseline "$shipped" \
  --out benchmarks/results --name distill_selection_primary_val
exit
}
