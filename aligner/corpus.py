"""Build and read a training corpus: records, splits, reports and teacher embeddings.

A corpus directory holds:

* ``manifest.jsonl``: one record a line with ``split``, ``report``, ``report_source``
  and the audio facts measured at build time (duration, quality flags);
* ``rejects.jsonl``: every unusable recording with its reason;
* ``embeddings.npy``: teacher embeddings of the reports, row i = manifest line i;
* ``corpus.json``: data root, seed, teacher id, counts and timings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from acula.aligner.corpora import discover
from acula.aligner.records import Record
from acula.aligner.reports import write_template_report
from acula.aligner.splits import check_group_disjoint, official_icbhi_split, split_groups
from acula.sdk.audio import AudioError, load_audio
from tqdm import tqdm


def row_field(row: dict[str, Any], name: str) -> Any:
    """A corpus row's field ``name``: the row's own key, else its ``metadata``'s (None when neither has it)."""
    return row[name] if name in row else row.get("metadata", {}).get(name)


@dataclass
class Corpus:
    root: Path
    data_root: Path
    records: list[Record]
    rows: list[dict[str, Any]]
    embeddings: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def indices(self, split: str | None = None, dataset: str | None = None) -> list[int]:
        return [i for i, row in enumerate(self.rows)
                if (split is None or row["split"] == split) and (dataset is None or row["dataset"] == dataset)]

    def audio_path(self, i: int) -> Path:
        path = Path(self.records[i].path)
        return path if path.is_absolute() else self.data_root / path


def screen_audio(records: Sequence[Record], data_root: Path, progress: bool = True
                 ) -> tuple[list[tuple[Record, dict[str, Any]]], list[dict[str, Any]]]:
    """Load every recording once: keep the usable ones with their audio facts, reject the rest with a reason."""
    kept, rejects = [], []
    for r in tqdm(records, desc="checking audio", unit="file", disable=not progress):
        path = Path(r.path) if Path(r.path).is_absolute() else data_root / r.path
        try:
            clip = load_audio(path, start_s=r.start_s, end_s=r.end_s)
        except AudioError as exc:
            rejects.append({"record_id": r.record_id, "path": r.path, "reason": type(exc).__name__, "detail": str(exc)})
            continue
        if clip.quality.silent:
            rejects.append({"record_id": r.record_id, "path": r.path, "reason": "silent",
                            "detail": f"digital silence (peak {clip.quality.peak_dbfs:.1f} dBFS)"})
            continue
        kept.append((r, {"duration_s": round(clip.duration_s, 3), "clipped": clip.quality.clipped,
                         "low_level": clip.quality.low_level, "source_rate_hz": clip.source_rate_hz}))
    return kept, rejects


def build_corpus(data_root: Path, out: Path, datasets: Sequence[str] | None = None, seed: int = 0,
                 icbhi_split: str = "grouped", teacher_dir: str | None = None, llm: Any = None,
                 progress: bool = True, report_style: str = "full") -> dict[str, Any]:
    """Write a corpus directory; return its summary (also written as corpus.json)."""
    t_start = time.perf_counter()
    records = discover(data_root, datasets)
    if not records:
        raise FileNotFoundError(f"no known data set under {data_root}")
    kept, rejects = screen_audio(records, data_root, progress)
    good = [r for r, _ in kept]
    splits = split_groups(good, seed=seed)
    if icbhi_split == "official":
        splits.update(official_icbhi_split([r for r in good if r.dataset == "icbhi"]))
    check_group_disjoint(good, splits)
    t_reports = time.perf_counter()
    if llm is not None:
        results = llm.write_all(good, progress=progress)
        reports = [(res.text, res.source) for res in results]
    else:
        reports = [(write_template_report(r, seed, report_style), "template") for r in good]
    t_embed = time.perf_counter()
    from acula.aligner.teacher import TextTeacher

    teacher = TextTeacher(teacher_dir, cache_path=out / "teacher_cache.sqlite")
    embeddings = teacher.encode([text for text, _ in reports], progress=progress)
    embed_s = time.perf_counter() - t_embed
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "manifest.jsonl", "w") as f:
        for (r, facts), (text, source) in zip(kept, reports, strict=True):
            row = json.loads(r.to_json())
            row.update(split=splits[r.record_id], report=text, report_source=source, audio=facts)
            f.write(json.dumps(row, sort_keys=True) + "\n")
    with open(out / "rejects.jsonl", "w") as f:
        for row in rejects:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    np.save(out / "embeddings.npy", embeddings)
    info = {"data_root": str(data_root), "seed": seed, "icbhi_split": icbhi_split,
            "report_style": "llm" if llm is not None else report_style, "teacher_id": teacher.teacher_id,
            "teacher_dim": teacher.dim, "n_records": len(good), "n_rejects": len(rejects),
            "n_unique_reports": len({t for t, _ in reports}), "embed_s": round(embed_s, 2),
            "report_s": round(t_embed - t_reports, 2), "total_s": round(time.perf_counter() - t_start, 2)}
    (out / "corpus.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return info


def load_corpus(root: str | Path, data_root: str | Path | None = None) -> Corpus:
    root = Path(root)
    if not (root / "manifest.jsonl").is_file():
        raise FileNotFoundError(f"{root} is not a corpus directory (no manifest.jsonl); run 'acula corpus build'")
    info = json.loads((root / "corpus.json").read_text())
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    embeddings = np.load(root / "embeddings.npy")
    if embeddings.shape[0] != len(rows):
        raise ValueError(f"{root}: {embeddings.shape[0]} embeddings for {len(rows)} records")
    return Corpus(root, Path(data_root or info["data_root"]), [Record.from_dict(r) for r in rows], rows, embeddings,
                  info)
