#!/usr/bin/env bash
# Trains the default model shipped in sdk/models/default with the project's own pipeline:
#   corpus -> align (mn04 from AudioSet, CKA + InfoNCE + masked modelling, all-MiniLM-L6-v2 teacher)
#   -> distill (streaming student) -> export (ONNX + TFLite, fp32 + int8) -> sdk/models/default
#
#   bash scripts/train_default.sh [DATA_DIR] [WORK_DIR]
#
# Fixed seeds; every step's log and metrics stay in WORK_DIR (default runs/default).  About 20-45 minutes
# on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
work=${2:-runs/default}
py=.venv/bin/python
mkdir -p "$work/logs"
step() { echo "== $1 ($(date -u +%H:%M:%S))"; }
# progress bars (tqdm: "NN%|") are dropped from the console and the logs; metrics stay in each run's metrics.jsonl
quiet() { tr '\r' '\n' | grep -vE "[0-9]+%\||[0-9]+[a-z]* \[[0-9]+:[0-9]+" || true; }
step corpus
if [ ! -f "$work/corpus/manifest.jsonl" ]; then
  $py -m acula corpus build --data "$data" --out "$work/corpus" 2>&1 | quiet | tee "$work/logs/corpus.log"
fi
step align
$py -m acula align --config cka-nce-mask-cpu --corpus "$work/corpus" --out "$work/align" 2>&1 \
  | quiet | tee "$work/logs/align.log"
step distill
$py -m acula distill --teacher "$work/align" --corpus "$work/corpus" --out "$work/distill" 2>&1 \
  | quiet | tee "$work/logs/distill.log"
step export
$py -m acula export --student "$work/distill" --corpus "$work/corpus" --out sdk/models/default -f 2>&1 \
  | grep -vE "^I0000|^W0000|WARNING|absl|oneDNN" | tee "$work/logs/export.log"
step done
$py -m acula info sdk/models/default
