"""The browser page (sdk/web) in headless Chromium against the SDK (sdk.load("default"), onnxruntime fp32).

Needs playwright (the [web] extra), Debian's chromium and sdk/web/node_modules (npm ci); every test that drives
the page skips with the reason when one is missing.  `bash scripts/install.sh --all` installs all three.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from acula.sdk.bench import time_hops
from acula.sdk.frontend import mel_filterbank
from acula.sdk.quality import INACTIVE_BELOW_LOUDEST_DB
from acula.sdk.web import build, harness

from acula import sdk
from tests.conftest import shared_data_dir

# a Smith 2006 cough the default flags (p03 was used until the default of 2026-12-06, whose operating point, 0.99,
# leaves it unflagged: its peak is 0.96); 0.83 s, shorter than one window
COUGH = (shared_data_dir() or Path("absent")) / "smith2006_cough" / "audio" / "smith2006_p08.flac"

needs_browser = pytest.mark.skipif(harness.missing() is not None, reason=str(harness.missing()))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web_model")
    build.build(out)
    return out


@pytest.fixture(scope="module")
def sdk_model() -> sdk.Model:
    return sdk.load("default", precision="fp32")


@pytest.fixture(scope="module")
def browser():
    if harness.missing():
        pytest.skip(str(harness.missing()))
    with harness.launch(fake_mic=True) as b:
        yield b


@pytest.fixture(scope="module")
def page(browser, model_dir: Path):
    with harness.open_page(browser, model_dir) as p:
        yield p
        assert not [m for m in p.acula_console if m.startswith(("error", "pageerror"))], p.acula_console


def test_build_writes_the_bundles_tables(model_dir: Path, sdk_model: sdk.Model) -> None:
    desc = json.loads((model_dir / "model.json").read_text())
    fb = np.zeros((desc["frontend"]["n_fft"] // 2 + 1, desc["frontend"]["n_mels"]))
    for m, band in enumerate(desc["mel_bands"]):
        fb[band["start"] : band["start"] + len(band["weights"]), m] = band["weights"]
    np.testing.assert_array_equal(fb, mel_filterbank(sdk_model.frontend.config))
    prompts = np.fromfile(model_dir / "prompts.f32", dtype="<f4").reshape(desc["prompts"]["shape"])
    np.testing.assert_array_equal(prompts, sdk_model.prompts)
    assert (model_dir / desc["student"]["file"]).read_bytes() == sdk_model.bundle.files[desc["student"]["file"]]
    assert desc["screening"] == dataclasses.asdict(sdk_model.screening)  # the split parameters included
    assert desc["screening"]["split_coughs"] is True
    assert desc["quality"]["inactive_below_loudest_db"] == INACTIVE_BELOW_LOUDEST_DB
    assert desc["temperature"] == sdk_model.temperature


def test_build_refuses_to_overwrite_without_force(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(model_dir)]) == 1
    assert "pass -f" in capsys.readouterr().err


def test_web_package_imports_neither_torch_nor_playwright() -> None:
    code = ("import sys; import acula.sdk.web, acula.sdk.web.build, acula.sdk.web.harness, acula.sdk.web.__main__; "
            "print(sorted(m for m in ('torch', 'playwright') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


@needs_browser
def test_page_matches_the_sdk_on_a_synthetic_recording(page, sdk_model: sdk.Model, tmp_path: Path) -> None:
    x = harness.synthetic_recording(10.0)
    path = harness.write_wav(tmp_path / "synthetic.wav", x)
    browser = harness.analyse(page, path)
    reference = harness.sdk_result(sdk_model, path)
    report = harness.parity(browser, reference)
    print("parity, synthetic:", report)
    assert report["ok"], report
    assert report["min_cosine"] >= 0.99
    assert any(w["problems"] == ["silent"] for w in browser["windows"])  # the quality gate ran in the page
    # per-hop latency beside the SDK's on the same samples (one thread each), as the page measured it
    _, _, sdk_ms = time_hops(sdk_model, sdk.load_audio(path).samples)
    web_ms = np.asarray(browser["latency_ms"])
    print(f"per-hop latency: browser WASM 1 thread p50 {np.median(web_ms):.2f} ms, p99 "
          f"{np.percentile(web_ms, 99):.2f} ms; SDK onnxruntime fp32 p50 {np.median(sdk_ms):.2f} ms, "
          f"p99 {np.percentile(sdk_ms, 99):.2f} ms")
    assert len(web_ms) == -(-x.size // browser["hop_samples"])
    assert np.median(web_ms) < 1e3 * browser["hop_samples"] / 16000  # keeps up with real time


@needs_browser
def test_page_resamples_a_44k_recording_as_the_sdk_does(page, sdk_model: sdk.Model, tmp_path: Path) -> None:
    from acula.sdk.synth import synth_recording

    x, _ = synth_recording(6.0, sample_rate_hz=44100, seed=7)
    path = harness.write_wav(tmp_path / "synthetic_44k.wav", x, 44100)
    browser = harness.analyse(page, path)
    assert (browser["source_rate_hz"], browser["resampled_by"]) == (44100, "acula.js")
    report = harness.parity(browser, harness.sdk_result(sdk_model, path))
    print("parity, 44.1 kHz:", report)
    assert report["ok"], report


@needs_browser
@pytest.mark.shared_data
@pytest.mark.skipif(not COUGH.is_file(), reason=f"{COUGH} is absent (shared data)")
@pytest.mark.parametrize("padded", [False, True], ids=["flac-as-recorded", "in-6s-of-noise"])
def test_page_matches_the_sdk_on_a_recorded_cough(page, sdk_model: sdk.Model, tmp_path: Path, padded: bool) -> None:
    # as recorded: 0.83 s of FLAC, shorter than one window (the tiled-window path); padded: a streamed recording
    path = harness.write_wav(tmp_path / "cough.wav", harness.cough_in_noise(COUGH)) if padded else COUGH
    browser = harness.analyse(page, path)
    reference = harness.sdk_result(sdk_model, path)
    report = harness.parity(browser, reference)
    print(f"parity, {path.name}:", report)
    assert report["ok"], report
    assert browser["events"], "the recorded cough raises an event in the SDK and so must in the page"


@needs_browser
def test_page_splits_coughs_and_gates_quiet_windows_as_the_sdk_does(browser, model_dir: Path, sdk_model: sdk.Model,
                                                                    tmp_path: Path) -> None:
    # every scored window is "cough" (on = off = 0 in both), so the split into single coughs alone decides the
    # events: a bout of three coughs 400 ms apart and a single one, in noise at -65 dBFS.  The quiet windows
    # before the first cough are scored (nothing louder seen yet); those after it are gated low_level.
    from tests.test_cough_events import burst

    rate = 16000
    x = (10 ** (-65 / 20) * np.random.default_rng(3).standard_normal(12 * rate)).astype(np.float32)
    for onset_s, part in [(3.0 + 0.4 * k, burst(0.3, 0.08, k)) for k in range(3)] + [(6.0, burst(0.5, 0.15, 7))]:
        x[int(onset_s * rate) : int(onset_s * rate) + part.size] += part
    path = harness.write_wav(tmp_path / "bout.wav", x)
    split_dir = tmp_path / "model"
    shutil.copytree(model_dir, split_dir)
    desc = json.loads((split_dir / "model.json").read_text())
    desc["screening"].update(on=0.0, off=0.0)
    (split_dir / "model.json").write_text(json.dumps(desc))
    model = sdk.load("default", precision="fp32")
    model.screening = dataclasses.replace(model.screening, on=0.0, off=0.0)
    reference = harness.sdk_result(model, path)
    with harness.open_page(browser, split_dir) as page:
        result = harness.analyse(page, path)
    report = harness.parity(result, reference)
    print("parity, bout:", report, [(e["start_s"], e["end_s"]) for e in result["events"]])
    assert report["ok"], report
    assert [round(e["start_s"], 1) for e in reference["events"] if 2.5 < e["start_s"] < 5.0] == [3.0, 3.4, 3.8]
    assert any(round(e["start_s"], 1) == 6.0 for e in reference["events"])
    problems = [w["problems"] for w in reference["windows"]]
    assert problems[0] == [] and ["low_level"] in problems


@needs_browser
def test_page_shows_plot_scores_and_events(page, tmp_path: Path) -> None:
    path = harness.write_wav(tmp_path / "plot.wav", harness.synthetic_recording(10.0))
    result = harness.analyse(page, path)
    assert set(result["scores"]) == {"heart", "lung", "sound"}
    assert "breathing" in page.inner_text("#scores")
    assert len(page.query_selector_all("#events tr")) == len(result["events"])
    shot = tmp_path / "web_page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 20_000


@needs_browser
def test_microphone_path_streams_windows(page) -> None:
    # Chromium's fake capture device (a beep) stands in for the microphone
    page.click("#mic")
    page.wait_for_function("document.body.dataset.state === 'live'", timeout=10_000)
    page.wait_for_function("window.aculaLive && window.aculaLive.n_windows >= 1", timeout=15_000)
    page.click("#mic")
    page.wait_for_function("document.body.dataset.state === 'ready'", timeout=10_000)
    assert page.evaluate("window.aculaLive.seconds") >= 1.98


@needs_browser
def test_page_refuses_a_model_file_that_does_not_match_its_hash(browser, model_dir: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "model"
    shutil.copytree(model_dir, tampered)
    graph = tampered / json.loads((tampered / "model.json").read_text())["student"]["file"]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256"), harness.open_page(browser, tampered):
        pass


@needs_browser
@pytest.mark.parametrize("mode", ["shift", "keep-floor", "range"])
def test_page_scores_a_level_bundle_as_the_sdk_does_at_two_gains(browser, tmp_path: Path, mode: str) -> None:
    # a bundle whose windows the SDK shifts to a running level (sdk.level) on a front end floored at -160 dB, with
    # the level-blind gate: the page must shift and gate as the SDK does (the gain blindness itself, on float
    # samples, is tests/test_level.py's; here 16-bit WAV and digital silence set absolute floors of their own)
    from acula.sdk.frontend_config import FrontendConfig
    from acula.sdk.level import LevelShift

    from tests.toy_bundle import make_toy_bundle

    front = FrontendConfig(amin_power=1e-16)
    keep_floor = mode == "keep-floor"
    block = LevelShift().to_manifest() | ({"keep_floor": True} if keep_floor else {}) | (
        {"range_db": 60.0} if mode == "range" else {})  # range: a relative floor high enough to raise quiet cells
    bundle = make_toy_bundle(tmp_path / "level_bundle", window_frames=62, hop_frames=15, frontend=front, level=block)
    plain = sdk.load(make_toy_bundle(tmp_path / "plain_bundle", window_frames=62, hop_frames=15, frontend=front),
                     precision="fp32")
    out = tmp_path / "level_web"
    desc = build.build(out, str(bundle))
    from acula.sdk.level import floor_cell

    low = float(np.float32(LevelShift().ref - 60.0 / front.norm_std_db)) if mode == "range" else None
    assert desc["level"] == {**block, "floor": floor_cell(front) if keep_floor else None, "low": low}
    model = sdk.load(bundle, precision="fp32")
    no_range = sdk.load(make_toy_bundle(tmp_path / "no_range_bundle", window_frames=62, hop_frames=15, frontend=front,
                                        level=LevelShift().to_manifest()), precision="fp32")
    x = harness.synthetic_recording(12.0)
    x[16000 * 8 :] *= np.float32(0.03)  # a stretch 30 dB quieter: the relative gate's business
    with harness.open_page(browser, out) as page:
        for gain_db in (0.0, -24.0):
            path = harness.write_wav(tmp_path / f"level_{-gain_db:.0f}.wav", x * np.float32(10 ** (gain_db / 20)))
            browser_result, reference = harness.analyse(page, path), harness.sdk_result(model, path)
            report = harness.parity(browser_result, reference)
            print(f"parity, level bundle at {gain_db} dB:", report)
            assert report["ok"], report
            assert any(w["problems"] == ["low_level"] for w in reference["windows"])
            # the same windows unshifted and gated as shipped read differently: the page did shift
            assert not harness.parity(browser_result, harness.sdk_result(plain, path))["ok"]
            if mode == "range":  # and the relative floor raised cells: the same shift without it reads differently
                assert not harness.parity(browser_result, harness.sdk_result(no_range, path))["ok"]
