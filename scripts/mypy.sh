#!/usr/bin/env bash
# mypy over the packages by their installed names (acula.sdk, ...).
#
#   bash scripts/mypy.sh                        # the device side, acula.sdk (what CI checks)
#   bash scripts/mypy.sh -p acula.firmware_bridge
#
# mypy does not follow the __path__ that acula/__init__.py extends in a checkout: read as `mypy sdk`, every
# `from acula.sdk...` import would be unresolved and typed Any, silently.  So mypy reads the folders through
# links laid out like the wheel, build/mypy/acula/sdk -> sdk/ and so on.  MYPY names the mypy to run.
set -euo pipefail
cd "$(dirname "$0")/.."

tree=build/mypy/acula
rm -rf build/mypy
mkdir -p "$tree"
ln -s ../../../acula/__init__.py ../../../acula/__main__.py "$tree/"
for pkg in sdk aligner distill export firmware_bridge benchmarks; do
  ln -s "../../../$pkg" "$tree/$pkg"
done
[ "$#" -gt 0 ] || set -- -p acula.sdk
MYPYPATH=build/mypy "${MYPY:-.venv/bin/mypy}" "$@"
