"""`acula corpus build` and `acula corpus stats`, on a replica and on the real data."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from acula.aligner.corpus import load_corpus  # noqa: E402
from acula.aligner.corpus_cli import main  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_build_writes_manifest_rejects_and_embeddings(tiny_corpus: Path, capsys):
    # tiny_corpus (conftest.py): acula corpus build on tests.replicas.make_data_root, shared with the training
    # and pipeline tests; its stdout is in build.out
    data, out = tiny_corpus.parent / "data", tiny_corpus
    printed = (tiny_corpus.parent / "build.out").read_text()
    assert "embedded the corpus' reports in" in printed
    rows, rejects = read_jsonl(out / "manifest.jsonl"), read_jsonl(out / "rejects.jsonl")
    assert {(r["record_id"], r["reason"]) for r in rejects} == {("coswara/p3/vowel-a", "silent"),
                                                                ("coswara/p3/counting-normal", "UnreadableAudioError")}
    assert len(rows) == 42 - 2
    corpus = load_corpus(out)
    assert corpus.embeddings.shape == (len(rows), 384)
    assert np.allclose(np.linalg.norm(corpus.embeddings, axis=1), 1.0, atol=1e-4)
    assert all(r["report"] and r["split"] in ("train", "val", "test") for r in rows)
    assert main(["build", "--data", str(data), "--out", str(out)]) == 1  # refuses to overwrite without -f
    assert main(["stats", str(out)]) == 0
    stats = capsys.readouterr().out
    assert "records per modality and split" in stats and "unique reports" in stats and "silent 1" in stats


def test_missing_data_root_and_bad_stats_dir_exit_1(tmp_path: Path):
    assert main(["build", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 1
    assert main(["stats", str(tmp_path)]) == 1


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_corpus_keeps_every_readable_recording(data_dir: Path, tmp_path: Path):
    out = tmp_path / "real"
    assert main(["build", "--data", str(data_dir), "--out", str(out), "--datasets", "icbhi_cycles", "coswara"]) == 0
    rows, rejects = read_jsonl(out / "manifest.jsonl"), read_jsonl(out / "rejects.jsonl")
    assert sum(r["dataset"] == "icbhi" for r in rows) == 1969
    reasons = defaultdict(set)
    for r in rejects:
        reasons[r["reason"]].add(r["path"])
    assert len(reasons["UnreadableAudioError"]) == 12 and len(reasons["silent"]) == 35
    assert all(p.startswith("coswara/") for p in reasons["UnreadableAudioError"] | reasons["silent"])
    sides = defaultdict(set)
    for r in rows:
        sides[r["group_id"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
