"""Every results table rendered from a stored results file renders again to the same bytes.

The tables are pure functions of the JSON beside them (no model, no data, no training), so a change that
claims to leave behaviour alone can prove it here: README.md's generated sections, MODEL_CARD.md, the primary
tables (``aligner.primary_report``), the older evaluation tables (``aligner.eval_report``; their title and command
lines are not in the JSON and are taken from the file) and each benchmark's ``.md``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _renderer(module: str, name: str) -> Callable[[Any], str]:
    return getattr(importlib.import_module(module), name)


def _stored(stem: str) -> Any:
    return json.loads((RESULTS / f"{stem}.json").read_text())


def _tables(kind: type) -> list[str]:
    """Stems of the results files that hold a ``kind`` (dict or list) and have a table beside them."""
    return sorted(p.stem for p in RESULTS.glob("*.json")
                  if p.with_suffix(".md").is_file() and isinstance(_stored(p.stem), kind))


def _module_of(command: str) -> str:
    """The module a stored command ran (``python -m M ...`` -> M), its ``acula.`` prefix dropped: files measured
    before the package moved under ``acula`` record the old spelling."""
    words = command.split()
    return words[2].removeprefix("acula.") if len(words) > 2 and words[:2] == ["python", "-m"] else ""


#: scripts that run ``aligner.primary`` in a process they changed and name themselves as the command
PRIMARY_SCRIPTS = ("scripts/level_floor_experiment.py",)


def _runs_primary(command: str) -> bool:
    words = command.split()
    return (_module_of(command).split(".") == ["aligner", "primary"]
            or (words[:1] == ["python"] and words[1:2] != [] and words[1] in PRIMARY_SCRIPTS))


#: results files written by ``python -m acula.aligner.primary`` (primary.json, the selections on val, ...), directly
#: or through one of ``PRIMARY_SCRIPTS``
PRIMARY = [s for s in _tables(dict) if _runs_primary(str(_stored(s).get("command", "")))]

#: results file -> the function its .md is rendered with
RENDERED = {
    **{stem: ("acula.aligner.primary_report", "to_markdown") for stem in PRIMARY},
    "cough_events": ("acula.benchmarks.cough_events", "markdown"),
    "crackle_fine_time": ("acula.benchmarks.crackle_fine_time", "to_markdown"),
    "operating_point_val": ("acula.benchmarks.operating_point_builds", "to_markdown"),
    "operating_point_test": ("acula.benchmarks.operating_point_builds", "to_markdown"),
    "level_compensation_heart": ("acula.benchmarks.level_compensation", "markdown"),
    "int8_export": ("acula.benchmarks.int8_export", "markdown"),
    "int8_tflite_calibration": ("acula.benchmarks.int8_tflite_calibration", "markdown"),
    "level_confound": ("acula.benchmarks.level_confound", "markdown"),
    "mcu": ("acula.benchmarks.mcu", "render_markdown"),
    "search": ("acula.benchmarks.search", "to_markdown"),
    "text_encoder": ("acula.benchmarks.text_encoder", "markdown"),
    "web": ("acula.benchmarks.web", "markdown"),
}

#: results files of ``python -m acula.aligner.evaluate`` (a list of rows per system and task)
EVALUATIONS = _tables(list)


@pytest.mark.parametrize("stem", sorted(RENDERED))
def test_each_benchmark_table_renders_from_its_json_to_the_same_bytes(stem: str):
    render = _renderer(*RENDERED[stem])
    assert render(_stored(stem)) == (RESULTS / f"{stem}.md").read_text()


def test_the_tflite_writer_takes_the_calibration_count_its_benchmark_chose():
    from acula.export.cli import EXPORT_TARGETS, TFLITE_CALIBRATION_WINDOWS

    assert _stored("int8_tflite_calibration")["chosen"] == TFLITE_CALIBRATION_WINDOWS
    assert {t.file: t.calibration for t in EXPORT_TARGETS}["student_int8.tflite"] == TFLITE_CALIBRATION_WINDOWS


def test_the_results_files_are_found():
    assert {"primary", "selection_levelnorm_val"} <= set(PRIMARY)
    assert {"align_eval", "distill_experiments", "retention"} <= set(EVALUATIONS)


@pytest.mark.parametrize("stem", EVALUATIONS)
def test_each_evaluation_table_renders_from_its_json_below_its_command_line(stem: str):
    from acula.aligner.eval_report import to_markdown

    stored = (RESULTS / f"{stem}.md").read_text()
    header = "\n".join(stored.split("\n")[:3])  # title, blank line, command: not in the JSON
    rows = _stored(stem)
    text = to_markdown(rows, header)
    tasks = dict.fromkeys(r["task"] for r in rows)  # plot_rocs draws one figure a task, in this order
    plots = [f"{stem}_roc_{t}.png" for t in tasks if (RESULTS / f"{stem}_roc_{t}.png").is_file()]
    if plots:
        text += "\nROC curves: " + ", ".join(f"`{p}`" for p in plots) + "\n"
    assert text == stored


def test_the_readme_regenerates_byte_for_byte(tmp_path: Path):
    from acula.benchmarks.readme import main

    copy = tmp_path / "README.md"
    copy.write_bytes((ROOT / "README.md").read_bytes())
    assert main(["--results", str(RESULTS), "--readme", str(copy)]) == 0
    assert copy.read_bytes() == (ROOT / "README.md").read_bytes()


def test_the_model_card_regenerates_byte_for_byte(tmp_path: Path):
    from acula.benchmarks.model_card import main

    out = tmp_path / "MODEL_CARD.md"
    assert main(["--bundle", str(ROOT / "sdk" / "models" / "default"), "--results", str(RESULTS),
                 "--out", str(out)]) == 0
    assert out.read_bytes() == (ROOT / "MODEL_CARD.md").read_bytes()
