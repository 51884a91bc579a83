"""precision="auto": measured once, cached per device and bundle, overridable; and the cough operating
point gives the same decisions on the packaged default's fp32 and int8 models on real recordings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from acula.sdk import precision as prec  # noqa: E402

from acula import sdk  # noqa: E402
from tests.toy_bundle import make_toy_bundle  # noqa: E402

DATA = Path(os.environ.get("ACULA_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return make_toy_bundle(tmp_path / "bundle")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("ACULA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ACULA_PRECISION", raising=False)
    return tmp_path / "cache"


def fake_timer(monkeypatch, ms: dict[str, float]) -> list[str]:
    """Make the micro-benchmark report ``ms`` per precision; returns the log of what it timed."""
    timed: list[str] = []
    order = iter(["int8", "fp32"] * 10)

    def median_ms(backend, window) -> float:
        name = next(order)
        timed.append(name)
        return ms[name]

    monkeypatch.setattr(prec, "_median_ms", median_ms)
    return timed


@pytest.mark.parametrize("int8_ms,fp32_ms,want", [(0.12, 0.06, "fp32"), (0.06, 0.12, "int8"), (0.10, 0.095, "int8")])
def test_auto_picks_the_faster_and_keeps_int8_unless_fp32_is_clearly_faster(bundle, monkeypatch, int8_ms, fp32_ms,
                                                                            want):
    fake_timer(monkeypatch, {"int8": int8_ms, "fp32": fp32_ms})
    assert sdk.load(bundle, precision="auto").precision == want


def test_auto_caches_its_choice_per_cpu_backend_and_bundle(bundle, monkeypatch, cache_dir: Path):
    timed = fake_timer(monkeypatch, {"int8": 0.2, "fp32": 0.1})
    first = sdk.load(bundle, precision="auto")
    assert first.precision == "fp32" and timed == ["int8", "fp32"]
    cache = json.loads((cache_dir / "precision.json").read_text())
    (key, entry), = cache.items()
    assert first.bundle.sha256 in key and prec.cpu_model() in key and "onnxruntime" in key
    assert entry["precision"] == "fp32" and set(entry["window_ms"]) == {"int8", "fp32"}
    assert sdk.load(bundle, precision="auto").precision == "fp32"
    assert timed == ["int8", "fp32"]  # the second load read the cache instead of measuring


def test_auto_measures_again_when_the_cache_is_unreadable(bundle, monkeypatch, cache_dir: Path):
    cache_dir.mkdir(parents=True)
    (cache_dir / "precision.json").write_text("{not json")
    timed = fake_timer(monkeypatch, {"int8": 0.1, "fp32": 0.2})
    assert sdk.load(bundle, precision="auto").precision == "int8" and len(timed) == 2


def test_auto_refuses_an_int8_model_that_disagrees_with_fp32(bundle, monkeypatch, cache_dir: Path):
    fake_timer(monkeypatch, {"int8": 0.05, "fp32": 0.2})  # int8 much faster, as a saturating kernel can be
    monkeypatch.setattr(prec, "int8_agreement", lambda int8, fp32, windows: 0.39)
    assert sdk.load(bundle, precision="auto").precision == "fp32"
    (entry,) = json.loads((cache_dir / "precision.json").read_text()).values()
    assert "disagrees" in entry["reason"] and entry["int8_cosine"] == 0.39


def test_probe_windows_are_deterministic_and_int8_agreement_is_measured(bundle):
    m = sdk.load(bundle, precision="fp32")
    a, b = prec.probe_windows(m.bundle), prec.probe_windows(m.bundle)
    assert a.shape == (3, m.window_frames, m.frontend.config.n_mels) and np.array_equal(a, b)
    assert prec.int8_agreement(m.backend, m.backend, a) == pytest.approx(1.0)
    flipped = lambda w: tuple(-o for o in m.backend(w))  # noqa: E731  (an "int8" that answers the opposite)
    assert prec.int8_agreement(flipped, m.backend, a) == pytest.approx(-1.0)


def test_acula_precision_overrides_auto_for_integer_only_targets(bundle, monkeypatch):
    timed = fake_timer(monkeypatch, {"int8": 0.2, "fp32": 0.1})
    monkeypatch.setenv("ACULA_PRECISION", "int8")
    assert sdk.load(bundle, precision="auto").precision == "int8" and timed == []


def test_auto_really_measures_the_toy_bundle(bundle, cache_dir: Path):
    m = sdk.load(bundle, precision="auto")
    assert m.precision in ("fp32", "int8")
    assert (cache_dir / "precision.json").is_file()
    m.screen(np.zeros(40000, np.float32) + 0.01, 16000)


def test_cough_operating_point_decides_the_same_on_fp32_and_int8():
    """Issue 26: on real recordings the packaged default's int8 graphs (every runtime auto may pick here) make
    the cough decisions its fp32 graphs make (``python -m acula.benchmarks.int8_decisions`` prints them)."""
    from acula.benchmarks.int8_decisions import compare, recordings

    if not DATA.is_dir():
        pytest.skip(f"real recordings not found at {DATA} (set ACULA_DATA)")
    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    res = compare("default", recordings(DATA))
    if not res["runtimes"]:
        pytest.skip("no runtime here runs the int8 student in agreement with fp32")
    for backend, r in res["runtimes"].items():
        assert r["recordings"] >= 10 and r["differ"] == [], (backend, r["differ"])


def test_the_packaged_int8_onnx_agrees_with_fp32_on_this_cpu():
    # the default's int8 ONNX before reduce_range: cosine 0.16-0.58 here (onnxruntime saturating on AVX2)
    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    from acula.sdk.runtimes import make_backend

    bundle = sdk.load("default", precision="fp32").bundle
    built = {p: make_backend("onnxruntime", bundle.files[bundle.model_file("onnxruntime", p)[0]])
             for p in ("int8", "fp32")}
    assert prec.int8_agreement(built["int8"], built["fp32"], prec.probe_windows(bundle)) >= 0.99


def test_a_side_change_counts_unless_fp32_is_within_the_int8_error_of_the_threshold():
    from acula.benchmarks.int8_decisions import UNDECIDED_LOGIT, side_changes

    on = 0.815  # logit 1.483
    assert side_changes([0.1, 0.83], [0.1, 0.81], on) == (False, [{"window": 1, "threshold": "on", "fp32": 0.83,
                                                                  "int8": 0.81, "fp32_logit_margin": 0.103}])
    far = 1 / (1 + np.exp(-(1.483 + UNDECIDED_LOGIT + 0.1)))  # fp32 confidently on, int8 off: counts
    assert side_changes([far], [0.5], on)[0]
    assert side_changes([0.9], [None], on)[0]  # scored at one precision only
    assert side_changes([0.9, 0.2], [0.9], on)[0]  # a window lost
    assert side_changes([0.9, 0.2], [0.95, 0.1], on) == (False, [])
    assert side_changes([0.8], [0.83], on)[1][0]["window"] == 0  # below to above, both near: listed
    assert side_changes([0.83], [0.001], on)[0]  # fp32 near the threshold, int8 far off it: counts
    assert side_changes([0.83], [float("nan")], on)[0] and side_changes([0.5], [float("nan")], on)[0]
    # the off-threshold (which keeps an event open) counts the same way once given
    off = 0.652
    assert side_changes([0.66], [0.64], on) == (False, [])
    assert side_changes([0.66], [0.64], on, off)[1][0]["threshold"] == "off"
    assert side_changes([0.66], [0.2], on, off)[0]  # int8 far below the off-threshold: counts


def test_an_event_difference_is_excused_only_when_undecided_windows_explain_it():
    """The replay runs the SDK's own stream and event detector on given window probabilities: with the model's
    own it gives ``screen``'s events; a difference is explained by undecided windows only when swapping just
    those windows' probabilities to fp32's gives fp32's events."""
    from acula.benchmarks.int8_decisions import explained_by_undecided, replay_events

    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    m = sdk.load("default", precision="fp32")
    clip = sdk.load_audio(Path(sdk.__file__).parent / "data" / "cough_smith2006_p05.flac", target_rate_hz=None)
    res = m.screen(clip.samples, clip.sample_rate_hz)
    probs = [w.cough_probability for w in res.windows]
    assert res.events and replay_events(m, clip.samples, clip.sample_rate_hz, probs) == [
        (e.start_s, e.end_s) for e in res.events]
    assert replay_events(m, clip.samples, clip.sample_rate_hz, [0.0] * len(probs)) == []
    events = [(e.start_s, e.end_s) for e in res.events]
    lowered = [0.0 if p is not None and p >= m.screening.on else p for p in probs]  # int8 says: no cough anywhere
    both = (events, replay_events(m, clip.samples, clip.sample_rate_hz, lowered))
    assert both[1] == []
    assert not explained_by_undecided(m, clip.samples, clip.sample_rate_hz, probs, lowered, both, set())
    assert not explained_by_undecided(m, clip.samples, clip.sample_rate_hz, probs, lowered, (events, events), set())
    every = {k for k, p in enumerate(probs) if p is not None and p >= m.screening.on}
    assert explained_by_undecided(m, clip.samples, clip.sample_rate_hz, probs, lowered, both, every)
