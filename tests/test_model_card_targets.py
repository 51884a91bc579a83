"""The model card's table of issue 24's targets: each verdict follows its figure across the threshold (built from a
copy of the stored results with one figure moved), and the table lists the shipped bundle's own figures."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUNDLE = ROOT / "sdk" / "models" / "default"


def _row(lines: list[str], start: str) -> str:
    hits = [line for line in lines if line.startswith(f"| {start}")]
    assert len(hits) == 1, (start, hits)
    return hits[0]


def _table_after(results: Path, edit: Callable[[dict], None]) -> list[str]:
    """The targets table after ``edit`` changed the shipped system's invariance tables in the copied results."""
    from acula.benchmarks.model_card import SHIPPED_SYSTEM, targets_section

    path = results / "primary_default.json"
    res = json.loads(path.read_text())
    edit(res["invariance"][SHIPPED_SYSTEM])
    path.write_text(json.dumps(res))
    return targets_section(BUNDLE, results)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    for name in ("primary_default.json", "calibration.json", "cough_screening_val.json", "cough_screening.json",
                 "cough_screening_phone_mulaw8k_val.json", "cough_screening_phone_mulaw8k_test.json"):
        shutil.copy(RESULTS / name, out / name)
    return out


def test_the_table_reads_the_shipped_bundles_own_figures(results: Path):
    from acula.benchmarks.model_card import SHIPPED_SYSTEM, targets_section

    lines = targets_section(BUNDLE, results)
    res = json.loads((results / "primary_default.json").read_text())
    crackles = res["rows"][SHIPPED_SYSTEM]["crackles"]["native"]["auroc"]
    assert f"| {crackles:.3f} (" in _row(lines, "crackles AUROC >= 0.75")
    size = sum(int(i["bytes"]) for i in json.loads((BUNDLE / "manifest.json").read_text())["files"].values())
    assert f"{size / 1e6:.2f} MB" in _row(lines, "bundle <= 2 MB")
    met = sum(1 for line in lines if line.endswith("| met |"))
    assert f"{met} of " in lines[-2]


@pytest.mark.parametrize(("task", "target", "row"), [("crackles", 0.75, "crackles AUROC >= 0.75"),
                                                     ("cough", 0.99, "cough AUROC >= 0.99")])
def test_a_verdict_follows_its_figure_across_the_threshold(results: Path, task: str, target: float, row: str):
    from acula.benchmarks.model_card import SHIPPED_SYSTEM, targets_section

    path = results / "primary_default.json"
    res = json.loads(path.read_text())
    verdicts = []
    for auroc in (target - 0.001, target + 0.001):
        res["rows"][SHIPPED_SYSTEM][task]["native"]["auroc"] = auroc
        path.write_text(json.dumps(res))
        verdicts.append(_row(targets_section(BUNDLE, results), row).rsplit("|", 2)[-2].strip())
    assert verdicts == ["**not met**", "met"]


def test_a_gain_shift_over_the_target_is_not_met(results: Path):
    def edit(inv: dict) -> None:
        inv["heart_abnormal"]["gain-24"]["native_shift_max"] = 0.2

    line = _row(_table_after(results, edit), "the same: max probability shift")
    assert "0.200" in line and line.endswith("| **not met** |")


def test_without_the_bundles_evaluation_there_is_no_table(tmp_path: Path):
    from acula.benchmarks.model_card import targets_section

    assert targets_section(BUNDLE, tmp_path) == []


def test_a_missing_shift_reads_not_available_not_zero(results: Path):
    def edit(inv: dict) -> None:
        for key in ("native_shift_max", "probe_shift_max"):
            inv["heart_abnormal"]["gain-12"].pop(key, None)

    assert _row(_table_after(results, edit), "the same: max probability shift").endswith("| n/a | n/a |")


def test_a_record_lost_at_any_level_is_not_met(results: Path):
    def edit(inv: dict) -> None:
        inv["crackles"]["gain-24"]["n_lost"] = 2

    line = _row(_table_after(results, edit), "no valid recording loses its score")
    assert line.startswith("| no valid recording loses its score from -40 dBFS peak up | 2 unscored")
    assert line.endswith("| **not met** |")
