"""Files stream from disk in blocks: iter_audio_blocks reads what load_audio reads, and screen / score / index
on blocks give exactly the whole-file results, whatever the block length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from acula.benchmarks.screen_scaling import write_recording
from acula.sdk.audio import EmptyAudioError, UnreadableAudioError, iter_audio_blocks, load_audio
from acula.sdk.model import load
from acula.sdk.results import ScreenResult, WindowLog, WindowResult
from acula.sdk.screen_cli import score_result, screen_result, stream_file
from acula.sdk.synth import synth_recording


@pytest.fixture(scope="module")
def model():
    return load("default")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """A 16 kHz mono recording with a real cough between synthetic breathing, a 44.1 kHz stereo one, and a WAV
    cut short of its header."""
    from acula.sdk.demo import shipped_cough

    root = tmp_path_factory.mktemp("rec")
    x, _ = synth_recording(4.0, seed=3, cough_onsets_s=())
    cough = load_audio(shipped_cough()).samples
    sf.write(root / "mono16k.wav", np.concatenate([0.2 * x, cough, cough, 0.2 * x]), 16000, subtype="PCM_16")
    y, _ = synth_recording(7.0, sample_rate_hz=44100, seed=4)
    sf.write(root / "stereo44k.flac", np.stack([y, 0.5 * y], 1), 44100)
    data = (root / "mono16k.wav").read_bytes()
    (root / "cut.wav").write_bytes(data[: len(data) * 2 // 3])
    return {p.stem: p for p in root.iterdir()}


@pytest.mark.parametrize("name", ["mono16k", "stereo44k", "cut"])
@pytest.mark.parametrize("block_s", [0.37, 10.0])
def test_blocks_hold_the_samples_and_flags_load_audio_gives(recordings, name: str, block_s: float):
    blocks = iter_audio_blocks(recordings[name], block_s)
    samples = np.concatenate(list(blocks))
    clip = load_audio(recordings[name], target_rate_hz=None)
    assert blocks.sample_rate_hz == clip.sample_rate_hz and np.array_equal(samples, clip.samples)
    assert blocks.quality() == clip.quality and blocks.truncated is (name == "cut")
    with pytest.raises(RuntimeError, match="already read"):
        list(blocks)


def test_block_reader_caps_a_block_at_max_block_samples_over_all_channels(recordings):
    blocks = iter_audio_blocks(recordings["stereo44k"], 10.0, max_block_samples=1001)
    parts = list(blocks)
    assert blocks.block_frames == 500 and max(p.shape[0] for p in parts) == 500
    assert np.array_equal(np.concatenate(parts), load_audio(recordings["stereo44k"], target_rate_hz=None).samples)


def test_block_reader_checks_the_header_before_reading(tmp_path: Path):
    (tmp_path / "junk.wav").write_bytes(b"junk")
    with pytest.raises(UnreadableAudioError):
        iter_audio_blocks(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(EmptyAudioError):
        list(iter_audio_blocks(tmp_path / "empty.wav"))


@pytest.mark.parametrize("name", ["mono16k", "stereo44k", "cut"])
@pytest.mark.parametrize("block_s", [0.37, 3.0, 60.0])
def test_screen_and_score_on_blocks_equal_the_whole_file(model, recordings, name: str, block_s: float):
    from acula.sdk.screen_cli import _with_file_flags

    clip = load_audio(recordings[name], target_rate_hz=None)
    blocks = iter_audio_blocks(recordings[name], block_s)
    stream, windows = stream_file(model, blocks)
    whole = _with_file_flags(model.screen(clip.samples, clip.sample_rate_hz), blocks)
    streamed = screen_result(model, stream, windows, blocks)
    assert json.dumps(streamed.to_dict()) == json.dumps(whole.to_dict())
    assert [w.embedding.tobytes() for w in streamed.windows] == [w.embedding.tobytes() for w in whole.windows]
    for label_set in sorted(model.label_sets):
        whole_score = _with_file_flags(model.score(clip.samples, clip.sample_rate_hz, label_set), blocks)
        assert json.dumps(score_result(model, stream, windows, blocks, label_set).to_dict()) == \
            json.dumps(whole_score.to_dict())
    if name == "mono16k":
        assert len(whole.events) >= 1  # the comparison covers events, not only their absence


def test_index_embedding_on_blocks_equals_the_whole_file_at_the_model_rate(model, recordings):
    from acula.sdk.index_cli import clip_embedding

    clip = load_audio(recordings["stereo44k"], model.sample_rate_hz)
    emb = model.embed(clip.samples, clip.sample_rate_hz).embeddings
    whole = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).mean(0)
    assert np.array_equal(clip_embedding(model, recordings["stereo44k"], block_s=0.5), whole)


def test_acula_screen_output_does_not_depend_on_the_block_length(recordings, capsys):
    from acula.sdk.cli import main

    outs = []
    for block_s in ("0.25", "30"):
        assert main(["screen", str(recordings["mono16k"]), "--json", "--block-s", block_s]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and json.loads(outs[0])["n_events"] >= 1


def _window(i: int, p: float | None, problems: tuple[str, ...] = (), padded: bool = False) -> WindowResult:
    return WindowResult(i, round(0.48 * i, 4), round(0.48 * i + 1.984, 4), np.ones(8, np.float32), p,
                        {"lung": np.zeros(3)}, problems, padded)


def test_window_log_keeps_every_field_screening_reports():
    windows = [_window(i, None if i % 5 == 0 else i / 1000, (("silent", "clipped", "low_level", "too_short")[i % 4],)
                       if i % 5 == 0 else (), padded=i == 3) for i in range(1500)]
    windows.append(_window(1500, None, ("silent", "clipped")))
    log = WindowLog(windows)
    assert len(log) == 1501 and [w.to_dict() for w in log] == [w.to_dict() for w in windows]
    assert log[-1].problems == ("silent", "clipped") and log[3].padded and log[5].cough_probability is None
    assert [w.index for w in log[1498:]] == [1498, 1499, 1500] and log[1].embedding.shape == (0,)
    with pytest.raises(IndexError):
        log[1501]
    with pytest.raises(ValueError, match="not a subset"):
        log.append(_window(1501, None, ("clipped", "silent")))


@pytest.mark.parametrize("n_windows", [0, 1, 3])
def test_screen_json_line_in_pieces_equals_the_whole_line(n_windows: int):
    from acula.sdk.screen_cli import json_line, screen_json_line

    result = ScreenResult(9.0, [], WindowLog(_window(i, 0.5) for i in range(n_windows)), None, 0.0)
    assert "".join(screen_json_line("a.wav", result)) == "".join(json_line("a.wav", result))


def test_acula_screen_json_of_a_long_file_equals_the_whole_clip(tmp_path: Path, capsys):
    """Blocks from disk, a WindowLog and a JSON line written in pieces give the text of the whole-clip call, events
    included: both at a cough threshold the synthetic coughs reach (they peak at 0.5-0.72, under the shipped point)."""
    from acula.sdk.cli import main

    path = write_recording(tmp_path / "long.wav", 90.0, 44100, 2, cough_at_s=(12.0, 47.5, 81.0))
    assert main(["screen", str(path), "--json", "--cough-on", "0.5"]) == 0
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    reference = load("default")  # not the module's shared model: its threshold stays the bundle's
    reference.set_cough_threshold(0.5)
    whole = json.dumps({"path": str(path), **reference.screen(samples, rate).to_dict()}, allow_nan=False) + "\n"
    out = capsys.readouterr().out
    assert out == whole
    assert json.loads(out)["n_events"] >= 3 and json.loads(out)["n_windows"] > 150


@pytest.mark.slow
@pytest.mark.parametrize("command", [["screen"], ["score", "--labels", "lung"]])
def test_traced_memory_does_not_grow_with_the_recording(model, tmp_path: Path, monkeypatch, command: list[str]):
    """Python and numpy allocations of one ``acula screen --json`` / ``acula score --json`` (model loaded
    before): a 10 min file peaks within 0.5 MB of a 1 min one (a list of WindowResults kept 2.5 KB a window:
    2.8 MB more)."""
    import os
    import tracemalloc

    from acula.sdk import screen_cli
    from acula.sdk.cli import main

    monkeypatch.setattr(screen_cli, "load", lambda *args, **kwargs: model)
    peaks = []
    for duration_s in (60.0, 600.0):
        path = write_recording(tmp_path / f"{duration_s:.0f}.wav", duration_s, 16000, 1)
        with open(os.devnull, "w") as null:
            monkeypatch.setattr("sys.stdout", null)
            tracemalloc.start()
            try:
                assert main([command[0], str(path), *command[1:], "--json"]) == 0
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
    assert peaks[1] - peaks[0] < 0.5e6, peaks


def _peak_rss_kb(path: Path) -> int:
    """VmHWM of a fresh ``acula screen --json`` process on ``path`` (Linux)."""
    import subprocess
    import sys

    code = ("import sys; from acula.sdk.cli import main; rc = main(['screen', sys.argv[1], '--json']); "
            "sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    return int(out.stderr.strip().splitlines()[-1].split()[1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_screen_peak_rss_does_not_grow_with_the_recording(tmp_path: Path):
    """A 10 min 44.1 kHz stereo file (106 MB as PCM) peaks within 10 MB of a 1 min one: it streams, whole."""
    short = _peak_rss_kb(write_recording(tmp_path / "1min.wav", 60.0, 44100, 2))
    long = _peak_rss_kb(write_recording(tmp_path / "10min.wav", 600.0, 44100, 2))
    assert long - short < 10_000, (short, long)


def test_acula_score_json_of_a_long_file_equals_the_whole_clip(model, tmp_path: Path, capsys):
    """Scoring keeps a ScoreLog (label logits, no embeddings) and still prints the whole-clip call's text."""
    from acula.sdk.cli import main

    path = write_recording(tmp_path / "long.wav", 90.0, 44100, 2, cough_at_s=(12.0, 47.5, 81.0))
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    for labels in ("lung", "sound"):
        assert main(["score", str(path), "--labels", labels, "--json"]) == 0
        whole = json.dumps({"path": str(path), **model.score(samples, rate, labels).to_dict()}, allow_nan=False)
        assert capsys.readouterr().out == whole + "\n"


def test_a_score_log_keeps_one_row_of_logits_a_window_and_gives_them_back():
    from acula.sdk.results import ScoreLog

    rows = np.random.default_rng(0).standard_normal((700, 3)).astype(np.float32)
    log = ScoreLog("lung", lambda w: rows[w.index], 3)
    log.extend(_window(i, 0.5) for i in range(700))
    assert len(log) == 700 and log._logits.nbytes <= 2 * 700 * 3 * 4
    np.testing.assert_array_equal(np.stack([w.label_logits["lung"] for w in log]), rows)
    np.testing.assert_array_equal(log[-1].label_logits["lung"], rows[-1])
    assert [w.label_logits["lung"][0] for w in log[698:]] == list(rows[698:, 0])
    assert log[3].embedding.shape == (0,) and log[3].index == 3


def test_the_index_running_mean_equals_clip_embedding_bit_for_bit_whatever_the_chunks():
    from acula.sdk.index_cli import EmbeddingMean
    from acula.sdk.scoring import clip_embedding

    e = np.random.default_rng(5).normal(size=(1001, 512)).astype(np.float32)
    mean, a = EmbeddingMean(), 0
    for n in (1, 13, 400, 0, 587):
        mean.extend(WindowResult(i, 0.0, 1.0, e[i], None, {}) for i in range(a, a + n))
        a += n
    assert len(mean) == 1001 and np.array_equal(mean.value(), clip_embedding(e))
    with pytest.raises(ValueError, match="no window"):
        EmbeddingMean().value()
