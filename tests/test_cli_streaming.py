"""Files stream from disk in blocks: iter_audio_blocks reads what load_audio reads, and screen / score / index
on blocks give exactly the whole-file results, whatever the block length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from acula.sdk.audio import EmptyAudioError, UnreadableAudioError, iter_audio_blocks, load_audio
from acula.sdk.model import load
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
