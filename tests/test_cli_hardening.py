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
from acula.sdk.cli import COMMANDS, main
from acula.sdk.screening import Event
from acula.sdk.store import EventStore

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
    from acula import sdk

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"acula {sdk.__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["bench", "compare", "benchmarks/results/sdk_latency.json",
                                                "benchmarks/results/sdk_latency.json"]])
def test_a_closed_pipe_ends_quietly(argv: list[str]):
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # like `acula ... | head` after head has exited
    try:
        result = subprocess.run([sys.executable, "-m", "acula", *argv], stdout=write_fd, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_fd)
    assert result.returncode == 141 and result.stderr == ""


def test_bench_compare_reads_the_readme_results_file(capsys):
    path = str(ROOT / "benchmarks/results/sdk_latency.json")
    flat = json.loads(Path(path).read_text())
    assert main(["bench", "compare", path, path]) == 0
    out = capsys.readouterr().out
    assert f"{flat['backend']} {flat['precision']}: p50_ms 1.00, p99_ms 1.00, ms_per_audio_s 1.00" in out
    assert "cold_start_s: 1.00" in out


def test_bench_compare_matches_an_acula_bench_report_with_a_flat_one(tmp_path: Path, capsys):
    flat = json.loads((ROOT / "benchmarks/results/sdk_latency.json").read_text())
    full = {"runs": [{"backend": flat["backend"], "precision": flat["precision"], "p50_ms": flat["hop_p50_ms"] * 2,
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
    from acula.sdk import check

    def raises(_argv):
        raise FileNotFoundError(2, "No such file or directory", "labels.csv")

    monkeypatch.setattr(check, "main", raises)
    assert main(["check", "x"]) == 1
    assert no_traceback(capsys).startswith("acula check: [Errno 2] No such file or directory: 'labels.csv'")
    monkeypatch.setenv("ACULA_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["check", "x"])


# ---- one set of conventions, every command (issue #28) ----------------------------------------------------------

#: commands whose module another branch owns and that break a convention still: xfail until it is fixed there
CONVENTION_GAPS = {
}
#: commands that run a model, so take --threads
INFERENCE = {"screen", "score", "listen", "index build", "search", "demo", "bridge listen", "bench"}
#: spellings of "overwrite" other than --force
NOT_FORCE = {"--overwrite", "--clobber", "--replace", "-y", "--yes"}


def parsers_of(name: str, capsys, monkeypatch) -> list[argparse.ArgumentParser]:
    """Every parser ``acula NAME --help`` builds (the command's and its subcommands'); skips a command whose
    extra is not installed."""
    made: list[argparse.ArgumentParser] = []
    init = argparse.ArgumentParser.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(argparse.ArgumentParser, "__init__", recording)
    code = main([name, "--help"])
    text = capsys.readouterr()
    if code == 1 and "Install the extra it needs" in text.err:
        pytest.skip(text.err.strip())
    return made


def convention_problems(parser: argparse.ArgumentParser) -> list[str]:
    import re

    problems = []
    command = parser.prog.removeprefix("acula ")
    options = {s for a in parser._actions for s in a.option_strings if a.help != argparse.SUPPRESS}
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        if a.help == argparse.SUPPRESS:  # a deprecated alias
            continue
        what = f"{parser.prog} {'/'.join(a.option_strings) or a.dest}"
        if not (a.help or "").strip():
            problems.append(f"{what}: no help text")
            continue
        shown = parser._get_formatter()._get_help_string(a) or ""
        if len(re.findall(r"\(default[: ]", shown)) > 1:
            problems.append(f"{what}: the default is printed twice: {shown!r}")
        if "--json" in a.option_strings and a.nargs != 0:
            problems.append(f"{what}: --json must be a flag meaning JSON on stdout, not take a value")
        if a.dest == "force" and "--force" not in a.option_strings:
            problems.append(f"{what}: overwriting is spelled --force")
        if set(a.option_strings) & NOT_FORCE:
            problems.append(f"{what}: overwriting is spelled --force")
        if "--device" in a.option_strings and "torch" not in a.help:
            problems.append(f"{what}: --device means a torch device; a sound card is --input-device")
    if command in INFERENCE and "--threads" not in options:
        problems.append(f"{parser.prog}: runs a model but has no --threads")
    return problems


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=CONVENTION_GAPS[n], strict=False))
                                  if n in CONVENTION_GAPS else n for n in COMMANDS])
def test_every_command_follows_the_option_conventions(name: str, capsys, monkeypatch):
    parsers = parsers_of(name, capsys, monkeypatch)
    assert parsers, f"acula {name} builds no argparse parser"
    problems = [p for parser in parsers for p in convention_problems(parser)]
    assert not problems, "\n".join(problems)


def _tone(path: Path, seconds: float = 2.5, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


#: how to run each command that has --json, cheaply ({tmp}: a folder with a.wav and b.wav; {cough}: the shipped one)
JSON_RUNS = {
    "bench": ["bench", "--seconds", "0.5", "--json"],
    "check": ["check", "{tmp}/a.wav", "--json"],
    "screen": ["screen", "{tmp}/a.wav", "{tmp}/b.wav", "--json"],
    "score": ["score", "{tmp}/a.wav", "--labels", "lung", "--json"],
    "search": ["search", "{tmp}/a.wav", "--index", "{tmp}/idx", "--json"],
    "index build": ["index", "build", "{tmp}", "--out", "{tmp}/idx2", "--json"],
    "listen": ["listen", "--replay", "{cough}", "--fast", "--db", "{tmp}/e.sqlite", "--json"],
}


def test_json_means_json_on_stdout_for_every_command_that_has_it(tmp_path: Path, capsys, monkeypatch):
    from acula.sdk.demo import shipped_cough

    with_json = set()
    for name in COMMANDS:
        if name in CONVENTION_GAPS:
            continue
        try:
            parsers = parsers_of(name, capsys, monkeypatch)
        except pytest.skip.Exception:
            continue
        with_json |= {p.prog.removeprefix("acula ") for p in parsers
                      if any("--json" in a.option_strings for a in p._actions)}
    monkeypatch.undo()
    assert with_json - set(JSON_RUNS) == set(), "add a cheap run of each command with --json to JSON_RUNS"
    _tone(tmp_path / "a.wav")
    _tone(tmp_path / "b.wav", 3.0)
    assert main(["index", "build", str(tmp_path), "--out", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    for name in sorted(with_json):
        argv = [a.format(tmp=tmp_path, cough=shipped_cough()) for a in JSON_RUNS[name]]
        code = main(argv)
        out = capsys.readouterr().out
        assert code == 0 and out.strip(), f"acula {' '.join(argv)} exited {code} or printed nothing"
        for line in out.splitlines():
            json.loads(line)  # every line on stdout is one JSON value


def test_screen_takes_a_folder_and_a_glob_and_prints_one_json_line_per_file(tmp_path: Path, capsys):
    (tmp_path / "visit" / "night").mkdir(parents=True)
    files = [_tone(tmp_path / "visit" / "a.wav"), _tone(tmp_path / "visit" / "night" / "b.flac", 3.0),
             _tone(tmp_path / "visit" / "c.wav", 2.0)]
    (tmp_path / "visit" / "notes.txt").write_text("not audio")
    assert main(["screen", str(tmp_path / "visit"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == sorted(str(f) for f in files)
    assert main(["screen", str(tmp_path / "visit" / "*.wav"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [str(files[0]), str(files[2])]
    assert all("events" in r and "quality" in r for r in rows)


def test_a_glob_that_matches_nothing_is_reported_like_a_missing_file(tmp_path: Path, capsys):
    assert main(["screen", str(tmp_path / "*.wav"), "--json"]) == 1
    row = json.loads(capsys.readouterr().out)
    assert row["error"] == "UnreadableAudioError"


def test_screen_draws_a_progress_bar_on_a_terminal_only(tmp_path: Path, capsys, monkeypatch):
    _tone(tmp_path / "a.wav")
    assert main(["screen", str(tmp_path), "--json"]) == 0
    assert "[" not in capsys.readouterr().err  # not a terminal: stderr stays clean
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["screen", str(tmp_path), "--json"]) == 0
    assert "screening [" in capsys.readouterr().err


def test_screen_plot_draws_the_users_file_and_says_where(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _tone(tmp_path / "mine.wav")
    assert main(["screen", "mine.wav", "--plot"]) == 0
    out = capsys.readouterr().out
    assert "wrote mine.screen.png" in out
    assert (tmp_path / "mine.screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["screen", "mine.wav", "--plot", "--out", "figs/x.png", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays JSON; the note goes to stderr
    assert "wrote figs/x.png" in captured.err and (tmp_path / "figs" / "x.png").is_file()


def test_listen_replay_at_fast_speed_writes_the_events_to_its_store(tmp_path: Path, capsys):
    from acula.sdk.demo import shipped_cough

    db = tmp_path / "e.sqlite"
    assert main(["listen", "--replay", shipped_cough(), "--fast", "--db", str(db)]) == 0
    assert "replay:" in capsys.readouterr().out
    store = EventStore(db, read_only=True)
    events, sessions = store.events(), store.sessions()
    store.close()
    assert len(events) >= 1 and len(sessions) == 1 and sessions[0]["source"].startswith("replay:")


def test_listen_replay_of_an_unreadable_file_leaves_no_database(tmp_path: Path, capsys):
    (tmp_path / "x.wav").write_bytes(b"junk")
    assert main(["listen", "--replay", str(tmp_path / "x.wav"), "--db", str(tmp_path / "e.sqlite")]) == 1
    assert "acula listen:" in no_traceback(capsys)
    assert not (tmp_path / "e.sqlite").exists()


def test_listen_keeps_device_as_a_deprecated_alias_of_input_device(tmp_path: Path, capsys):
    assert main(["listen", "--device", "9999", "--db", str(tmp_path / "e.sqlite")]) == 1
    err = no_traceback(capsys)
    assert "--device is deprecated, use --input-device" in err and not list(tmp_path.iterdir())


def test_index_build_skips_silent_files_with_a_reason_and_needs_force_to_overwrite(tmp_path: Path, capsys):
    refs = tmp_path / "refs"
    refs.mkdir()
    _tone(refs / "tone.wav")
    sf.write(refs / "quiet.wav", np.zeros(48000, dtype=np.float32), 16000)
    assert main(["index", "build", str(refs), "--out", str(tmp_path / "idx"), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["n_indexed"] == 1
    assert summary["skipped"] == [{"file": "quiet.wav", "reason": f"{refs / 'quiet.wav'} is digital silence "
                                                                  "throughout (nothing to index)"}]
    assert "skipped quiet.wav: " in captured.err
    assert main(["index", "build", str(refs), "--out", str(tmp_path / "idx")]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main(["index", "build", str(refs), "--out", str(tmp_path / "idx"), "--force"]) == 0


def test_export_force_replaces_only_a_bundle_it_wrote(tmp_path: Path):
    pytest.importorskip("torch")
    from acula.export.cli import _not_replaceable

    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"files": {"student_int8.onnx": {}}}))
    (bundle / "student_int8.onnx").write_bytes(b"x")
    (bundle / "manifest.sig").write_bytes(b"s")
    assert _not_replaceable(bundle) is None
    (bundle / "my_notes.txt").write_text("keep me")
    assert "my_notes.txt" in (_not_replaceable(bundle) or "")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("keep me")
    assert "no readable bundle manifest" in (_not_replaceable(tmp_path / "plain") or "")


@pytest.mark.parametrize("name", ["align", "distill"])
def test_align_and_distill_list_their_presets(name: str, capsys):
    pytest.importorskip("torch")
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "presets:" in out and "tiny-test" in out and "default-cpu" in out


def test_align_without_config_says_which_preset_it_uses(tmp_path: Path, capsys):
    pytest.importorskip("torch")
    assert main(["align", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]) == 1
    assert "using preset default-cpu" in no_traceback(capsys)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan"])
def test_a_cough_threshold_outside_0_1_is_refused_in_one_line(capsys, value: str):
    fixture = ROOT / "sdk" / "data" / "cough_smith2006_p05.flac"
    assert main(["screen", str(fixture), "--cough-on", value]) == 1
    assert "strictly between 0 and 1" in no_traceback(capsys)


def test_the_cough_threshold_moves_the_events_of_screen(capsys):
    """The demo cough raises events at the bundle's operating point and none at a threshold above its windows'
    highest cough probability; --cough-on is what screen applies."""
    fixture = str(ROOT / "sdk" / "data" / "cough_smith2006_p05.flac")
    assert main(["screen", fixture, "--json", "--precision", "int8"]) == 0
    own = json.loads(capsys.readouterr().out)
    peak = max(w["cough_probability"] or 0.0 for w in own["windows"])
    assert own["events"] and peak < 1.0
    assert main(["screen", fixture, "--json", "--precision", "int8", "--cough-on", f"{(1 + peak) / 2:.9f}"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == []


def test_set_cough_threshold_scales_off_with_on_and_reaches_new_streams():
    from acula import sdk

    model = sdk.load("default", "onnxruntime", "int8")
    own = model.screening
    model.set_cough_threshold(0.9)
    assert model.screening.on == 0.9 and model.screening.off == round(0.9 * own.off / own.on, 4)
    assert model.screening.min_duration_s == own.min_duration_s
    assert model.stream().detector.cfg.on == 0.9
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        model.set_cough_threshold(float("nan"))
    assert model.screening.on == 0.9


# --- files that are not what they seem, output that cannot be written ----------------------------------------------


def test_a_fifo_or_folder_named_like_audio_is_refused_without_opening_it(tmp_path: Path):
    """A FIFO is refused before it is opened (opening it would block until a writer came, and three opens would
    drain one writer); ``index build`` does not pick one up from its folder; this runs in a subprocess so that a
    regression hangs there, not here."""
    fifo = tmp_path / "refs" / "live.wav"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    _tone(tmp_path / "refs" / "a.wav")
    (tmp_path / "dir.wav").mkdir()
    run = [sys.executable, "-m", "acula"]
    result = subprocess.run([*run, "screen", str(fifo), str(tmp_path / "dir.wav" / ".."), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert rows[0]["error"] == "UnreadableAudioError" and "not a regular file" in rows[0]["message"]
    result = subprocess.run([*run, "index", "build", str(fifo.parent), "--out", str(tmp_path / "idx"), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n_indexed"] == 1


@pytest.mark.parametrize("argv", [["screen", "{dir}"], ["screen", "{dir}/x.wav"], ["score", "{dir}"]])
def test_a_folder_with_no_audio_in_it_is_not_a_success(tmp_path: Path, capsys, argv: list[str]):
    (tmp_path / "x.wav").mkdir()  # a folder named like audio, empty
    assert main([a.format(dir=tmp_path) for a in argv]) == 1
    assert "no audio files" in no_traceback(capsys)


def test_output_to_a_full_disk_is_one_line_and_exit_1(tmp_path: Path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    wav = _tone(tmp_path / "a.wav")
    for argv in (["check", str(wav)], ["screen", str(wav), "--json"]):
        with open("/dev/full", "w") as full:
            result = subprocess.run([sys.executable, "-m", "acula", *argv], stdout=full, stderr=subprocess.PIPE,
                                    text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 1 and "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
        assert "No space left on device" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_figure_that_cannot_be_written_fails_the_run(tmp_path: Path, capsys):
    wav = _tone(tmp_path / "a.wav")
    (tmp_path / "file").write_text("a file, not a folder")
    assert main(["screen", str(wav), "--plot", "--out", str(tmp_path / "file" / "x.png")]) == 1
    assert "cannot write" in no_traceback(capsys)


@pytest.mark.parametrize("argv", [["search", "{wav}", "--index", "{tmp}", "-k", "0"],
                                  ["screen", "{wav}", "--block-s", "inf"], ["screen", "{wav}", "--block-s", "0"],
                                  ["screen", "{wav}", "--threads", "100000"]])
def test_option_values_out_of_range_are_usage_errors(tmp_path: Path, capsys, argv: list[str]):
    wav = _tone(tmp_path / "a.wav")
    assert main([a.format(wav=wav, tmp=tmp_path) for a in argv]) == 2
    assert "expected" in no_traceback(capsys)


def test_file_errors_name_their_cause(tmp_path: Path, capsys):
    """A missing file says so; NaN in a float WAV is a NonFiniteAudioError (not re-wrapped as unreadable, the path
    named once); a name that is not UTF-8 is read like any other."""
    assert main(["screen", str(tmp_path / "missing.wav"), "--json"]) == 1
    assert "No such file or directory" in json.loads(capsys.readouterr().out)["message"]
    x = np.zeros(16000, np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    assert main(["screen", str(tmp_path / "nan.wav"), "--json"]) == 1
    row = json.loads(capsys.readouterr().out)
    assert row["error"] == "NonFiniteAudioError" and row["message"].count("nan.wav") == 1
    odd = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.wav")  # Latin-1 bytes: not UTF-8
    os.replace(_tone(tmp_path / "plain.wav"), odd)
    assert main(["check", "--json", odd]) == 0
    assert json.loads(capsys.readouterr().out)["duration_s"] == pytest.approx(2.5)


def test_check_reads_in_blocks_what_load_audio_reads_whole(tmp_path: Path, capsys):
    from acula.sdk.audio import load_audio
    from acula.sdk.check import describe

    rng = np.random.default_rng(0)
    for rate, channels in ((16000, 1), (44100, 2), (8000, 1)):
        path = tmp_path / f"{rate}.wav"
        x = (0.1 * rng.standard_normal((int(23.3 * rate), channels))).astype(np.float32)
        x[1000 : 1000 + x.shape[0] // 20] = 1.0  # a clipped run, 5 % of the samples
        sf.write(path, x, rate, subtype="FLOAT")
        whole = load_audio(path, 16000).to_dict()
        blocks, flags = describe(str(path), 16000)
        assert {k: v for k, v in blocks.items() if k != "quality"} == {k: v for k, v in whole.items() if k != "quality"}
        assert blocks["quality"].pop("rms_dbfs") == pytest.approx(whole["quality"].pop("rms_dbfs"), abs=1e-9)
        assert blocks["quality"] == whole["quality"] and flags.clipped


def test_a_clip_too_short_to_score_says_not_scored_without_a_tiled_copy(tmp_path: Path, capsys):
    _tone(tmp_path / "short.wav", 500 / 16000)  # under one frame
    main(["score", str(tmp_path / "short.wav")])
    out = capsys.readouterr().out
    assert "not scored (shorter than one analysis window)" in out and "tiled" not in out
    _tone(tmp_path / "tiled.wav", 0.5)  # under one window, over one frame: scored on a tiled copy
    main(["score", str(tmp_path / "tiled.wav")])
    assert "(shorter than one analysis window (scored on a tiled copy))" in capsys.readouterr().out


def test_an_index_records_its_bundle_and_search_refuses_another(tmp_path: Path, capsys):
    from tests.toy_bundle import make_toy_bundle

    refs = tmp_path / "refs"
    refs.mkdir()
    _tone(refs / "tone.wav")
    assert main(["index", "build", str(refs), "--out", str(tmp_path / "idx"), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", str(refs / "tone.wav"), "--index", str(tmp_path / "idx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["file"] == "tone.wav"
    other = make_toy_bundle(tmp_path / "other", embed_dim=int(json.loads(
        (ROOT / "sdk" / "models" / "default" / "manifest.json").read_text())["embed_dim"]))
    assert main(["search", str(refs / "tone.wav"), "--index", str(tmp_path / "idx"), "--bundle", str(other)]) == 1
    assert "was built with the bundle" in no_traceback(capsys)
