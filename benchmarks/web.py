"""The browser page (sdk/web) against the SDK: parity of results and per-hop latency, in headless Chromium.

    python -m acula.benchmarks.web [--bundle default] [--seconds 60] [--rounds 3] [--json [OUT]] [--screenshot PNG]

Every recording goes through the page's own file input (decoded; resampled to 16 kHz with the SDK's
polyphase filter when it is not; streamed hop by hop in the page, the log-mel front end in JavaScript, the
student on onnxruntime-web, one WASM thread) and through ``sdk.load(bundle, precision="fp32")`` (onnxruntime,
one thread).  Parity: the same windows, quality gate and cough events, embedding cosine >= 0.99 per window,
cough probabilities and clip scores within 2e-3.  Fixtures: a synthetic recording at 16 kHz and one at
44.1 kHz (always) and, when ``../shared/data`` (or ``$ACULA_DATA``) holds them, the nine smith2006 coughs as
recorded (each shorter than a window), each placed in 6 s of noise at -50 dBFS, and the six Coswara
``cough-heavy`` bouts counted by hand (``benchmarks.cough_events.HAND_COUNTS``; resampled in the page), where
the detector splits window-level events into single coughs.
Latency: the page times each hop of a ``--seconds`` synthetic recording as it streams it; the SDK's figure is
``sdk.bench.time_hops`` on the same samples (fp32 and int8).  ``--json`` with no path writes
``benchmarks/results/web.json`` and ``web.md``, and the screenshot ``benchmarks/results/web_page.png``.
Exit status 2 when a parity check fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, machine_line

RESULTS = Path(__file__).resolve().parent / "results"


def _latency(ms: np.ndarray, audio_s: float) -> dict[str, float]:
    return {"n_hops": int(ms.size), "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "ms_per_audio_s": float(ms.sum() / audio_s)}


def fixtures(folder: Path, data: Path | None) -> dict[str, Path]:
    """Recordings written into ``folder``, by name: the synthetic one and the smith2006 coughs when present."""
    from acula.sdk.synth import synth_recording
    from acula.sdk.web import harness

    x44, _ = synth_recording(6.0, sample_rate_hz=44100, seed=7)
    out = {"synthetic 10 s": harness.write_wav(folder / "synthetic.wav", harness.synthetic_recording(10.0)),
           "synthetic 6 s at 44.1 kHz (resampled in the page)": harness.write_wav(folder / "synthetic_44k.wav",
                                                                                  x44, 44100)}
    coughs = sorted((data / "smith2006_cough" / "audio").glob("*.flac")) if data else []
    for path in coughs:
        out[f"{path.stem} as recorded"] = path
    for path in coughs:
        out[f"{path.stem} in 6 s of noise"] = harness.write_wav(folder / f"{path.stem}_noise.wav",
                                                                harness.cough_in_noise(path))
    from acula.benchmarks.cough_events import HAND_COUNTS

    for pid, n in HAND_COUNTS.items():
        bout = data / "coswara" / "audio" / pid / "cough-heavy.flac" if data else None
        if bout is not None and bout.is_file():
            out[f"Coswara {pid[:8]} cough-heavy ({n} coughs by hand)"] = bout
    return out


def run(bundle: str, seconds: float, rounds: int, screenshot: Path | None, data: Path | None) -> dict[str, Any]:
    from acula.sdk.bench import time_hops
    from acula.sdk.web import build, harness

    from acula import sdk

    model = sdk.load(bundle, precision="fp32")
    int8 = sdk.load(bundle, precision="int8")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        desc = build.build(folder / "model", bundle, "fp32")
        recordings = fixtures(folder, data)
        long = harness.synthetic_recording(seconds, silence_s=0.0)
        paths = [harness.write_wav(folder / f"latency_{r}.wav", long) for r in range(rounds)]
        with harness.launch() as browser, harness.open_page(browser, folder / "model") as page:
            parity = []
            for name, path in recordings.items():
                report = harness.parity(harness.analyse(page, path), harness.sdk_result(model, path))
                parity.append({"recording": name, **report})
                print(f"  {name}: {report}", file=sys.stderr)
            web_ms = np.concatenate([harness.analyse(page, p, timeout_s=300)["latency_ms"] for p in paths])
            samples = sdk.load_audio(paths[0]).samples
            sdk_ms = {p: np.concatenate([time_hops(m, samples)[2] for _ in range(rounds)])
                      for p, m in (("fp32", model), ("int8", int8))}
            if screenshot is not None:
                shown = next((p for n, p in recordings.items() if n.startswith("smith2006_p03") and "noise" in n),
                             recordings["synthetic 10 s"])
                harness.analyse(page, shown)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            chromium = browser.version
    pkg = json.loads((harness.WEB_ROOT / "package.json").read_text())
    hop_ms = 1e3 * model.hop_frames * model.frontend.config.hop_length / model.sample_rate_hz
    return {"machine": machine_line(), "bundle": bundle, "chromium": chromium,
            "onnxruntime_web": pkg["dependencies"]["onnxruntime-web"], "student": desc["student"]["file"],
            "tolerances": {"min_cosine": harness.MIN_COSINE, "max_abs_probability": harness.MAX_ABS_PROBABILITY,
                           "event_time_s": harness.EVENT_TIME_TOL_S},
            "parity": parity, "all_match": all(p["ok"] for p in parity),
            "latency": {"audio_s": seconds, "rounds": rounds, "hop_ms": hop_ms,
                        "browser_wasm_fp32_1_thread": _latency(web_ms, seconds * rounds),
                        "sdk_onnxruntime_fp32_1_thread": _latency(sdk_ms["fp32"], seconds * rounds),
                        "sdk_onnxruntime_int8_1_thread": _latency(sdk_ms["int8"], seconds * rounds)}}


def markdown(res: dict[str, Any]) -> str:
    lat = res["latency"]
    lines = ["# Browser page (sdk/web) against the SDK: `python -m acula.benchmarks.web --json`", "",
             f"{res['machine']}; Chromium {res['chromium']} headless, onnxruntime-web {res['onnxruntime_web']} "
             f"(WASM, one thread); SDK: onnxruntime, one thread; bundle `{res['bundle']}`, {res['student']}.", "",
             "## Parity (the page's file input against `sdk.load(bundle, precision=\"fp32\")`)", "",
             f"Match: same windows, quality gate and events, cosine >= {res['tolerances']['min_cosine']}, "
             f"|dp| and |d score| <= {res['tolerances']['max_abs_probability']}.  "
             f"All match: **{'yes' if res['all_match'] else 'NO'}**.", "",
             "| recording | windows (page / SDK) | min embedding cosine | max abs d cough p | max abs d score | "
             "events (page / SDK) | match |", "|---|---|---|---|---|---|---|"]
    for p in res["parity"]:
        lines.append(f"| {p['recording']} | {p['n_windows_browser']} / {p['n_windows_sdk']} | "
                     f"{p['min_cosine']:.7f} | {p['max_abs_cough_probability']:.1e} | {p['max_abs_score']:.1e} | "
                     f"{p['n_events_browser']} / {p['n_events_sdk']} | {'yes' if p['ok'] else 'NO'} |")
    lines += ["", f"## Per-hop latency ({lat['rounds']} x {lat['audio_s']:.0f} s synthetic recording streamed one "
              f"hop ({lat['hop_ms']:.0f} ms of audio) at a time; front end, network, scoring and events)", "",
              "| runtime | hops | p50 ms | p90 ms | p99 ms | max ms | ms per s of audio |",
              "|---|---|---|---|---|---|---|"]
    for key, label in (("browser_wasm_fp32_1_thread", "browser: JS front end + onnxruntime-web WASM fp32, 1 thread"),
                       ("sdk_onnxruntime_fp32_1_thread", "SDK: numpy front end + onnxruntime fp32, 1 thread"),
                       ("sdk_onnxruntime_int8_1_thread", "SDK: numpy front end + onnxruntime int8, 1 thread")):
        v = lat[key]
        lines.append(f"| {label} | {v['n_hops']} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | {v['p99_ms']:.2f} | "
                     f"{v['max_ms']:.2f} | {v['ms_per_audio_s']:.2f} |")
    lines += ["", "The page's times come from `performance.now()`, which Chromium coarsens (0.1 ms without "
              "cross-origin isolation).  From the fifth hop on, every hop completes one window, so nearly every "
              "timed hop runs the network once."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.web", __doc__, argv)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--seconds", type=float, default=60.0, help="synthetic recording timed hop by hop")
    parser.add_argument("--rounds", type=int, default=3, help="times each side streams it")
    parser.add_argument("--data", type=Path, help="shared data ($ACULA_DATA, else ../shared/data beside the repo)",
                        default=Path(os.environ.get("ACULA_DATA", RESULTS.parents[1].parent / "shared" / "data")))
    parser.add_argument("--json", nargs="?", const=str(RESULTS / "web.json"),
                        help="write results here (and a .md beside it); no value: benchmarks/results/web.json")
    parser.add_argument("--screenshot", type=Path,
                        help="PNG of the page (default with --json: web_page.png beside the JSON)")
    args = parser.parse_args(argv)
    from acula.sdk.web import harness

    reason = harness.missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    screenshot = args.screenshot or (Path(args.json).with_name("web_page.png") if args.json else None)
    res = run(args.bundle, args.seconds, args.rounds, screenshot, args.data if args.data.is_dir() else None)
    text = markdown(res)
    print(text)
    if args.json:
        out = Path(args.json)
        out.write_text(json.dumps(res, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
        print(f"wrote {out}, {out.with_suffix('.md')}" + (f", {screenshot}" if screenshot else ""))
    return 0 if res["all_match"] else 2


if __name__ == "__main__":
    sys.exit(main())
