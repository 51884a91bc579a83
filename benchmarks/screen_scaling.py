"""``acula screen`` against the recording's length: wall and CPU time and peak memory of one process per file.

    python -m acula.benchmarks.screen_scaling [--durations 1 10 60 600 3600] [--formats 44100x2 16000x1]
                                        [--precision auto] [--baseline DIR] [--tmp DIR] [--json [OUT.json]]

Each file is generated into a temporary folder block by block (breathing and heart sounds from
:mod:`sdk.synth` with the shipped real cough pasted in every ``COUGH_EVERY_S`` seconds), as 16-bit PCM WAV at
each format's rate and channel count, then screened by a fresh ``acula screen FILE --json`` process (stdout
to /dev/null, warm file cache: the file was just written).  Per file: wall seconds, CPU seconds (user + system,
from ``RUSAGE_CHILDREN``) and peak resident memory (the child's own VmHWM: ``ru_maxrss`` would carry over the
parent's peak, which Linux keeps across fork and execve).  ``marginal_cpu_ms_per_audio_s`` is the CPU a
further second of audio costs (longest file minus shortest over their length difference), set against
YAMNet TFLite's compute per second of audio measured in the same run (the model alone: no file reading,
resampling or quality gate), as ``python -m acula.benchmarks.sdk_latency`` measures it.  ``--baseline`` screens
each file with another checkout of the SDK too (e.g. ``git archive main sdk | tar -x -C /tmp/base``), right
after this one, so a change is measured on the same files in the same run.

Target (issue 26): peak RSS of ``acula screen`` <= 150 MB for any length.  ``--json`` writes
benchmarks/results/screen_scaling.json and a .md table beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import ensure_single_thread, machine_line, write_results

DEFAULT_JSON = "benchmarks/results/screen_scaling.json"
TARGET_PEAK_RSS_MB = 150.0
COUGH_EVERY_S = 30.0
ROOT = Path(__file__).resolve().parents[1]

CHILD = ("import sys; from acula.sdk.cli import main; rc = main(sys.argv[1:]); "
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')] if sys.platform == 'linux' else []; "
         "import resource; sys.stderr.write('\\nVmHWM_kB %d\\n' % (int(hwm[0].split()[1]) if hwm else "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)); sys.exit(rc)")


def write_recording(path: Path, duration_s: float, sample_rate_hz: int, n_channels: int,
                    cough_at_s: Sequence[float] | None = None, block_s: float = 10.0) -> Path:
    """A 16-bit WAV of ``duration_s`` seconds written block by block (never whole in memory): a 10 s stretch
    of synthetic breathing and heart sounds, repeated, with the shipped real cough pasted in at ``cough_at_s``
    (default: every ``COUGH_EVERY_S`` seconds from 12 s)."""
    import soundfile as sf
    from acula.sdk.audio import load_audio
    from acula.sdk.demo import shipped_cough
    from acula.sdk.synth import synth_recording

    if cough_at_s is None:
        cough_at_s = list(np.arange(12.0, duration_s, COUGH_EVERY_S))
    cough = load_audio(shipped_cough(), target_rate_hz=sample_rate_hz).samples
    base, _ = synth_recording(block_s, sample_rate_hz=sample_rate_hz, seed=5, cough_onsets_s=())
    n_total = int(duration_s * sample_rate_hz)
    with sf.SoundFile(path, "w", sample_rate_hz, n_channels, subtype="PCM_16") as f:
        for start in range(0, n_total, base.shape[0]):
            x = 0.2 * base[: min(base.shape[0], n_total - start)]
            for t in cough_at_s:
                a = int(t * sample_rate_hz) - start
                if -cough.shape[0] < a < x.shape[0]:
                    seg = cough[max(0, -a) : x.shape[0] - a]
                    x[max(0, a) : max(0, a) + seg.shape[0]] += seg
            f.write(np.repeat(x[:, None], n_channels, 1) if n_channels > 1 else x)
    return path


def screen_once(path: Path, options: Sequence[str], root: Path = ROOT) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS (MB) of one ``acula screen PATH --json`` process of the SDK in
    ``root``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, "screen", str(path), "--json", *options], cwd=root,
                         env=dict(os.environ, PYTHONPATH=str(root)), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    hwm_kb = int(out.stderr.strip().splitlines()[-1].split()[1])
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "peak_rss_mb": hwm_kb / 1024}


def markdown(res: dict[str, Any]) -> str:
    lines = [f"`acula screen FILE --json`, one process per file, {res['machine']}; {res['backend']} "
             f"{res['precision']}, blocks of {res['block_s']} s.", "",
             "| format | length | file MB | wall s | CPU s | CPU ms / audio s | peak RSS MB |" +
             (" baseline CPU s | baseline peak RSS MB |" if res.get("baseline") else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if res.get("baseline") else "")]
    for r in res["rows"]:
        lines.append(f"| {r['format']} | {_length(r['duration_s'])} | {r['file_mb']:.1f} | {r['wall_s']:.2f} | "
                     f"{r['cpu_s']:.2f} | {r['cpu_s'] / r['duration_s'] * 1e3:.1f} | {r['peak_rss_mb']:.1f} |" +
                     (f" {r['baseline']['cpu_s']:.2f} | {r['baseline']['peak_rss_mb']:.1f} |" if "baseline" in r
                      else ""))
    lines.append("")
    if res.get("baseline"):
        lines.append(f"Baseline: {res['baseline']}, the same files in the same run.")
        lines.append("")
    for fmt, s in res["formats"].items():
        line = (f"- {fmt}: peak RSS {s['min_peak_rss_mb']:.1f} to {s['max_peak_rss_mb']:.1f} MB over "
                f"{_length(s['shortest_s'])} to {_length(s['longest_s'])}; a further second of audio costs "
                f"{s['marginal_cpu_ms_per_audio_s']:.1f} ms CPU")
        if "marginal_over_yamnet" in s:
            line += f" ({s['marginal_over_yamnet']:.2f}x YAMNet's model-only compute)"
        lines.append(line + ".")
    if res.get("yamnet_ms_per_audio_s"):
        lines.append(f"- YAMNet TFLite, same run: {res['yamnet_ms_per_audio_s']:.1f} ms per second of audio "
                     "(model invocations only, 16 kHz input).")
    verdict = "PASS" if res["max_peak_rss_mb"] <= TARGET_PEAK_RSS_MB else "FAIL"
    lines += [f"- Largest peak RSS {res['max_peak_rss_mb']:.1f} MB [{verdict}: target <= {TARGET_PEAK_RSS_MB:.0f} MB "
              "at any length].", ""]
    return "\n".join(lines)


def _length(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ensure_single_thread("acula.benchmarks.screen_scaling", argv)
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.screen_scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=float, nargs="+", default=[1, 10, 60, 600, 3600], help="seconds")
    parser.add_argument("--formats", nargs="+", default=["44100x2", "16000x1"], help="RATExCHANNELS")
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--block-s", type=float, help="acula screen --block-s (default: its own)")
    parser.add_argument("--yamnet", default=os.environ.get("ACULA_WEIGHTS", "../shared/weights") + "/yamnet.tflite")
    parser.add_argument("--baseline", help="another checkout of the SDK to screen the same files with")
    parser.add_argument("--tmp", help="folder for the generated files (default: the system's temporary folder)")
    parser.add_argument("--json", nargs="?", const=DEFAULT_JSON, help=f"write the figures (default {DEFAULT_JSON})"
                        " and a .md table beside them")
    args = parser.parse_args(argv)
    from acula.sdk.bench import yamnet_ms_per_audio_s
    from acula.sdk.model import load
    from acula.sdk.screen_cli import BLOCK_S

    precision = load(args.bundle, args.backend, args.precision).precision  # also fills the auto cache
    options = ["--bundle", args.bundle, "--backend", args.backend, "--precision", args.precision]
    if args.block_s:
        options += ["--block-s", str(args.block_s)]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for fmt in args.formats:
            rate, n_channels = (int(v) for v in fmt.split("x"))
            for duration_s in sorted(args.durations):
                path = write_recording(Path(tmp) / f"{fmt}_{duration_s:g}s.wav", duration_s, rate, n_channels)
                row = {"format": fmt, "sample_rate_hz": rate, "n_channels": n_channels, "duration_s": duration_s,
                       "file_mb": path.stat().st_size / 1e6, **screen_once(path, options)}
                if args.baseline:
                    row["baseline"] = screen_once(path, options, Path(args.baseline).resolve())
                path.unlink()
                print(f"  {fmt} {_length(duration_s):>7}: wall {row['wall_s']:7.2f} s, CPU {row['cpu_s']:7.2f} s, "
                      f"peak RSS {row['peak_rss_mb']:6.1f} MB", file=sys.stderr)
                if args.baseline:
                    print(f"  {'baseline':>15}: wall {row['baseline']['wall_s']:7.2f} s, CPU "
                          f"{row['baseline']['cpu_s']:7.2f} s, peak RSS {row['baseline']['peak_rss_mb']:6.1f} MB",
                          file=sys.stderr)
                rows.append(row)
    yamnet = yamnet_ms_per_audio_s(args.yamnet, 60.0, 1)
    formats: dict[str, dict[str, float]] = {}
    for fmt in args.formats:
        mine = [r for r in rows if r["format"] == fmt]
        short, long = mine[0], mine[-1]
        span = long["duration_s"] - short["duration_s"]
        s = {"shortest_s": short["duration_s"], "longest_s": long["duration_s"],
             "min_peak_rss_mb": min(r["peak_rss_mb"] for r in mine),
             "max_peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
             "marginal_cpu_ms_per_audio_s": (long["cpu_s"] - short["cpu_s"]) / span * 1e3 if span else float("nan")}
        if yamnet and span:
            s["marginal_over_yamnet"] = s["marginal_cpu_ms_per_audio_s"] / yamnet
        formats[fmt] = s
    res: dict[str, Any] = {"machine": machine_line(), "bundle": args.bundle, "backend": args.backend,
                           "precision": precision, "block_s": args.block_s or BLOCK_S,
                           "target_peak_rss_mb": TARGET_PEAK_RSS_MB, "rows": rows, "formats": formats,
                           "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows), "baseline": args.baseline}
    if yamnet:
        res["yamnet_ms_per_audio_s"] = yamnet
    print(markdown(res))
    if args.json:
        write_results(args.json, res, markdown)
    return 0 if res["max_peak_rss_mb"] <= TARGET_PEAK_RSS_MB else 2


if __name__ == "__main__":
    sys.exit(main())
