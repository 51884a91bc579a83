#!/usr/bin/env bash
# Install AcuLa Edge into ./.venv from the project's own files.
#
#   bash scripts/install.sh          # the SDK only (device-side: numpy, numba, onnxruntime, ...)
#   bash scripts/install.sh --all    # every extra: training, export, TFLite, TFLite Micro, audio capture, dev tools
#
# As root on Debian/Ubuntu it first installs the system libraries: libportaudio2
# (sounddevice), libsndfile1 (soundfile falls back to it) and a C compiler (the
# firmware bridge's reference encoder is compiled by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [ "${1:-}" = "--all" ]; then
  extras="[train,export,tflite,mcu,audio,plot,serial,dev]"
fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libportaudio2 libsndfile1 libasound2-plugins alsa-utils gcc >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "installed into .venv: $(.venv/bin/python -c 'import sdk; print("acula-edge", sdk.__version__)')"
