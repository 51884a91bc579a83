#!/usr/bin/env bash
# The packaged default under the primary protocol (benchmarks/results/primary_default.{md,json}): the peers
# (MFCC statistics, YAMNet, the unaligned AudioSet mn04), the supervised control (its run: `acula align --config
# supervised-cpu --corpus runs/corpus --out runs/align-supervised-cpu`, about 18 minutes), the bundle's three graphs
# paired against mn04 and against the control, and the student's invariance suite.  scripts/eval_primary.sh adds
# the alignment runs of the teacher objectives.
#   bash scripts/eval_default.sh [CORPUS] [RUNS]
# Per-record outputs are cached under RUNS/eval_cache; about 50 minutes cold on a 2-core CPU.
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
runs=${2:-runs}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m acula.aligner.primary --corpus "$corpus" --cache "$runs/eval_cache" \
  --peers mfcc yamnet mn04 \
  --run "supervised control=$runs/align-supervised-cpu" --control "supervised control" \
  --bundle "student int8 ONNX=default:onnxruntime:int8" \
  --bundle "student fp32 ONNX=default:onnxruntime:fp32" \
  --bundle "student int8 TFLite=default:tflite:int8" \
  --transforms gain-6 gain-12 gain-24 gain-40 peak-1 phone8k mulaw8k opus lp2k lp1k noise20 noise10 hum50 hum60 bell diaphragm \
  --invariance-systems "student int8 ONNX" --threads 1 --out benchmarks/results --name primary_default
exit
}
