"""Loading real and generated files: every defect is an error or a flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from acula.sdk.audio import (
    AudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    SampleRateError,
    UnreadableAudioError,
    assess_quality,
    load_audio,
    prepare_audio,
    resample,
)


def tone(rate_hz: int, seconds: float = 1.0, freq_hz: float = 300.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return amp * np.sin(2 * np.pi * freq_hz * t)


@pytest.mark.parametrize("rate_hz", [2000, 4000, 8000, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k_keeping_length_and_pitch(tmp_path: Path, rate_hz: int):
    path = tmp_path / "tone.flac"
    sf.write(path, tone(rate_hz, 2.0, freq_hz=300.0), rate_hz)
    clip = load_audio(path)
    assert clip.sample_rate_hz == 16000 and clip.source_rate_hz == rate_hz
    assert abs(clip.duration_s - 2.0) < 1e-3
    spectrum = np.abs(np.fft.rfft(clip.samples[4000:-4000]))
    peak_hz = np.argmax(spectrum) * 16000 / (clip.samples.size - 8000)
    assert abs(peak_hz - 300.0) < 2.0


def test_24_bit_wav_and_float_wav_load_to_the_same_samples(tmp_path: Path):
    x = tone(16000)
    sf.write(tmp_path / "a.wav", x, 16000, subtype="PCM_24")
    sf.write(tmp_path / "b.wav", x, 16000, subtype="FLOAT")
    a, b = load_audio(tmp_path / "a.wav"), load_audio(tmp_path / "b.wav")
    assert np.max(np.abs(a.samples - b.samples)) < 1e-6


def test_multichannel_is_mixed_down(tmp_path: Path):
    x = tone(16000)
    sf.write(tmp_path / "st.wav", np.stack([x, -x, x, x], axis=1), 16000, subtype="FLOAT")
    clip = load_audio(tmp_path / "st.wav")
    assert clip.n_source_channels == 4
    np.testing.assert_allclose(clip.samples, 0.5 * x, atol=1e-6)


def test_segment_reads_only_that_span(tmp_path: Path):
    sf.write(tmp_path / "s.flac", tone(8000, 3.0), 8000)
    assert abs(load_audio(tmp_path / "s.flac", start_s=0.5, end_s=1.75).duration_s - 1.25) < 1e-3
    with pytest.raises(EmptyAudioError):
        load_audio(tmp_path / "s.flac", start_s=4.0, end_s=5.0)


def test_empty_file_is_an_empty_audio_error(tmp_path: Path):
    sf.write(tmp_path / "e.wav", np.zeros(0), 16000)
    with pytest.raises(EmptyAudioError):
        load_audio(tmp_path / "e.wav")


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage", b"not audio at all" * 100])
def test_corrupt_or_missing_file_is_unreadable(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(UnreadableAudioError):
        load_audio(path)
    with pytest.raises(UnreadableAudioError):
        load_audio(tmp_path / "missing.flac")


def test_truncated_flac_is_unreadable_or_shorter_never_a_crash(tmp_path: Path):
    sf.write(tmp_path / "t.flac", tone(16000, 2.0), 16000)
    data = (tmp_path / "t.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 3])
    try:
        clip = load_audio(tmp_path / "cut.flac")
    except AudioError:
        return
    assert clip.duration_s < 2.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected(bad: float):
    x = tone(16000)
    x[100] = bad
    with pytest.raises(NonFiniteAudioError, match="1 NaN or infinite"):
        prepare_audio(x, 16000)


def test_integer_arrays_are_scaled_to_unit_range():
    x = (tone(16000, amp=0.5) * 32767).astype(np.int16)
    clip = prepare_audio(x, 16000)
    assert abs(float(np.max(np.abs(clip.samples))) - 0.5) < 1e-3


def test_clipped_audio_is_flagged_and_clean_audio_is_not():
    x = tone(16000, amp=1.6)
    assert assess_quality(np.clip(x, -1, 1)).clipped
    assert not assess_quality(tone(16000, amp=0.99, freq_hz=50.0)).clipped


def test_digital_silence_and_low_level_are_flagged():
    assert assess_quality(np.zeros(1000)).silent
    dither = np.random.default_rng(0).integers(-1, 2, 16000) / 32768.0
    assert assess_quality(dither).silent
    quiet = assess_quality(tone(16000, amp=1e-4))
    assert quiet.low_level and not quiet.silent
    assert assess_quality(tone(16000)).ok


def test_resample_refuses_nonsense_rates():
    with pytest.raises(AudioError):
        resample(np.zeros(10), 0, 16000)
    with pytest.raises(SampleRateError, match="outside the supported range"):
        resample(np.zeros(10), 1_000_000_000, 16000)


def test_a_wav_cut_in_half_is_read_as_far_as_it_goes_and_flagged_truncated(tmp_path: Path):
    sf.write(tmp_path / "t.wav", tone(16000, 2.0), 16000, subtype="PCM_16")
    data = (tmp_path / "t.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    clip = load_audio(tmp_path / "cut.wav")
    assert clip.quality.truncated and "truncated" in clip.quality.problems and abs(clip.duration_s - 1.0) < 0.01
    assert not load_audio(tmp_path / "t.wav").quality.truncated


@pytest.mark.shared_data
def test_every_shared_coswara_file_loads_or_raises_and_the_counts_are_exact(data_dir: Path):
    unreadable, silent, ok = [], [], 0
    for path in sorted((data_dir / "coswara" / "audio").glob("*/*.flac")):
        try:
            clip = load_audio(path)
        except UnreadableAudioError:
            unreadable.append(path)
            continue
        if clip.quality.silent:
            silent.append(path)
        else:
            ok += 1
    assert (len(unreadable), len(silent)) == (12, 35)
    assert ok == 456 - 12 - 35


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixing_down_is_numpys_mean_bit_for_bit(dtype):
    """``sdk.audio.mix_down``: the mean over the channels, the same bits as ``x.mean(axis)`` (signed zeros
    included) for 1-11 channels either side, in C order and not."""
    from acula.sdk.audio import mix_down

    rng = np.random.default_rng(0)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for n in range(1, 12):
        for axis in (1, 0):
            x = (rng.standard_normal((5000, n) if axis == 1 else (n, 5000)) * 0.3).astype(dtype)
            x.flat[::97], x.flat[::89] = -0.0, 0.0
            if axis == 1:
                x[::50] = -0.0  # rows of negative zeros: numpy's sum of them is +0.0
            else:
                x[:, ::50] = -0.0
            for arr in (x, np.asfortranarray(x)):
                got, want = mix_down(arr, axis), arr.mean(axis=axis)
                assert got.dtype == want.dtype and np.array_equal(got.view(bits), want.view(bits)), (n, axis)
