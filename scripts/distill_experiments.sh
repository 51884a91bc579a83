#!/usr/bin/env bash
# Regenerates benchmarks/results/distill_experiments.{md,json}: distillation variants of the default teacher
# (configs/distill/*.json), each exported and evaluated beside the shipped default with the same scoring rule.
#   bash scripts/distill_experiments.sh [CORPUS_DIR] [TEACHER_RUN]
# Needs runs/default/align (scripts/train_default.sh).  About 12 minutes a variant on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
teacher=${2:-runs/default/align}
py=.venv/bin/python
bundles=(--bundle "shipped default (wide, bottleneck 112, kd 2 per label set, 6000 steps)=sdk/models/default:onnxruntime:fp32")
for cfg in configs/distill/*.json; do
  name=$(basename "$cfg" .json)
  work=runs/distill-exp/$name
  $py -m acula distill --teacher "$teacher" --corpus "$corpus" --config "$cfg" --out "$work/distill"
  $py -m acula export --student "$work/distill" --corpus "$corpus" --out "$work/bundle" -f > "$work/export.log" 2>&1
  bundles+=(--bundle "$name=$work/bundle:onnxruntime:fp32")
done
$py -m acula.aligner.evaluate --corpus "$corpus" --peers --prompt-run "$teacher" "${bundles[@]}" \
  --out benchmarks/results --name distill_experiments
# Selection on the validation split alone (test records never consulted): the narrow student that was the
# default before, two 6,000-step variants (the wide one is now the default-cpu preset) and the teacher.  Written to
# benchmarks/results/distill_selection_val.{md,json}.
$py -m acula.aligner.evaluate --corpus "$corpus" --peers --prompt-run "$teacher" --run "teacher (iii)=$teacher" \
  --bundle "narrow-kd1-3000 (previous default)=runs/distill-exp/narrow-kd1-3000/bundle:onnxruntime:fp32" \
  --bundle "kd2-6000=runs/distill-exp/kd2-6000/bundle:onnxruntime:fp32" \
  --bundle "wide-r112-kd2-6000=runs/distill-exp/wide-r112-kd2-6000/bundle:onnxruntime:fp32" \
  --splits val --probe-train-splits train --out benchmarks/results --name distill_selection_val
