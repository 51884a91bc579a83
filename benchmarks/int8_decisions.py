"""Do a bundle's int8 graphs make the cough decisions its fp32 graphs make?  A shipping check for candidates.

    python -m acula.benchmarks.int8_decisions [--bundle runs/bundle-X] [--data ../shared/data] [--json [OUT]]

For every runtime whose int8 student agrees with fp32 on the SDK's probe windows (``sdk.precision``: the ones
``precision="auto"`` may pick), screen real recordings with both precisions and compare, at the bundle's own
operating point, the events and each window's side of the threshold.  The recordings: the 9 CC BY coughs of
``smith2006_cough`` (outside the corpus), 8 Coswara heavy coughs and every 80th ESC-10 clip, as
``tests/test_precision.py`` checks for the packaged default.  Exit status 1 when any decision differs.

A decision differs when the events differ (count, start or end), when a window is scored at one precision only
or not finite, or when a window changes side while either precision's cough logit lies more than
``UNDECIDED_LOGIT`` from the operating point's.  A side change with both closer than that is within the int8
graphs' own error on validation cough windows (99th percentile 0.38-0.52 logit for the TFLite writer,
``int8_tflite_calibration.md``; 0.48 over all windows for onnxruntime's, ``int8_export.md``): no int8 graph
decides such a window reliably, so its flip is listed (``near_threshold``) and not counted.  Until 2026-12-03 every side
change counted; three candidates failed on one window each, 0.10-0.23 logit from the threshold.

Issue 26 asks that the operating point decide the same on both; ``invariant24-self-half``
(``benchmarks/results/selection_rule_invariant24.md``) passed its validation rule and failed this, so a
candidate runs it before it replaces the default.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acula.benchmarks._util import command_parser

#: a window whose cough logit, at both precisions, is within this of the operating point's is undecided at int8
UNDECIDED_LOGIT = 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def side_changes(fp32: Sequence[float | None], int8: Sequence[float | None], on: float
                 ) -> tuple[bool, list[dict[str, Any]]]:
    """Per-window cough probabilities of one recording at both precisions -> (a decisive difference, the side
    changes that are not).  Decisive: a different window count, a window scored at one precision only, a
    non-finite probability, or a side change where either precision's logit is more than ``UNDECIDED_LOGIT`` from
    the operating point's (both inside: listed, not counted)."""
    decisive, near = len(fp32) != len(int8), []
    for k, (pa, pb) in enumerate(zip(fp32, int8, strict=False)):
        if (pa is None) != (pb is None):
            decisive = True
        elif pa is None or pb is None:
            continue
        elif not (math.isfinite(pa) and math.isfinite(pb)):
            decisive = True
        elif (pa >= on) != (pb >= on):
            da, db = abs(_logit(pa) - _logit(on)), abs(_logit(pb) - _logit(on))
            if max(da, db) > UNDECIDED_LOGIT:
                decisive = True
            else:
                near.append({"window": k, "fp32": round(pa, 4), "int8": round(pb, 4),
                             "fp32_logit_margin": round(da, 3)})
    return decisive, near


def recordings(data: Path) -> list[Path]:
    files = sorted((data / "smith2006_cough" / "audio").glob("*.flac"))
    files += sorted((data / "coswara").rglob("cough-heavy*.flac"))[:8]
    files += sorted((data / "esc10").rglob("*.ogg"))[::80]
    return files


def usable_int8_backends(bundle: Any) -> list[str]:
    """Runtimes here whose int8 student agrees with fp32 on the probe windows (the ones auto may pick)."""
    from acula.sdk import precision as prec
    from acula.sdk.runtimes import BackendUnavailable, make_backend

    usable = []
    for name in ("onnxruntime", "tflite"):
        try:
            built = {p: make_backend(name, bundle.files[bundle.model_file(name, p)[0]]) for p in ("int8", "fp32")}
        except (BackendUnavailable, KeyError):
            continue
        if prec.int8_agreement(built["int8"], built["fp32"], prec.probe_windows(bundle)) >= prec.INT8_MIN_COSINE:
            usable.append(name)
    return usable


def compare(bundle: str, files: Sequence[Path]) -> dict[str, Any]:
    """Per usable runtime: the recordings screened, those whose decisions differ (with both peaks) and the windows
    that changed side within ``UNDECIDED_LOGIT`` of the operating point."""
    from acula import sdk

    base = sdk.load(bundle, precision="fp32").bundle
    out: dict[str, Any] = {"bundle": bundle, "digest": base.sha256, "runtimes": {}}
    for backend in usable_int8_backends(base):
        fp32 = sdk.load(bundle, backend=backend, precision="fp32")
        int8 = sdk.load(bundle, backend=backend, precision="int8")
        on, n, differ, near, n_windows = fp32.screening.on, 0, [], [], 0
        for path in files:
            try:
                clip = sdk.load_audio(path, target_rate_hz=None)
            except sdk.AudioError:
                continue
            a, b = fp32.screen(clip.samples, clip.sample_rate_hz), int8.screen(clip.samples, clip.sample_rate_hz)
            n += 1
            same_events = [(e.start_s, e.end_s) for e in a.events] == [(e.start_s, e.end_s) for e in b.events]
            decisive, flips = side_changes([w.cough_probability for w in a.windows],
                                           [w.cough_probability for w in b.windows], on)
            n_windows += len(a.windows)
            near += [{"path": str(path), **f} for f in flips]
            if not same_events or decisive:
                peak = [max((w.cough_probability or 0.0) for w in r.windows) if r.windows else 0.0 for r in (a, b)]
                differ.append({"path": str(path), "fp32_peak": round(peak[0], 4), "int8_peak": round(peak[1], 4),
                               "fp32_events": len(a.events), "int8_events": len(b.events)})
        out["runtimes"][backend] = {"operating_point": on, "recordings": n, "windows": n_windows, "differ": differ,
                                    "near_threshold": near}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.int8_decisions", __doc__, argv)
    parser.add_argument("--bundle", default="default", help="packaged name, bundle directory or zip")
    parser.add_argument("--data", default=os.environ.get("ACULA_DATA", "../shared/data"))
    parser.add_argument("--json", nargs="?", const="-", help="write JSON here (no path: to stdout)")
    args = parser.parse_args(argv)
    files = recordings(Path(args.data))
    if not files:
        print(f"no recordings under {args.data} (smith2006_cough, coswara, esc10)", file=sys.stderr)
        return 2
    res = compare(args.bundle, files)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"int8 against fp32 cough decisions, bundle {args.bundle} ({res['digest'][:12]})", file=out)
    for backend, r in res["runtimes"].items():
        print(f"  {backend}: {r['recordings']} recordings, {len(r['differ'])} differ "
              f"(operating point {r['operating_point']}); {len(r['near_threshold'])} of {r['windows']} windows "
              f"changed side within {UNDECIDED_LOGIT} logit of it", file=out)
        for d in r["differ"]:
            print(f"    {d['path']}: peak {d['fp32_peak']} fp32, {d['int8_peak']} int8; events "
                  f"{d['fp32_events']} / {d['int8_events']}", file=out)
        for w in r["near_threshold"]:
            print(f"    near the threshold: {w['path']} window {w['window']}: {w['fp32']} fp32, {w['int8']} int8 "
                  f"({w['fp32_logit_margin']} logit from it)", file=out)
    if not res["runtimes"]:
        print("  no runtime here runs this bundle's int8 student in agreement with fp32", file=out)
    if args.json:
        text = json.dumps(res, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 1 if any(r["differ"] for r in res["runtimes"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
