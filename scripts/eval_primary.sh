#!/usr/bin/env bash
# The primary evaluation table (benchmarks/results/primary.{md,json}) for every system, with the invariance
# suite.  Runs: RUNS/align-<preset> from `acula align --config <preset>` (cka-nce-mask-cpu is the teacher
# scripts/train_default.sh trains; default-cpu is the paper's CKA + mask; supervised-cpu is
# scripts/train_control.sh):
#   bash scripts/eval_primary.sh [CORPUS] [RUNS]
# Per-record outputs are cached under RUNS/eval_cache; a cold run takes about 2 h on a 2-core CPU (the student
# under 16 transforms ~45 min, YAMNet ~30 min), a warm one a few minutes (the probes).
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
runs=${2:-runs}
# one BLAS / OpenMP thread a process: threads that spin on a busy core cost more than they bring here
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
sub=gain-24,gain-40,peak-1,mulaw8k,lp1k,noise10,bell
.venv/bin/python -m acula.aligner.primary --corpus "$corpus" --cache "$runs/eval_cache" \
  --peers mfcc yamnet mn04 \
  --run "(ii) AcuLa CKA+mask=$runs/align-default-cpu" \
  --run "(iii) CKA+InfoNCE+mask=$runs/align-cka-nce-mask-cpu" \
  --run "(iv) InfoNCE only=$runs/align-nce-cpu" \
  --run "supervised control=$runs/align-supervised-cpu" \
  --bundle "student int8 ONNX=default:onnxruntime:int8" \
  --bundle "student fp32 ONNX=default:onnxruntime:fp32" \
  --bundle "student int8 TFLite=default:tflite:int8" \
  --transforms gain-6 gain-12 gain-24 gain-40 peak-1 phone8k mulaw8k opus lp2k lp1k noise20 noise10 hum50 hum60 bell diaphragm \
  --invariance-systems "student int8 ONNX" "YAMNet=$sub" "mn04 AudioSet" "supervised control" \
  --control "supervised control" --out benchmarks/results --name primary
exit
}
