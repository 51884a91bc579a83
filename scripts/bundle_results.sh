#!/usr/bin/env bash
# Regenerates the bundle figures in benchmarks/results/ and the README / model card sections built from them:
# distillation retention (with the peers in the same run), cough screening on held-out recordings, SDK latency, front end, bridge decoder.
#   bash scripts/bundle_results.sh [CORPUS_DIR]      (default runs/corpus, from 'acula corpus build')
# TEACHER_RUN (environment) overrides the teacher run read from the packaged bundle's provenance.
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
py=.venv/bin/python
res=benchmarks/results
# the packaged default's own aligned teacher (its manifest's provenance names the run)
teacher=${TEACHER_RUN:-$($py -c "import json; print(json.load(open('sdk/models/default/manifest.json'))['provenance']['teacher_run'])")}
$py -m acula.aligner.evaluate --corpus "$corpus" --peers mfcc yamnet mn04 --prompt-run "$teacher" \
  --run "teacher (iii) CKA+InfoNCE+mask=$teacher" \
  --bundle "student fp32 (ONNX)=sdk/models/default:onnxruntime:fp32" \
  --bundle "student int8 (ONNX)=sdk/models/default:onnxruntime:int8" \
  --bundle "student int8 (TFLite)=sdk/models/default:tflite:int8" \
  --probe-train-splits train --out "$res" --name retention 2>&1 | grep -v "clip/s\]"
$py -m acula.benchmarks.cough_screening --corpus "$corpus" --json "$res/cough_screening.json"
$py -m acula.benchmarks.cough_screening --corpus "$corpus" --splits val --json "$res/cough_screening_val.json"
# the same test recordings through the fp32 graph (the operating point was chosen on int8 probabilities)
$py -m acula.benchmarks.cough_screening --corpus "$corpus" --precision fp32 --json "$res/cough_screening_fp32.json"
# all of the shared data, training split included (the model saw those recordings): false alarms per hour
$py -m acula.benchmarks.cough_screening --corpus "$corpus" --splits train val test --json "$res/cough_screening_all_splits.json"
$py -m acula.benchmarks.sdk_latency --json "$res/sdk_latency.json" --histogram "$res/sdk_latency_hist.png" || true
$py -m acula.benchmarks.frontend --json "$res/frontend.json" || true
$py -m acula.benchmarks.bridge_decoder --json "$res/bridge_decoder.json"
$py -m acula.benchmarks.readme
$py -m acula.benchmarks.model_card
exit
}
