"""Hostile and odd input: headers that lie, rates and arrays that are not audio, results that must tell the
truth, one Stream fed from two threads.  Every input is generated here; cases that allocated without bound
before run in a subprocess under a 2 GB address-space cap, so a regression fails the test, not the machine."""

from __future__ import annotations

import dataclasses
import json
import resource
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnx")

from acula.sdk.audio import (  # noqa: E402
    CLIPPED_FRACTION,
    MAX_SAMPLE_RATE_HZ,
    MIN_SAMPLE_RATE_HZ,
    AudioError,
    AudioTypeError,
    QualityMeter,
    SampleRateError,
    UnreadableAudioError,
    assess_quality,
    load_audio,
    prepare_audio,
    validate_samples,
)
from acula.sdk.cli import main  # noqa: E402
from acula.sdk.synth import synth_recording  # noqa: E402

from acula import sdk  # noqa: E402
from tests.toy_bundle import make_toy_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP_BYTES = 2 << 30
RATE_FIELD_OFFSET = 24  # RIFF(12) + "fmt " header(8) + format tag(2) + channels(2)
DATA_SIZE_OFFSET = 40  # canonical 44-byte header: the data chunk's size field


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "bundle")


@pytest.fixture(scope="module")
def model(bundle: Path) -> sdk.Model:
    return sdk.load(bundle, precision="fp32")


def write_wav(path: Path, samples: np.ndarray, rate_hz: int = 16000) -> Path:
    """16-bit mono PCM with the standard library's writer (a canonical 44-byte header)."""
    pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return path


def patch_u32(path: Path, offset: int, value: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offset, value)
    out.write_bytes(bytes(data))
    return out


def patch_rate(path: Path, rate_hz: int, out: Path, with_byte_rate: bool = True) -> Path:
    """Set the sample rate field, and the byte rate field with it (as a consistent but lying header would)."""
    patch_u32(path, RATE_FIELD_OFFSET, rate_hz, out)
    if with_byte_rate:
        patch_u32(out, RATE_FIELD_OFFSET + 4, rate_hz * 2, out)
    return out


def run_capped(code: str) -> subprocess.CompletedProcess[str]:
    """Run Python code with the address space capped: an unbounded allocation is a MemoryError there."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, preexec_fn=cap,
                          timeout=600)


def strict_json(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def speech_like(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    return synth_recording(seconds, seed=seed)[0].astype(np.float32)


# --- files: the header is checked before the samples are read -------------------------------------------------


@pytest.mark.parametrize("rate_hz", [1, 2, MIN_SAMPLE_RATE_HZ - 1, MAX_SAMPLE_RATE_HZ + 1, 4_000_000])
def test_wav_with_a_rate_field_out_of_range_is_refused_before_any_allocation(tmp_path: Path, rate_hz: int):
    good = write_wav(tmp_path / "good.wav", speech_like(5.0))  # 160 KB
    bad = patch_rate(good, rate_hz, tmp_path / "bad.wav")
    result = run_capped(
        "import acula.sdk.audio as a\n"
        f"try:\n    a.load_audio({str(bad)!r})\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
        "else:\n    print('accepted')\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("SampleRateError"), result.stdout
    assert f"{rate_hz} Hz is outside the supported range" in result.stdout


def test_wav_whose_rate_and_byte_rate_fields_disagree_is_refused(tmp_path: Path):
    good = write_wav(tmp_path / "good.wav", speech_like(2.0))
    bad = patch_rate(good, 8000, tmp_path / "bad.wav", with_byte_rate=False)
    with pytest.raises(UnreadableAudioError, match="byte rate field implies 16000 Hz"):
        load_audio(bad)


def test_half_cut_wav_is_flagged_truncated_not_ok(tmp_path: Path, bundle: Path, capsys):
    good = write_wav(tmp_path / "good.wav", speech_like(4.0))
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2 + 1])  # half the data and half a sample
    clip = load_audio(cut)
    assert clip.quality.truncated and not clip.quality.ok and "truncated" in clip.quality.problems
    assert abs(clip.duration_s - 2.0) < 0.01
    assert not load_audio(good).quality.truncated
    assert main(["screen", "--bundle", str(bundle), "--json", str(cut)]) == 0
    row = strict_json(capsys.readouterr().out)
    assert row["quality"]["truncated"] is True and "truncated" in row["problems"] and row["ok"] is False
    assert main(["screen", "--bundle", str(bundle), str(cut)]) == 0
    assert "file truncated" in capsys.readouterr().out


def test_wav_written_by_a_recorder_that_never_set_the_data_size_is_not_truncated(tmp_path: Path):
    good = write_wav(tmp_path / "good.wav", speech_like(2.0))
    streaming = patch_u32(good, DATA_SIZE_OFFSET, 0xFFFFFFFF, tmp_path / "streaming.wav")
    clip = load_audio(streaming)
    assert not clip.quality.truncated and abs(clip.duration_s - 2.0) < 1e-3


def test_one_bad_header_in_a_batch_is_a_per_file_error_and_the_others_run(tmp_path: Path, bundle: Path):
    a = write_wav(tmp_path / "a.wav", speech_like(3.0, seed=1))
    b = write_wav(tmp_path / "b.wav", speech_like(3.0, seed=2))
    bad = patch_rate(write_wav(tmp_path / "x.wav", speech_like(5.0)), 1, tmp_path / "one_hz.wav")
    result = run_capped(
        "import sys\nfrom acula.sdk.cli import main\n"
        f"sys.exit(main(['screen', '--bundle', {str(bundle)!r}, '--json', {str(a)!r}, {str(bad)!r}, {str(b)!r}]))\n")
    assert result.returncode == 1, result.stderr[-2000:]
    rows = [strict_json(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(a), str(bad), str(b)]
    assert rows[1]["error"] == "SampleRateError" and "1 Hz" in rows[1]["message"]
    assert rows[0]["duration_s"] == 3.0 and rows[2]["duration_s"] == 3.0


# --- arrays: one validation, conventions stated, errors that say what is wrong ---------------------------------


def test_out_of_range_and_fractional_rates_are_refused_by_every_entry_point(bundle: Path):
    """Rate 1 Hz upsampled a 3 s clip to 48 s x 16000 and was OOM-killed; now each call is refused at once."""
    cases = "[1, 1e9, 16000.5, float('nan'), 0, -16000, 999, 384001]"
    result = run_capped(
        "import numpy as np, acula.sdk as sdk\nfrom acula.sdk.audio import prepare_audio\n"
        f"m = sdk.load({str(bundle)!r}, precision='fp32')\n"
        "x = np.full(48000, 0.1, np.float32)\n"
        "calls = {'screen': lambda r: m.screen(x, r), 'score': lambda r: m.score(x, r),\n"
        "         'accept': lambda r: m.stream().accept(x, r), 'prepare': lambda r: prepare_audio(x, r)}\n"
        f"for rate in {cases}:\n"
        "    for name, call in calls.items():\n"
        "        try:\n            call(rate)\n            print(name, rate, 'accepted')\n"
        "        except Exception as exc:\n            print(name, rate, type(exc).__name__)\n")
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = [line.rsplit(" ", 1)[1] for line in result.stdout.splitlines()]
    assert len(outcomes) == 8 * 4 and set(outcomes) == {"SampleRateError"}, result.stdout


@pytest.mark.parametrize("rate", ["16000", None, b"16000", [16000], True])
def test_a_rate_that_is_not_a_number_is_a_type_error_with_a_sentence(model: sdk.Model, rate):
    with pytest.raises(AudioTypeError, match="must be a number of Hz"):
        model.screen(np.zeros(16000, np.float32), rate)
    assert issubclass(AudioTypeError, TypeError) and issubclass(AudioTypeError, AudioError)


def test_integral_float_and_numpy_rates_are_accepted():
    for rate in (16000.0, np.int64(16000), np.float32(16000)):
        assert validate_samples(np.zeros(10, np.float32), rate).sample_rate_hz == 16000
    with pytest.raises(SampleRateError, match="whole number of Hz, got 16000.5"):
        validate_samples(np.zeros(10, np.float32), 16000.5)


def test_channels_first_stereo_is_mixed_down_not_an_empty_result(model: sdk.Model):
    x = speech_like(3.0)
    first = model.screen(np.stack([x, x]), 16000)  # shape (2, n)
    last = model.screen(np.stack([x, x], axis=1), 16000)  # shape (n, 2)
    mono = model.screen(x, 16000)
    assert len(mono.windows) > 0
    for result in (first, last):
        assert [w.cough_probability for w in result.windows] == [w.cough_probability for w in mono.windows]
    assert validate_samples(np.stack([x, -x, x]), 16000).n_channels == 3


def test_an_array_whose_channels_cannot_be_told_is_refused():
    with pytest.raises(AudioError, match="cannot tell the channels"):
        validate_samples(np.zeros((20, 20), np.float32), 16000)
    with pytest.raises(AudioError, match="shape"):
        validate_samples(np.zeros((2, 3, 100), np.float32), 16000)


def test_uint8_is_8_bit_unsigned_pcm_and_signed_integers_scale_by_full_range():
    x = 0.5 * np.sin(np.arange(16000) / 7.0)
    as_uint8 = np.round(x * 127 + 128).astype(np.uint8)
    got = validate_samples(as_uint8, 16000).mono
    assert np.max(np.abs(got - x)) < 1.5 / 128  # was a NonFiniteAudioError: 0 / 0 from iinfo(uint8).min
    for dtype, full_scale in ((np.int8, 128), (np.int16, 32768), (np.int32, 2**31)):
        pcm = np.round(x * (full_scale - 1)).astype(dtype)
        assert np.max(np.abs(validate_samples(pcm, 16000).mono - x)) < 1.5 / full_scale + 1e-6


@pytest.mark.parametrize("samples", [
    np.array([0.1, "a", None], dtype=object),
    np.array(["0.1", "0.2"]),
    np.zeros(100, np.complex64),
    np.zeros(100, bool),
    np.zeros(100, np.int64),
    np.zeros(100, np.uint16),
    [[0.1, 0.2], [0.3]],
    "0.1 0.2",
], ids=["object", "str", "complex", "bool", "int64", "uint16", "ragged", "string"])
def test_samples_that_are_not_audio_are_a_type_error_with_a_sentence(model: sdk.Model, samples):
    with pytest.raises(AudioTypeError, match="samples"):
        model.screen(samples, 16000)
    with pytest.raises(AudioTypeError):
        model.stream().accept(samples, 16000)


def test_pcm_counts_passed_as_floats_are_refused():
    with pytest.raises(AudioError, match="full scale at"):
        prepare_audio(np.sin(np.arange(16000) / 5.0) * 3000.0, 16000)


def test_a_stream_refuses_a_change_of_channel_count(model: sdk.Model):
    stream = model.stream()
    stream.accept(np.zeros((100, 2), np.float32), 16000)
    stream.accept(np.zeros((1, 2), np.float32), 16000)  # one frame of two channels, not two samples
    with pytest.raises(AudioError, match="carries 2 channel"):
        stream.accept(np.zeros((100, 3), np.float32), 16000)


def test_an_empty_first_chunk_fixes_neither_rate_nor_channels(model: sdk.Model):
    x = speech_like(2.0)
    stream = model.stream()
    assert stream.accept(np.zeros(0, np.float32), 8000) == [] and stream.quality() is None
    got = stream.accept(x, 16000) + stream.flush()  # the first non-empty chunk fixes 16 kHz
    want = (fresh := model.stream()).accept(x, 16000) + fresh.flush()
    assert [w.embedding.tobytes() for w in got] == [w.embedding.tobytes() for w in want]
    assert stream.quality() == fresh.quality()


def test_a_flushed_stream_refuses_more_input_until_reset(model: sdk.Model):
    from acula.sdk.audio import StreamEndedError
    from acula.sdk.pool import StreamPool

    x = speech_like(2.0)
    hop = model.hop_frames * model.frontend.config.hop_length
    stream = model.stream()
    stream.accept(x, 16000)
    stream.flush()
    for chunk in (x[:hop], x[:100], np.zeros(0, np.float32)):  # the block-grid shortcut and the general path alike
        with pytest.raises(StreamEndedError, match="flushed"):
            stream.accept(chunk, 16000)
    with pytest.raises(StreamEndedError):
        stream.accept_features(np.zeros((4, model.frontend.config.n_mels), np.float32))
    stream.reset()
    assert len(stream.accept(x, 16000) + stream.flush()) > 0
    pool = StreamPool(model)
    streams = [pool.stream(), pool.stream()]
    pool.accept([(s, x[:hop], 16000) for s in streams])
    pool.flush(streams)
    for step in (pool.accept([(s, x[hop : 2 * hop], 16000) for s in streams]),  # a step of two streams, and of one
                 pool.accept([(streams[0], x[hop : 2 * hop], 16000)])):
        assert all(isinstance(r, StreamEndedError) for r in step)


def test_a_stream_takes_samples_or_features_not_both(model: sdk.Model):
    n_mels = model.frontend.config.n_mels
    samples_first = model.stream()
    samples_first.accept(speech_like(1.0), 16000)
    with pytest.raises(AudioError, match="fed samples"):
        samples_first.accept_features(np.zeros((70, n_mels), np.float32))
    features_first = model.stream()
    features_first.accept_features(np.zeros((70, n_mels), np.float32))
    with pytest.raises(AudioError, match="fed log-mel features"):
        features_first.accept(speech_like(1.0), 16000)


@pytest.mark.parametrize("features", [np.zeros((70, 64), np.complex64), np.full((70, 64), "a"),
                                      np.zeros((70, 64), object), np.zeros((70, 64), bool), [[0.0] * 64, [0.0]]],
                         ids=["complex", "strings", "objects", "bool", "ragged"])
def test_features_that_are_not_real_numbers_are_a_type_error(model: sdk.Model, features):
    stream = model.stream()
    with pytest.raises(AudioTypeError):
        stream.accept_features(features)
    assert stream.accept_features(np.zeros((0, model.frontend.config.n_mels), np.float32)) == []


# --- results tell the truth -------------------------------------------------------------------------------------


def test_a_clipped_file_is_clipped_in_json_and_text_alike(tmp_path: Path, bundle: Path, capsys):
    import soundfile as sf

    x = np.clip(speech_like(4.0) * 60, -1, 1)
    sf.write(tmp_path / "clipped.wav", x, 16000, subtype="PCM_16")
    from scipy.signal import resample_poly

    sf.write(tmp_path / "clipped44.wav", np.clip(resample_poly(speech_like(4.0), 441, 160) * 60, -1, 1), 44100,
             subtype="PCM_16")
    for name in ("clipped.wav", "clipped44.wav"):
        assert main(["screen", "--bundle", str(bundle), "--json", str(tmp_path / name)]) == 0
        row = strict_json(capsys.readouterr().out)
        assert row["quality"]["clipped"] is True and row["poor_signal"] is True and row["ok"] is False, name
        assert "clipped" in row["problems"]
        assert main(["screen", "--bundle", str(bundle), str(tmp_path / name)]) == 0
        text = capsys.readouterr().out
        assert "signal clipped" in text and "ok" not in text.split(",")[1]


def test_a_clip_shorter_than_one_window_says_so(tmp_path: Path, bundle: Path, model: sdk.Model, capsys):
    short = speech_like(0.3)
    result = model.screen(short, 16000)
    assert result.windows and result.windows[0].padded
    assert "too_short" in result.problems and not result.ok
    assert "too_short" in model.score(short, 16000).problems
    write_wav(tmp_path / "short.wav", short)
    assert main(["screen", "--bundle", str(bundle), str(tmp_path / "short.wav")]) == 0
    assert "shorter than one analysis window" in capsys.readouterr().out


def test_json_of_a_silent_recording_is_strict(tmp_path: Path, bundle: Path, model: sdk.Model, capsys):
    silent = np.zeros(16000 * 3, np.float32)
    for result in (model.screen(silent, 16000), model.score(silent, 16000)):
        row = strict_json(json.dumps(result.to_dict()))
        assert row["quality"]["silent"] is True and row["quality"]["peak_dbfs"] is None
    write_wav(tmp_path / "silent.wav", silent)
    for command in ("screen", "score"):
        assert main([command, "--bundle", str(bundle), "--json", str(tmp_path / "silent.wav")]) == 0
        row = strict_json(capsys.readouterr().out)
        assert "silent" in row["problems"] and row["quality"]["rms_dbfs"] is None
    assert strict_json(json.dumps(load_audio(tmp_path / "silent.wav").to_dict()))["quality"]["silent"] is True


def test_a_quiet_but_valid_recording_is_scored_and_flagged(model: sdk.Model):
    quiet = speech_like(4.0) * 10 ** (-50 / 20)  # about -70 dBFS RMS: 24-bit or float audio, not noise
    result = model.screen(quiet, 16000)
    assert result.quality is not None and result.quality.low_level
    assert result.windows and all(w.cough_probability is not None for w in result.windows)
    assert model.score(quiet, 16000).probabilities is not None


def test_pauses_in_a_normal_recording_are_still_gated(model: sdk.Model):
    loud = speech_like(3.0)
    hiss = np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32) * 1e-4  # -80 dBFS
    result = model.screen(np.concatenate([loud, hiss]), 16000)
    assert result.windows[0].problems == ()
    assert result.windows[-1].problems == ("low_level",) and result.windows[-1].cough_probability is None


def test_a_few_clipped_samples_do_not_gate_a_recording(model: sdk.Model):
    x = speech_like(4.0) * 0.3
    for i in range(5):  # five brief flat tops: 40 samples of 64000
        x[10000 * i + 500 : 10000 * i + 508] = 1.0
    quality = assess_quality(x)
    assert 0 < quality.clipped_fraction < CLIPPED_FRACTION and not quality.clipped
    result = model.screen(x, 16000)
    assert all(w.cough_probability is not None for w in result.windows) and not result.quality.clipped
    held = np.clip(speech_like(4.0) * 60, -1, 1)
    assert assess_quality(held).clipped and model.screen(held, 16000).problems[:1] == ("clipped",)


def test_quality_meter_fed_in_chunks_counts_exactly_what_one_call_counts():
    x = np.clip(speech_like(3.0) * 8, -1, 1)
    whole = assess_quality(x)
    meter, i, rng = QualityMeter(), 0, np.random.default_rng(3)
    while i < x.size:
        n = int(rng.integers(1, 700))
        meter.update(x[i : i + n])
        i += n
    chunked = meter.flags()
    assert meter.n_clipped == round(whole.clipped_fraction * x.size) > 0
    assert (chunked.clipped, chunked.silent, chunked.low_level) == (whole.clipped, whole.silent, whole.low_level)
    assert abs(chunked.rms_dbfs - whole.rms_dbfs) < 1e-9


# --- threads: one Model for many, one Stream for one --------------------------------------------------------------


def test_one_stream_used_from_two_threads_at_once_raises(model: sdk.Model, monkeypatch):
    stream = model.stream()
    inside, release = threading.Event(), threading.Event()
    original = model.run_windows

    def slow_run_windows(windows):
        inside.set()
        release.wait(10)
        return original(windows)

    monkeypatch.setattr(model, "run_windows", slow_run_windows)
    x = speech_like(3.0)
    worker = threading.Thread(target=stream.accept, args=(x, 16000))
    worker.start()
    try:
        assert inside.wait(10)
        with pytest.raises(RuntimeError, match="give each thread its own model.stream"):
            stream.accept(x, 16000)
    finally:
        release.set()
        worker.join(10)
    monkeypatch.undo()
    assert stream.n_windows > 0  # the first caller finished undisturbed
    stream.accept(x, 16000)  # and the stream is free again


def test_a_model_shared_by_four_threads_gives_the_serial_results(model: sdk.Model):
    clips = [speech_like(4.0, seed=s) for s in range(8)]
    serial = [model.screen(c, 16000) for c in clips]
    results: list = [None] * len(clips)

    def work(k: int) -> None:
        for i in range(k, len(clips), 4):
            results[i] = model.screen(clips[i], 16000)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    def key(r):
        return [(w.index, w.cough_probability, w.problems, w.embedding.tobytes()) for w in r.windows], r.events

    assert [key(r) for r in results] == [key(r) for r in serial]


def test_a_channel_clipped_beside_a_quiet_one_flags_the_recording(tmp_path: Path, model: sdk.Model, capsys):
    """The mixdown halves a clipped channel beside a silent one (peak -6 dBFS, no flat tops at full scale); the
    flags count each channel's flat tops too, the same through a whole clip, a stream fed in chunks and a file
    read in blocks; a clean stereo file stays clean."""
    rate = 16000
    t = np.arange(3 * rate) / rate
    left = np.clip(3 * np.sin(2 * np.pi * 5 * t), -1, 1)  # hard-clipped, on the rails most of the time
    stereo = np.stack([left, 0.001 * np.sin(2 * np.pi * 300 * t)], axis=1).astype(np.float32)
    mono_view = assess_quality(stereo.mean(axis=1))
    assert not mono_view.clipped  # what the mixdown alone shows
    whole = prepare_audio(stereo, rate).quality
    assert whole.clipped and whole.clipped_fraction > 0.5
    stream = model.stream()
    for i in range(0, stereo.shape[0], 7001):
        stream.accept(stereo[i : i + 7001], rate)
    streamed = stream.quality()
    assert streamed is not None and streamed.rms_dbfs == pytest.approx(whole.rms_dbfs, abs=1e-9)  # sums' order
    assert dataclasses.replace(streamed, rms_dbfs=whole.rms_dbfs) == whole
    path = tmp_path / "one_channel_clipped.wav"
    sf.write(path, stereo, rate, subtype="FLOAT")
    assert load_audio(path).quality.clipped
    assert main(["screen", str(path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert "clipped" in row["problems"] and row["quality"]["clipped_fraction"] == pytest.approx(whole.clipped_fraction)
    assert main(["score", str(path), "--json", "--labels", "heart"]) == 0
    assert "clipped" in json.loads(capsys.readouterr().out)["problems"]
    clean = (0.5 * stereo / np.abs(stereo).max()).astype(np.float32)
    assert not prepare_audio(clean, rate).quality.clipped
