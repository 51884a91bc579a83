"""acula demo: the shipped real cough is detected, the synthetic heart and breathing are not, and the PNG is
written without matplotlib."""

from __future__ import annotations

import builtins
import zlib
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.cli import main
from acula.sdk.demo import shipped_cough


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_shipped_cough_and_its_attribution_are_package_data():
    path = Path(shipped_cough())
    assert path.is_file() and path.stat().st_size < 20_000
    note = (path.parent / "ATTRIBUTION.md").read_text()
    assert "CC BY 2.0" in note and "10.1186/1745-9974-2-1" in note


def test_demo_detects_the_real_cough_and_writes_a_png_without_matplotlib(tmp_path: Path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out_png = tmp_path / "demo.png"
    assert main(["demo", "--duration-s", "6", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    cough_part, synth_part = out.split("synthetic heart and breathing")
    n_cough = int(cough_part.split("cough events: ")[1].split()[0])
    n_synth = int(synth_part.split("cough events: ")[1].split()[0])
    assert n_cough >= 1 and n_synth == 0
    assert "on threshold" in out and f"wrote {out_png}" in out
    width, height = _png_size(out_png.read_bytes())
    assert width >= 600 and height >= 600


def test_png_writer_round_trips_its_pixels(tmp_path: Path):
    from acula.sdk.png import Canvas

    canvas = Canvas(7, 3)
    canvas.rect(1, 1, 3, 2, (10, 20, 30))
    canvas.text(3, 0, "A")
    data = canvas.png()
    assert _png_size(data) == (7, 3)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(3, 1 + 7 * 3)
    assert (raw[:, 0] == 0).all()  # filter type 0 on every row
    assert np.array_equal(raw[:, 1:].reshape(3, 7, 3), canvas.pixels)
    assert tuple(canvas.pixels[1, 1]) == (10, 20, 30)


def test_figure_draws_a_long_file_in_bounded_memory():
    from acula.sdk.figure import SignalSketch

    sketch = SignalSketch(16000, 16000 * 600)
    rng = np.random.default_rng(0)
    for _ in range(60):
        sketch.add((0.1 * rng.standard_normal(160000)).astype(np.float32))
        assert sketch._buf.size < 2 * 16000 * 600 // sketch.n_cols + 1024
    sketch.finish()
    assert np.isfinite(sketch.spec_db).all() and np.isfinite(sketch.hi).all()


def test_demo_without_a_bundle_still_runs_the_front_end(tmp_path: Path, capsys):
    pytest.importorskip("numba")
    assert main(["demo", "--duration-s", "2", "--bundle", str(tmp_path / "none"), "--out", ""]) == 0
    assert "61 frames x 64 mels" in capsys.readouterr().out
