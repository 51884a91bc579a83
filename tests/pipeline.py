"""A tiny end-to-end pipeline for tests: replica data -> corpus -> align -> distill -> export.

Each step is a function of the previous step's folder, so the session fixtures in ``conftest.py`` build each
one once and every test that needs it shares it (a corpus costs a text-teacher run; align and distill runs
cost seconds each).  The steps run the real ``main([...])`` of every command.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_corpus(base: Path) -> Path:
    """``acula corpus build`` on the replicas of every data-set layout; what it printed is kept beside the
    corpus in ``build.out`` for the tests of that command."""
    import contextlib
    import io

    from acula.aligner.corpus_cli import main as corpus_main

    from tests.replicas import make_data_root

    data = make_data_root(base / "data")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert corpus_main(["build", "--data", str(data), "--out", str(base / "corpus")]) == 0
    (base / "build.out").write_text(printed.getvalue())
    return base / "corpus"


def align_tiny(corpus: Path, out: Path) -> Path:
    from acula.aligner.train import main as align_main

    assert align_main(["--config", "tiny-test", "--corpus", str(corpus), "--out", str(out)]) == 0
    return out


def distill_tiny(teacher: Path, corpus: Path, out: Path) -> Path:
    from acula.distill.train import main as distill_main

    assert distill_main(["--teacher", str(teacher), "--corpus", str(corpus), "--out", str(out),
                         "--config", "tiny-test"]) == 0
    return out


def export_tiny(student: Path, corpus: Path, out: Path, tflite: bool = True) -> Path:
    from acula.export.cli import main as export_main

    args = ["--student", str(student), "--corpus", str(corpus), "--out", str(out)]
    assert export_main(args + ([] if tflite else ["--no-tflite"])) == 0
    return out


def build_tiny_bundle(base: Path, tflite: bool = True) -> Path:
    corpus = build_tiny_corpus(base)
    student = distill_tiny(align_tiny(corpus, base / "align"), corpus, base / "distill")
    return export_tiny(student, corpus, base / "bundle", tflite)
