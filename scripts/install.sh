#!/usr/bin/env bash
# Install AcuLa Edge into ./.venv from the project's own files.
#
#   bash scripts/install.sh          # the SDK only (device-side: numpy, numba, onnxruntime, ...)
#   bash scripts/install.sh --all    # every extra: training, export, TFLite, TFLite Micro, audio capture, web page, dev tools
#
# As root on Debian/Ubuntu it first installs the system libraries: libportaudio2
# (sounddevice), libsndfile1 (soundfile falls back to it) and a C compiler (the
# firmware bridge's reference encoder is compiled by the tests); with --all also
# chromium (the web page's tests drive it headless) and, when npm is missing, nodejs and npm.
# --all then installs the web page's pinned onnxruntime-web (npm ci in sdk/web) and writes its
# model files (python -m acula.sdk.web.build).
# one brace group: bash reads the whole body before running it, so an edit while it runs changes nothing
{
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [ "${1:-}" = "--all" ]; then
  extras="[train,export,text,tflite,mcu,audio,search,plot,serial,sign,web,dev]"
fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libportaudio2 libsndfile1 libasound2-plugins alsa-utils gcc >/dev/null
  if [ -n "$extras" ]; then
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
if [ -n "$extras" ]; then
  if command -v npm >/dev/null 2>&1; then
    (cd sdk/web && npm ci --no-audit --no-fund --loglevel=error)
    .venv/bin/python -m acula.sdk.web.build --force
  else
    echo "npm not found: the web page (sdk/web) is not installed and tests/test_web.py will skip" >&2
  fi
fi
echo "installed into .venv: $(.venv/bin/python -c 'from acula import sdk; print("acula-edge", sdk.__version__)')"
exit
}
