"""``acula corpus build|stats``: write a training corpus, or describe one."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def _label(row: dict) -> str:
    m = row["metadata"]
    if row["modality"] == "lung":
        return f"crackles={m.get('crackles')},wheezes={m.get('wheezes')}"
    return str(m.get("outcome") or m.get("sound_class") or m.get("sound_type") or "-")


def stats(root: Path) -> str:
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rejects = [json.loads(line) for line in (root / "rejects.jsonl").read_text().splitlines() if line.strip()]
    lines = [f"corpus {root}: {len(rows)} records, {len(rejects)} rejected"]
    by_modality = Counter((r["modality"], r["split"]) for r in rows)
    lines.append("\nrecords per modality and split:")
    for modality in sorted({m for m, _ in by_modality}):
        parts = "  ".join(f"{s} {by_modality[(modality, s)]:5d}" for s in ("train", "val", "test"))
        lines.append(f"  {modality:12s} {parts}")
    lines.append("\nrecords per label:")
    for (dataset, label), n in sorted(Counter((r["dataset"], _label(r)) for r in rows).items()):
        lines.append(f"  {dataset:14s} {label:28s} {n:5d}")
    lengths = [len(r["report"].split()) for r in rows]
    reports = Counter(r["report"] for r in rows)
    n_dup = sum(n for n in reports.values() if n > 1)
    lines.append(f"\nreport length (words): min {min(lengths)}  median {statistics.median(lengths):.0f}  "
                 f"max {max(lengths)}")
    lines.append(f"unique reports: {len(reports)}; records sharing their report with another: {n_dup}")
    lines.append(f"report sources: {dict(Counter(r['report_source'] for r in rows))}")
    if rejects:
        lines.append("\nrejected: " + ", ".join(f"{k} {n}" for k, n in Counter(r["reason"] for r in rejects).items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula corpus", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write manifest, splits, reports, teacher embeddings and rejects",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--data", default=os.environ.get("ACULA_DATA", "../shared/data"), help="data root")
    b.add_argument("--out", required=True, help="corpus directory to write")
    b.add_argument("--datasets", nargs="*", help="only these data-set folders (all found when not given)")
    b.add_argument("--seed", type=int, default=0, help="seed of the group-disjoint split")
    b.add_argument("--icbhi-split", choices=["grouped", "official"], default="grouped",
                   help="official = the ICBHI 2017 split with its two leaking patients repaired")
    b.add_argument("--report-style", choices=["full", "neutral"], default="full",
                   help="template reports: full (every supported slot) or neutral (no device named, no negated "
                        "finding; aligner.reports.REPORT_STYLES)")
    b.add_argument("--teacher", help="local Hugging Face model directory (all-MiniLM-L6-v2 when not given)")
    b.add_argument("--llm-url", help="OpenAI-compatible base URL; reports are then written by that model")
    b.add_argument("--llm-model", help="model name for --llm-url")
    b.add_argument("--llm-concurrency", type=int, default=4, help="parallel requests to --llm-url")
    b.add_argument("-f", "--force", action="store_true", help="overwrite an existing corpus")
    s = sub.add_parser("stats", help="counts per modality, label and split; report lengths and duplicates")
    s.add_argument("dir", help="corpus directory")
    args = parser.parse_args(argv)

    if args.cmd == "stats":
        if not (Path(args.dir) / "manifest.jsonl").is_file():
            print(f"acula corpus stats: {args.dir} is not a corpus directory", file=sys.stderr)
            return 1
        print(stats(Path(args.dir)))
        return 0

    from acula.aligner.corpus import build_corpus

    out, data = Path(args.out), Path(args.data)
    if (out / "manifest.jsonl").exists() and not args.force:
        print(f"acula corpus build: {out} already holds a corpus; use -f to overwrite", file=sys.stderr)
        return 1
    if not data.is_dir():
        print(f"acula corpus build: data root {data} does not exist", file=sys.stderr)
        return 1
    llm = None
    if args.llm_url:
        from acula.aligner.llm_writer import LLMConfig, LLMReportWriter

        if not args.llm_model:
            print("acula corpus build: --llm-url needs --llm-model", file=sys.stderr)
            return 1
        llm = LLMReportWriter(LLMConfig(args.llm_url, args.llm_model, api_key=os.environ.get("OPENAI_API_KEY"),
                                        concurrency=args.llm_concurrency, cache_dir=str(out / "llm_cache")),
                              seed=args.seed)
    if llm is not None and args.report_style != "full":
        print("acula corpus build: --report-style applies to template reports, not to --llm-url", file=sys.stderr)
        return 1
    info = build_corpus(data, out, args.datasets, args.seed, args.icbhi_split, args.teacher, llm,
                        report_style=args.report_style)
    print(f"wrote {out}: {info['n_records']} records, {info['n_rejects']} rejected "
          f"(see {out / 'rejects.jsonl'}), {info['n_unique_reports']} unique reports")
    print(f"teacher {info['teacher_id']}: embedded the corpus' reports in {info['embed_s']:.1f} s")
    return 0
