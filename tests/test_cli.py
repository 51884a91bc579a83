"""The acula command line: usage, unknown commands, python -m, subcommands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from acula.sdk.cli import main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "check" in out


def test_unknown_command_exits_1_with_usage_on_stderr(capsys):
    assert main(["frobnicate"]) == 1
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_python_dash_m_sdk_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "acula", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: acula" in result.stdout


def test_demo_without_a_bundle_runs_the_front_end(capsys, tmp_path):
    assert main(["demo", "--duration-s", "2", "--bundle", str(tmp_path / "none"), "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "61 frames x 64 mels" in out  # 1 + (32000 - 1024) // 512
    assert "no cough" in out


def test_check_reports_flags_and_errors_as_json(tmp_path: Path, capsys):
    sf.write(tmp_path / "clipped.wav", np.clip(2 * np.sin(np.arange(16000) / 5), -1, 1), 16000)
    (tmp_path / "broken.wav").write_bytes(b"junk")
    code = main(["check", "--json", str(tmp_path / "clipped.wav"), str(tmp_path / "broken.wav")])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert rows[0]["quality"]["clipped"] is True
    assert rows[1]["error"] == "UnreadableAudioError"


def test_demo_with_the_default_bundle_prints_events_scores_and_latency(capsys, tmp_path):
    from acula.sdk.model import available_models

    if "default" not in available_models():
        import pytest

        pytest.skip("no packaged default bundle")
    assert main(["demo", "--duration-s", "6", "--plot", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert "cough events:" in out and "on threshold" in out and "lung  :" in out and "latency per hop" in out
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_every_option_in_the_readmes_command_table_exists(capsys):
    """Each ``acula CMD [SUB] ... --option`` in README.md's command table is an option of that command (its --help
    lists it), and a subcommand written there is one the command has."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## On the command line", 1)[1].split("\n\n", 2)[1]
    snippets = re.findall(r"`(acula [^`]+)`", table)
    checked = 0
    for snippet in snippets:
        words = snippet.split()
        if "/" in words[1]:  # corpus/align/distill/export: several commands in one cell
            continue
        command = words[1:2]
        if len(words) > 2 and re.fullmatch(r"[a-z][a-z-]+", words[2]):  # a subcommand: index build
            command.append(words[2])
        capsys.readouterr()
        assert main([*command, "--help"]) == 0, snippet
        usage = capsys.readouterr().out
        for option in re.findall(r"(--[a-z][a-z-]*)", snippet):
            assert option in usage, f"{snippet}: {option} is not an option of acula {' '.join(command)}"
            checked += 1
    assert checked >= 6  # --json, --plot, --cough-on, --labels, --replay, --index at least
