#!/usr/bin/env bash
# Regenerates benchmarks/results/align_eval.{md,json}: corpus -> four alignment runs -> evaluation table.
#   bash scripts/align_experiments.sh [DATA_DIR] [WORK_DIR]
# About 80 minutes on a 2-core CPU.
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
work=${2:-runs}
py=.venv/bin/python
[ -f "$work/corpus/manifest.jsonl" ] || $py -m acula corpus build --data "$data" --out "$work/corpus"
for cfg in default-cpu cka-nce-mask-cpu nce-cpu gap-cpu; do
  $py -m acula align --config "$cfg" --corpus "$work/corpus" --out "$work/align-$cfg"
done
aligned=(--run "(ii) AcuLa CKA+mask=$work/align-default-cpu"
         --run "(iii) CKA+InfoNCE+mask=$work/align-cka-nce-mask-cpu"
         --run "(iv) InfoNCE only=$work/align-nce-cpu"
         --run "(ii) with global average pooling=$work/align-gap-cpu")
$py -m acula.aligner.evaluate --corpus "$work/corpus" --peers mfcc yamnet mn04 \
  "${aligned[@]}" \
  --probe-train-splits train --out benchmarks/results --name align_eval
# The same aligned encoders scored with the prompt table before negated findings were dropped
# ('no crackles' / 'no wheezes' as negatives; python -m acula.aligner.reports --negation shows why they were dropped)
$py -m acula.aligner.evaluate --corpus "$work/corpus" --peers --prompts configs/prompts/negated-findings.json \
  "${aligned[@]}" \
  --out benchmarks/results --name align_eval_negated_prompts
# (iii) with the old and new prompt tables on each held-out split alone: the change was decided on val
for split in val test; do
  for table in negated-findings current; do
    $py -m acula.aligner.evaluate --corpus "$work/corpus" --peers --splits $split \
      $([ "$table" = current ] || echo --prompts configs/prompts/$table.json) \
      --run "(iii) CKA+InfoNCE+mask, $table prompts=$work/align-cka-nce-mask-cpu" \
      --out benchmarks/results --name prompts_${split}_$table
  done
done
# A gentler encoder learning rate (configs/align/cka-nce-mask-lowlr.json) against the (iii) preset
$py -m acula align --config configs/align/cka-nce-mask-lowlr.json --corpus "$work/corpus" --out "$work/align-cka-nce-mask-lowlr"
$py -m acula.aligner.evaluate --corpus "$work/corpus" --peers mn04 \
  --run "(iii) encoder lr 3e-4 (preset)=$work/align-cka-nce-mask-cpu" \
  --run "(iii) encoder lr 1e-4=$work/align-cka-nce-mask-lowlr" \
  --probe-train-splits train --out benchmarks/results --name align_encoder_lr
exit
}
