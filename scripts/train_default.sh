#!/usr/bin/env bash
# Trains the default model shipped in sdk/models/default with the project's own pipeline:
#   corpus -> align (mn04 from AudioSet, CKA + InfoNCE + masked modelling + the supervised heads as an extra
#   loss, all-MiniLM-L6-v2 teacher, level augmentation +-24 dB: configs/align/sup-heads-gain24.json) -> distill
#   (streaming student on the front end floored at -160 dB, level augmentation +-24 dB, trained on crops shifted
#   to their running level with a relative floor 130 dB under it, the training labels on its zero-shot scores, and half
#   the heart crops heard through a 1-2 kHz stethoscope low-pass by the student alone:
#   configs/distill/gain24-lowfloor-shift-label-slph.json)
#   -> export (ONNX + TFLite, fp32 + int8, level-blind: the student's own shift, sdk.level; the cough operating point
#   by the pooled rule, phone recordings also at 8 kHz and mu-law: benchmarks/results/selection_rule_operating_point.md)
#   -> sdk/models/default
#
#   bash scripts/train_default.sh [DATA_DIR] [WORK_DIR] [BUNDLE_DIR]
#
# Fixed seeds, one thread per pool (the default was trained so; the thread count changes float sums, and so does
# the CPU: the shipped files were built on the AMD EPYC that runs this project's checks (teacher
# runs/default-gain24/align, student runs/gain24-lowfloor-shift-label-slph/distill, both Zen 5); another CPU rounds
# differently,
# benchmarks/results/README.md); every
# step's log and metrics stay in WORK_DIR (default runs/default).  BUNDLE_DIR (default sdk/models/default) lets
# a check run write elsewhere and compare.  16 minutes on this 2-core CPU on 2026-12-06 (corpus 1.2, align 6.6,
# distill 8, export 0.5; `bash scripts/train_default.sh ../shared/data runs/default-check /tmp/default-check`), and
# its files equal sdk/models/default byte for byte (manifest name and provenance aside).
# ALIGN_CONFIG and DISTILL_CONFIG (environment; paths from the repository root) name other recipes, so a candidate
# is built by this same script; with either set, WORK_DIR and BUNDLE_DIR must be given (never the default's).
# KD_ALIGN_CONFIGS (space-separated alignment configs) aligns further KD teachers first (see the distill step); it
# too is a candidate recipe, so WORK_DIR and BUNDLE_DIR must be given.  A distillation config with a head_teacher has
# the supervised control aligned first (HEAD_ALIGN_CONFIG, default the supervised-cpu preset; set, it too is a
# candidate recipe) and passed as --head-teacher.
# Why sup-heads: benchmarks/results/selection_rule_neutral.md; why +-24 dB in both stages (gain24-both, the
# default since 2026-12-03): benchmarks/results/selection_rule_gain24_bw.md; why the level-blind student
# (gain24-lowfloor-shift, the default since 2026-12-05): benchmarks/results/selection_rule_gain24_lowfloor_shift.md;
# why the label term in distillation (gain24-lowfloor-shift-label, the default since 2026-12-06):
# benchmarks/results/selection_rule_gain24_lowfloor_shift_label.md; why the heart-only stethoscope low-pass
# (gain24-lowfloor-shift-label-slph, the default since 2026-12-06 (12)):
# benchmarks/results/selection_rule_gain24_lowfloor_shift_label_slph_fresh.md.
# The packaged bundle's operating point was chosen again by the pooled rule on 2026-12-06 (python -m
# acula.export.operating_point; files unchanged, 0.71 -> 0.86); this script's export chooses it so directly.
# The distillation computes the corpus's -160 dB features once (features_<hash>.npy beside the corpus).
# The body is one brace group, so bash reads the whole file before it runs a step: editing this file while a
# training runs cannot change what the running script does next.
{
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
work=${2:-runs/default}
bundle=${3:-sdk/models/default}
if [ -n "${ALIGN_CONFIG:-}${DISTILL_CONFIG:-}${KD_ALIGN_CONFIGS:-}${HEAD_ALIGN_CONFIG:-}" ] && { [ $# -lt 3 ] || [ "$bundle" -ef sdk/models/default ]; }; then
  echo "train_default.sh: with ALIGN_CONFIG, DISTILL_CONFIG, KD_ALIGN_CONFIGS or HEAD_ALIGN_CONFIG set, give DATA_DIR WORK_DIR BUNDLE_DIR, and a" \
    "BUNDLE_DIR other than sdk/models/default (a candidate never overwrites the shipped default)" >&2
  exit 2
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
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
$py -m acula align --config "${ALIGN_CONFIG:-configs/align/sup-heads-gain24.json}" --corpus "$work/corpus" --out "$work/align" 2>&1 \
  | quiet | tee "$work/logs/align.log"
# further KD teachers (a distillation config with kd_teachers): KD_ALIGN_CONFIGS names their alignment configs,
# each aligned here into WORK_DIR/align-kdN and passed to distill, replacing the config's own kd_teachers paths
kd=()
n=0
for cfg in ${KD_ALIGN_CONFIGS:-}; do
  n=$((n + 1))
  step "align KD teacher $n ($cfg)"
  $py -m acula align --config "$cfg" --corpus "$work/corpus" --out "$work/align-kd$n" 2>&1 \
    | quiet | tee "$work/logs/align-kd$n.log"
  kd+=(--kd-teacher "$work/align-kd$n")
done
dcfg=${DISTILL_CONFIG:-configs/distill/gain24-lowfloor-shift-label-slph.json}
# a head teacher (a distillation config with head_teacher): the supervised control, aligned here into
# WORK_DIR/align-head with HEAD_ALIGN_CONFIG (default the supervised-cpu preset, scripts/train_control.sh's) and
# passed to distill in place of the config's own head_teacher path
head=()
# its own line, so set -e stops the script if the config cannot be read (a test inside [ ] would swallow that)
head_teacher=$($py -c "import sys; from acula.distill.train import resolve; print(resolve(sys.argv[1]).head_teacher or '')" "$dcfg")
if [ -z "$head_teacher" ] && [ -n "${HEAD_ALIGN_CONFIG:-}" ]; then
  echo "train_default.sh: HEAD_ALIGN_CONFIG is set but $dcfg has no head_teacher: nothing would use it" >&2
  exit 2
fi
if [ -n "$head_teacher" ]; then
  step "align head teacher (${HEAD_ALIGN_CONFIG:-supervised-cpu})"
  $py -m acula align --config "${HEAD_ALIGN_CONFIG:-supervised-cpu}" --corpus "$work/corpus" --out "$work/align-head" 2>&1 \
    | quiet | tee "$work/logs/align-head.log"
  head=(--head-teacher "$work/align-head")
fi
step distill
$py -m acula distill --config "$dcfg" --teacher "$work/align" --corpus "$work/corpus" --out "$work/distill" \
  ${kd[@]+"${kd[@]}"} ${head[@]+"${head[@]}"} 2>&1 | quiet | tee "$work/logs/distill.log"
step export
$py -m acula export --student "$work/distill" --corpus "$work/corpus" --out "$bundle" -f 2>&1 \
  | grep -vE "^I0000|^W0000|WARNING|absl|oneDNN" | tee "$work/logs/export.log"
step done
$py -m acula info "$bundle"
exit
}
