#!/usr/bin/env bash
# Regenerates benchmarks/results/align_eval.{md,json}: corpus -> four alignment runs -> evaluation table.
#   bash scripts/align_experiments.sh [DATA_DIR] [WORK_DIR]
# About 60 minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
work=${2:-runs}
py=.venv/bin/python
[ -f "$work/corpus/manifest.jsonl" ] || $py -m sdk corpus build --data "$data" --out "$work/corpus"
for cfg in default-cpu cka-nce-mask-cpu nce-cpu gap-cpu; do
  $py -m sdk align --config "$cfg" --corpus "$work/corpus" --out "$work/align-$cfg"
done
$py -m aligner.evaluate --corpus "$work/corpus" --peers mfcc yamnet mn04 \
  --run "(ii) AcuLa CKA+mask=$work/align-default-cpu" \
  --run "(iii) CKA+InfoNCE+mask=$work/align-cka-nce-mask-cpu" \
  --run "(iv) InfoNCE only=$work/align-nce-cpu" \
  --run "(ii) with global average pooling=$work/align-gap-cpu" \
  --probe-train-splits train --out benchmarks/results --name align_eval
# A gentler encoder learning rate (configs/align/cka-nce-mask-lowlr.json) against the (iii) preset
$py -m sdk align --config configs/align/cka-nce-mask-lowlr.json --corpus "$work/corpus" --out "$work/align-cka-nce-mask-lowlr"
$py -m aligner.evaluate --corpus "$work/corpus" --peers mn04 \
  --run "(iii) encoder lr 3e-4 (preset)=$work/align-cka-nce-mask-cpu" \
  --run "(iii) encoder lr 1e-4=$work/align-cka-nce-mask-lowlr" \
  --probe-train-splits train --out benchmarks/results --name align_encoder_lr
