"""No traceback for a user's mistake anywhere in ``acula``: every subcommand's --help exits 0, wrong paths and
values end in one line on stderr and exit 1, a closed pipe ends quietly."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sdk.cli import COMMANDS, main
from sdk.screening import Event
from sdk.store import EventStore

ROOT = Path(__file__).resolve().parents[1]
ADD_PARSER = argparse._SubParsersAction.add_parser


def no_traceback(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def help_of(argv: list[str], capsys, monkeypatch) -> tuple[int, str, list[str]]:
    """Exit status, help text and the nested subcommands argparse registered while ``acula ARGV --help`` ran."""
    nested: list[str] = []

    def recording(self, name, **kw):
        nested.append(name)
        return ADD_PARSER(self, name, **kw)

    monkeypatch.setattr(argparse._SubParsersAction, "add_parser", recording)
    code = main([*argv, "--help"])
    out = capsys.readouterr()
    return code, out.out + out.err, nested


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_and_subcommand_prints_help_and_exits_0(name: str, capsys, monkeypatch):
    code, text, nested = help_of([name], capsys, monkeypatch)
    if code == 1 and "Install the extra it needs" in text:
        pytest.skip(text.strip())
    assert code == 0 and text.strip(), f"acula {name} --help exited {code}"
    for sub in nested:
        code, text, _ = help_of([name, sub], capsys, monkeypatch)
        assert code == 0 and f"acula {name} {sub}" in text, f"acula {name} {sub} --help exited {code}"


def test_version_is_printed_and_matches_the_package(capsys):
    import sdk

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"acula {sdk.__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["bench", "compare", "benchmarks/results/sdk_latency.json",
                                                "benchmarks/results/sdk_latency.json"]])
def test_a_closed_pipe_ends_quietly(argv: list[str]):
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # like `acula ... | head` after head has exited
    try:
        result = subprocess.run([sys.executable, "-m", "sdk", *argv], stdout=write_fd, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_fd)
    assert result.returncode == 141 and result.stderr == ""


def test_bench_compare_reads_the_readme_results_file(capsys):
    path = str(ROOT / "benchmarks/results/sdk_latency.json")
    assert main(["bench", "compare", path, path]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime int8: p50_ms 1.00, p99_ms 1.00, ms_per_audio_s 1.00" in out and "cold_start_s: 1.00" in out


def test_bench_compare_matches_an_acula_bench_report_with_a_flat_one(tmp_path: Path, capsys):
    flat = json.loads((ROOT / "benchmarks/results/sdk_latency.json").read_text())
    full = {"runs": [{"backend": "onnxruntime", "precision": "int8", "p50_ms": flat["hop_p50_ms"] * 2,
                      "p99_ms": flat["hop_p99_ms"], "ms_per_audio_s": flat["ms_per_audio_s"]}],
            "cold_start_s": 0.0, "peak_rss_mb": flat["peak_rss_mb"]}
    (tmp_path / "b.json").write_text(json.dumps(full))
    assert main(["bench", "compare", str(ROOT / "benchmarks/results/sdk_latency.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "p50_ms 2.00" in out and "cold_start_s: n/a" not in out


@pytest.mark.parametrize("content", [None, "[1, 2]", "{\"runs\": 3}", "not json"])
def test_bench_compare_refuses_what_is_not_a_report(tmp_path: Path, capsys, content: str | None):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["bench", "compare", str(path), str(path)]) == 1
    assert "acula bench compare:" in no_traceback(capsys)


def _store_with_a_crashed_session(path: Path) -> None:
    store = EventStore(path)
    sid = store.start_session("test", "toy", 16000)
    store.add_events(sid, [Event("cough", 1.0, 1.5, 0.9), Event("cough", 20.0, 20.4, 0.8)])
    store.start_session("test", "toy", 16000)  # killed before its first window
    store.close()


def test_report_on_a_crashed_session_plots_it_as_unclosed(tmp_path: Path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.axes

    _store_with_a_crashed_session(tmp_path / "e.sqlite")
    heights: list[float] = []
    bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", lambda self, x, h, *a, **k: heights.extend(h) or bar(
        self, x, h, *a, **k))
    assert main(["report", str(tmp_path / "e.sqlite"), "--out", str(tmp_path / "r.png")]) == 0
    assert heights == pytest.approx([2 / 20.4 * 3600, 0.0])  # not 2 / 1e-9 * 3600 = 7.2e12
    err = no_traceback(capsys)
    assert "session 1 was never closed" in err and "20.4 s" in err and "session 2 was never closed" in err


@pytest.mark.parametrize("what", ["wav", "directory", "other_sqlite"])
def test_report_on_something_that_is_no_event_store_says_so(tmp_path: Path, capsys, what: str):
    path = tmp_path / "x"
    if what == "wav":
        path = tmp_path / "x.wav"
        sf.write(path, np.zeros(1600, dtype=np.float32), 16000)
    elif what == "directory":
        path.mkdir()
    else:
        import sqlite3

        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    assert main(["report", str(path), "--out", str(tmp_path / "r.png")]) == 1
    assert "acula report:" in no_traceback(capsys)


def test_listen_without_an_input_device_says_so_and_leaves_no_database(tmp_path: Path, capsys):
    db = tmp_path / "e.sqlite"
    assert main(["listen", "--seconds", "1", "--device", "9999", "--db", str(db)]) == 1
    err = no_traceback(capsys)
    assert "acula listen:" in err and ("9999" in err or "libportaudio2" in err)
    assert not list(tmp_path.iterdir())


def _align_config(tmp_path: Path, text: str) -> str:
    (tmp_path / "c.json").write_text(text)
    return str(tmp_path / "c.json")


@pytest.mark.parametrize("config, message", [
    ("[1, 2]", "must hold a JSON object"),
    ('{"max_steps": "many"}', "max_steps must be an integer, got 'many'"),
    ('{"lr": "fast"}', "lr must be a number"),
    ('{"amp": "yes"}', "amp must be true or false"),
    ('{"batch_size": 0}', "batch_size must be at least 1"),
    ('{"max_steps": 10', "is not a readable JSON config"),
])
def test_align_refuses_a_bad_config_by_name(tmp_path: Path, capsys, config: str, message: str):
    pytest.importorskip("torch")
    code = main(["align", "--config", _align_config(tmp_path, config), "--corpus", str(tmp_path),
                 "--out", str(tmp_path / "run")])
    assert code == 1 and message in no_traceback(capsys)
    assert not (tmp_path / "run").exists()


def test_align_with_a_missing_corpus_says_so_and_makes_no_run_folder(tmp_path: Path, capsys):
    pytest.importorskip("torch")
    code = main(["align", "--config", "tiny-test", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert code == 1 and "is not a corpus directory" in no_traceback(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [["screen", "{missing}"], ["score", "{missing}"],
                                  ["index", "build", "{missing}", "--out", "{tmp}/idx"],
                                  ["search", "{missing}", "--index", "{tmp}"], ["check", "{missing}"],
                                  ["info", "{missing}"], ["report", "{missing}"]])
def test_missing_paths_end_in_one_line_not_a_traceback(tmp_path: Path, capsys, argv: list[str]):
    args = [a.format(missing=tmp_path / "missing.wav", tmp=tmp_path) for a in argv]
    assert main(args) == 1
    assert no_traceback(capsys).strip()


def test_path_errors_that_reach_the_top_end_in_one_line(capsys, monkeypatch):
    import sdk.check

    def raises(_argv):
        raise FileNotFoundError(2, "No such file or directory", "labels.csv")

    monkeypatch.setattr(sdk.check, "main", raises)
    assert main(["check", "x"]) == 1
    assert no_traceback(capsys).startswith("acula check: [Errno 2] No such file or directory: 'labels.csv'")
    monkeypatch.setenv("ACULA_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["check", "x"])
