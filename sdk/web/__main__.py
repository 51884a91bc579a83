"""``python -m acula.sdk.web``: serve the page on this machine (http://localhost:8000/index.html by default).

    python -m acula.sdk.web.build            # once: the model files the page loads (sdk/web/model)
    python -m acula.sdk.web [--port 8000] [--model sdk/web/model] [--host 127.0.0.1]

The microphone and the page's hash checks need a secure context: open it on localhost, or on a phone through
a tunnel that keeps it local (``adb reverse tcp:8000 tcp:8000`` on Android, then http://localhost:8000/), or
serve the folder over https.  The server only hands out the page's files; nothing is uploaded to it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from acula.sdk.web.build import DEFAULT_OUT
from acula.sdk.web.harness import ORT_DIST, WEB_ROOT, serve


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m acula.sdk.web", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path, default=DEFAULT_OUT, help="folder written by python -m acula.sdk.web.build")
    args = p.parse_args(argv)
    if not (args.model / "model.json").is_file():
        print(f"error: {args.model} has no model.json; run 'python -m acula.sdk.web.build --out {args.model}'",
              file=sys.stderr)
        return 1
    if not (ORT_DIST / "ort.wasm.min.mjs").is_file():
        print(f"error: onnxruntime-web is not installed; run 'npm ci' in {WEB_ROOT}", file=sys.stderr)
        return 1
    with serve(args.model, args.host, args.port) as url:
        print(f"serving {url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
