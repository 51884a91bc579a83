#!/usr/bin/env bash
# The supervised control of the primary evaluation: mn04 from AudioSet with supervised heads (cough, heart
# abnormal, crackles, wheezes, COPD; aligner/supervised.py) on the same training records, steps, augmentations
# and masked term as the aligned teacher (iii) of scripts/train_default.sh.
#   bash scripts/train_control.sh [CORPUS] [RUNS]
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-runs/corpus}
runs=${2:-runs}
[ -f "$corpus/manifest.jsonl" ] || .venv/bin/python -m acula corpus build --data ../shared/data --out "$corpus"
.venv/bin/python -m acula align --config supervised-cpu --corpus "$corpus" --out "$runs/align-supervised-cpu"
exit
}
