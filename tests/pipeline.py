"""A tiny end-to-end pipeline for tests: replica data -> corpus -> align -> distill -> export."""

from __future__ import annotations

from pathlib import Path


def build_tiny_bundle(base: Path, tflite: bool = True) -> Path:
    from aligner.corpus_cli import main as corpus_main
    from aligner.train import main as align_main
    from distill.train import main as distill_main
    from export.cli import main as export_main
    from tests.replicas import make_data_root

    data = make_data_root(base / "data")
    corpus, align, student, bundle = base / "corpus", base / "align", base / "distill", base / "bundle"
    assert corpus_main(["build", "--data", str(data), "--out", str(corpus)]) == 0
    assert align_main(["--config", "tiny-test", "--corpus", str(corpus), "--out", str(align)]) == 0
    assert distill_main(["--teacher", str(align), "--corpus", str(corpus), "--out", str(student),
                         "--config", "tiny-test"]) == 0
    args = ["--student", str(student), "--corpus", str(corpus), "--out", str(bundle)]
    assert export_main(args + ([] if tflite else ["--no-tflite"])) == 0
    return bundle
