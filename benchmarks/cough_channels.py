"""Cough screening of several bundles through several phone channels, in one table (SDK only).

    python -m acula.benchmarks.cough_channels --corpus runs/corpus --splits val \
        --bundle "NAME=BUNDLE" [--bundle ...] [--channels clean 8k mulaw8k] --name OUT_NAME [--out DIR]

Each bundle screens the split's recordings at its own operating point (int8 ONNX, as the operating point was
chosen), once per channel: ``clean`` as recorded, ``8k`` and ``mulaw8k`` as a phone call delivers them
(``benchmarks.cough_screening --phone``, which this runs for every pair).  Writes ``OUT_NAME.json`` (per bundle and
channel: each group's recordings, and those raising a cough event) and ``OUT_NAME.md``.  A selection rule that
sums flagged recordings over seeds and channels reads the JSON (``benchmarks.ablation``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHANNELS = ("clean", "8k", "mulaw8k")


def screen(bundle: str, corpus: str, splits: Sequence[str], channel: str, backend: str, precision: str
           ) -> dict[str, Any]:
    """``cough_screening``'s result for one bundle and channel (no YAMNet reference)."""
    from acula.benchmarks.cough_screening import main as screening

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        args = ["--bundle", bundle, "--corpus", corpus, "--splits", *splits, "--backend", backend, "--precision",
                precision, "--yamnet", "", "--json", str(out)]
        if channel != "clean":
            args += ["--phone", channel]
        if screening(args) != 0:
            raise RuntimeError(f"cough_screening failed for {bundle} ({channel})")
        return json.loads(out.read_text())


def table(data: dict[str, Any]) -> list[str]:
    """Markdown rows: one per bundle and channel, each group's flagged recordings."""
    groups = list(next(iter(next(iter(data["runs"].values())).values()))["groups"])
    lines = ["| bundle | on | channel | " + " | ".join(groups) + " |", "|---" * (len(groups) + 3) + "|"]
    for name, by_channel in data["runs"].items():
        for channel, r in by_channel.items():
            cells = [f"{r['groups'][g]['flagged']}/{r['groups'][g]['n']}" if g in r["groups"] else "-" for g in groups]
            lines.append(f"| {name} | {r['operating_point'].get('cough_on')} | {channel} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.cough_channels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--splits", nargs="+", default=["val"])
    parser.add_argument("--bundle", action="append", required=True, help="NAME=BUNDLE (a path or 'default')")
    parser.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=CHANNELS)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    bundles = dict(b.split("=", 1) for b in args.bundle if "=" in b)
    if len(bundles) != len(args.bundle) or not all(k.strip() and v.strip() for k, v in bundles.items()):
        parser.error("each --bundle is NAME=BUNDLE (neither empty), each NAME once")
    runs: dict[str, dict[str, Any]] = {}
    for name, path in bundles.items():
        runs[name] = {}
        for channel in args.channels:
            r = screen(path, args.corpus, args.splits, channel, args.backend, args.precision)
            groups = {g: {"n": v["n"], "flagged": v["flagged"]} for g, v in r["groups"].items()}
            runs[name][channel] = {"groups": groups, "operating_point": r["operating_point"], "bundle": path}
    command = "python -m acula.benchmarks.cough_channels " + " ".join(
        f'"{a}"' if " " in a else a for a in (argv if argv is not None else sys.argv[1:]))
    data = {"command": command, "splits": args.splits, "backend": args.backend, "precision": args.precision,
            "runs": runs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(data, indent=2))
    text = [f"# Cough screening by channel ({', '.join(args.splits)})", "", f"Command: `{command}`", "",
            "Recordings raising at least one cough event, at each bundle's own operating point:", "", *table(data), ""]
    (out / f"{args.name}.md").write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
