"""acula bench on the packaged default bundle with a short budget: runs and writes valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.cli import main
from sdk.model import available_models


@pytest.mark.skipif("default" not in available_models(), reason="no packaged default bundle")
def test_acula_bench_prints_a_table_and_valid_json(tmp_path: Path, capsys):
    out = tmp_path / "a.json"
    assert main(["bench", "--seconds", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {(r["backend"], r["precision"]) for r in report["runs"]} >= {("onnxruntime", "int8"),
                                                                         ("onnxruntime", "fp32")}
    assert all(r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in report["runs"])
    assert report["peak_rss_mb"] > 10 and report["cold_start_s"] > 0 and report["device"]["cores"] >= 1
    assert "| onnxruntime | int8 |" in capsys.readouterr().out
    assert main(["bench", "compare", str(out), str(out)]) == 0
    assert "p50_ms 1.00" in capsys.readouterr().out
