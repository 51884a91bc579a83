"""The README and model-card generators read every figure from the results files they are given."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.readme import _auroc_table, render


def rows(with_train: bool) -> list[dict]:
    out = []
    for system, base in (("A", 0.6), ("B", 0.7)):
        for k, task in enumerate(("t1", "t2")):
            r = {"system": system, "task": task, "n": 10, "n_pos": 4, "probe_auroc": base + 0.1 * k,
                 "probe_std": 0.0, "zero_shot_auroc": 0.5 + 0.1 * k if system == "B" else None}
            if with_train:
                r["probe_train_auroc"] = base + 0.05
            out.append(r)
    return out


def test_auroc_table_means_and_the_train_split_column():
    plain = "\n".join(_auroc_table(rows(False), "T"))
    assert "| B | 0.700 / 0.500 | 0.800 / 0.600 | 0.750 | 0.550 |" in plain and "probe + train" not in plain
    both = "\n".join(_auroc_table(rows(True), "T"))
    assert "| A | 0.600 | 0.700 | 0.650 | 0.650 | n/a |" in both
    assert "| B | 0.700 / 0.500 | 0.800 / 0.600 | 0.750 | 0.750 | 0.550 |" in both


def test_render_reads_the_alignment_results_file(tmp_path: Path):
    (tmp_path / "align_eval.json").write_text(json.dumps(rows(True)))
    text = render(tmp_path)
    assert "**Alignment**" in text and "| A | 0.600 | 0.700 | 0.650 | 0.650 | n/a |" in text
