#!/usr/bin/env bash
# Regenerates benchmarks/results/align_seeds.{md,json}: the (iii) CKA+InfoNCE+mask preset aligned with three seeds
# (0 is the run of scripts/align_experiments.sh; 1 and 2 from configs/align/cka-nce-mask-seed{1,2}.json), so the
# run-to-run spread of every figure in the alignment table can be read off.  Zero-shot is also shown per split.
#   bash scripts/align_seeds.sh [DATA_DIR] [WORK_DIR]
# About 30 minutes on a 2-core CPU once scripts/align_experiments.sh has built the corpus and seed 0.
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
work=${2:-runs}
py=.venv/bin/python
[ -f "$work/corpus/manifest.jsonl" ] || $py -m acula corpus build --data "$data" --out "$work/corpus"
[ -f "$work/align-cka-nce-mask-cpu/last.json" ] || \
  $py -m acula align --config cka-nce-mask-cpu --corpus "$work/corpus" --out "$work/align-cka-nce-mask-cpu"
for seed in 1 2; do
  $py -m acula align --config configs/align/cka-nce-mask-seed$seed.json --corpus "$work/corpus" \
    --out "$work/align-cka-nce-mask-seed$seed"
done
$py -m acula.aligner.evaluate --corpus "$work/corpus" --peers \
  --run "(iii) seed 0 (preset)=$work/align-cka-nce-mask-cpu" \
  --run "(iii) seed 1=$work/align-cka-nce-mask-seed1" \
  --run "(iii) seed 2=$work/align-cka-nce-mask-seed2" \
  --probe-train-splits train --out benchmarks/results --name align_seeds
exit
}
