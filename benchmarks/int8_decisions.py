"""Do a bundle's int8 graphs make the cough decisions its fp32 graphs make?  A shipping check for candidates.

    python -m acula.benchmarks.int8_decisions [--bundle runs/bundle-X] [--data ../shared/data] [--json [OUT]]

For every runtime whose int8 student agrees with fp32 on the SDK's probe windows (``sdk.precision``: the ones
``precision="auto"`` may pick), screen real recordings with both precisions and compare, at the bundle's own
operating point, the events and each window's side of the threshold.  The recordings: the 9 CC BY coughs of
``smith2006_cough`` (outside the corpus), 8 Coswara heavy coughs and every 80th ESC-10 clip, as
``tests/test_precision.py`` checks for the packaged default.  Exit status 1 when any decision differs.

A decision differs when a window is scored at one precision only or not finite, or when a window changes side of
the operating point's on-threshold (which opens an event) or of its off-threshold (which keeps one open) while
either precision's cough logit lies more than ``UNDECIDED_LOGIT`` from that threshold's.  A side change with both
closer than that is within the int8 graphs' own error on validation cough windows (99th percentile 0.38-0.52 logit
for the TFLite writer, ``int8_tflite_calibration.md``; 0.48 over all windows for onnxruntime's,
``int8_export.md``): no int8 graph decides such a window reliably, so its flip is listed (``near_threshold``) and
not counted.  The events (count, start or end) differ decisively unless the undecided windows explain the whole
difference: replaying the recording through the SDK's own event detector with the int8 window probabilities,
every undecided window's taken from fp32, must give fp32's events exactly (and the int8 probabilities alone
int8's own, or the replay is not trusted and the difference counts).  Such a recording is listed (``undecided``:
a recording-level flag or an event count that turns on one window within the int8 error of a threshold) and not
counted.

History: until 2026-12-03 every side change counted (three candidates failed on one window each, 0.10-0.23 logit
from the on-threshold).  Until 2026-12-04 the off-threshold was not looked at and an event difference counted
even when an undecided window caused it alone (gain24-bgmild's seed 0 failed so: a real cough's peak 0.938 fp32,
0.916 int8 against an on-threshold of 0.92, and one Coswara recording's extra event from a window at 0.889 /
0.927; ``benchmarks/results/README.md``).  The present rule was settled before the next candidate
(``selection_rule_gain24_bgdenoise.md``) was trained; no earlier verdict is re-judged under it.

Issue 26 asks that the operating point decide the same on both; ``invariant24-self-half``
(``benchmarks/results/selection_rule_invariant24.md``) passed its validation rule and failed this, so a
candidate runs it before it replaces the default.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acula.benchmarks._util import command_parser, emit_json
from acula.sdk.scoring import logit
from acula.sdk.screening import Event, EventDetector, ScreeningConfig

#: a window whose cough logit, at both precisions, is within this of the operating point's is undecided at int8
UNDECIDED_LOGIT = 0.5


def side_changes(fp32: Sequence[float | None], int8: Sequence[float | None], on: float, off: float | None = None
                 ) -> tuple[bool, list[dict[str, Any]]]:
    """Per-window cough probabilities of one recording at both precisions -> (a decisive difference, the side
    changes that are not).  Decisive: a different window count, a window scored at one precision only, a
    non-finite probability, or a side change of the on-threshold (or of ``off``, when given) where either
    precision's logit is more than ``UNDECIDED_LOGIT`` from that threshold's (both inside: listed, not counted)."""
    thresholds = [("on", on)] + ([] if off is None else [("off", off)])
    decisive, near = len(fp32) != len(int8), []
    for k, (pa, pb) in enumerate(zip(fp32, int8, strict=False)):
        if (pa is None) != (pb is None):
            decisive = True
        elif pa is None or pb is None:
            continue
        elif not (math.isfinite(pa) and math.isfinite(pb)):
            decisive = True
        else:
            for name, t in thresholds:
                if (pa >= t) == (pb >= t):
                    continue
                da, db = abs(logit(pa) - logit(t)), abs(logit(pb) - logit(t))
                if max(da, db) > UNDECIDED_LOGIT:
                    decisive = True
                else:
                    near.append({"window": k, "threshold": name, "fp32": round(pa, 4), "int8": round(pb, 4),
                                 "fp32_logit_margin": round(da, 3)})
    return decisive, near


class _Replay(EventDetector):
    """The SDK's event detector, ignoring the probabilities the stream hands it for the k-th of its own."""

    def __init__(self, cfg: ScreeningConfig, sample_rate_hz: int, probabilities: Sequence[float | None]) -> None:
        self.probabilities = list(probabilities)
        super().__init__(cfg, sample_rate_hz=sample_rate_hz)

    def reset(self) -> None:
        super().reset()
        self.k = 0

    def update(self, start_s: float, end_s: float, probability: float | None) -> list[Event]:
        p = self.probabilities[self.k] if self.k < len(self.probabilities) else probability
        self.k += 1
        return super().update(start_s, end_s, p)


def replay_events(model: Any, samples: Any, sample_rate_hz: int, probabilities: Sequence[float | None]
                  ) -> list[tuple[float, float]]:
    """The (start, end) of the events ``model.screen`` gives when its windows' cough probabilities are
    ``probabilities``: the same stream, resampler and energy envelope, the SDK's own event detector."""
    stream = model.stream()
    stream.detector = _Replay(model.screening, model.sample_rate_hz, probabilities)
    stream.accept(samples, sample_rate_hz)
    stream.flush()
    return [(e.start_s, e.end_s) for e in stream.events]


def explained_by_undecided(model: Any, samples: Any, sample_rate_hz: int, fp32: Sequence[float | None],
                           int8: Sequence[float | None], events: tuple[list[tuple[float, float]], ...],
                           undecided: set[int]) -> bool:
    """Do the ``undecided`` windows explain the whole difference between ``events`` (fp32's, int8's (start, end)
    as screened)?  True when the replay gives each precision's own events from its own probabilities (else the
    replay is not trusted) and fp32's from int8's with every undecided window's fp32 probability."""
    swapped = [fp32[k] if k in undecided else p for k, p in enumerate(int8)]
    return all(replay_events(model, samples, sample_rate_hz, probs) == want
               for probs, want in ((int8, events[1]), (fp32, events[0]), (swapped, events[0])))


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
        on, off = fp32.screening.on, fp32.screening.off
        n, differ, undecided, near, n_windows = 0, [], [], [], 0
        for path in files:
            try:
                clip = sdk.load_audio(path, target_rate_hz=None)
            except sdk.AudioError:
                continue
            a, b = fp32.screen(clip.samples, clip.sample_rate_hz), int8.screen(clip.samples, clip.sample_rate_hz)
            n += 1
            pa, pb = [w.cough_probability for w in a.windows], [w.cough_probability for w in b.windows]
            events = [[(e.start_s, e.end_s) for e in r.events] for r in (a, b)]
            decisive, flips = side_changes(pa, pb, on, off)
            n_windows += len(a.windows)
            near += [{"path": str(path), **f} for f in flips]
            if events[0] == events[1] and not decisive:
                continue
            peak = [max((w.cough_probability or 0.0) for w in r.windows) if r.windows else 0.0 for r in (a, b)]
            row = {"path": str(path), "fp32_peak": round(peak[0], 4), "int8_peak": round(peak[1], 4),
                   "fp32_events": len(a.events), "int8_events": len(b.events)}
            windows = {f["window"] for f in flips}
            if not decisive and explained_by_undecided(int8, clip.samples, clip.sample_rate_hz, pa, pb,
                                                       (events[0], events[1]), windows):
                undecided.append(row | {"windows": sorted(windows)})
            else:
                differ.append(row)
        out["runtimes"][backend] = {"operating_point": on, "off_threshold": off, "recordings": n,
                                    "windows": n_windows, "differ": differ, "undecided": undecided,
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
        print(f"  {backend}: {r['recordings']} recordings, {len(r['differ'])} differ, {len(r['undecided'])} "
              f"undecided (on {r['operating_point']}, off {r['off_threshold']}); {len(r['near_threshold'])} of "
              f"{r['windows']} windows changed side within {UNDECIDED_LOGIT} logit of a threshold", file=out)
        for d in r["differ"]:
            print(f"    {d['path']}: peak {d['fp32_peak']} fp32, {d['int8_peak']} int8; events "
                  f"{d['fp32_events']} / {d['int8_events']}", file=out)
        for d in r["undecided"]:
            print(f"    undecided (not counted): {d['path']}: peak {d['fp32_peak']} fp32, {d['int8_peak']} int8; "
                  f"events {d['fp32_events']} / {d['int8_events']}, all from window(s) {d['windows']}", file=out)
        for w in r["near_threshold"]:
            print(f"    near the {w['threshold']}-threshold: {w['path']} window {w['window']}: {w['fp32']} fp32, "
                  f"{w['int8']} int8 ({w['fp32_logit_margin']} logit from it)", file=out)
    if not res["runtimes"]:
        print("  no runtime here runs this bundle's int8 student in agreement with fp32", file=out)
    emit_json(res, args.json, indent=1, newline=True)
    return 1 if any(r["differ"] for r in res["runtimes"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
