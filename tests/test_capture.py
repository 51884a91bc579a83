"""Live capture through real sounddevice/PortAudio code, on an ALSA device mapped to a file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from acula.sdk.screening import Event  # noqa: E402
from acula.sdk.store import EventStore  # noqa: E402
from acula.sdk.synth import synth_recording  # noqa: E402

from tests.toy_bundle import make_toy_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASOUNDRC = """
pcm.!default {{ type asym capture.pcm "filein" playback.pcm "null" }}
pcm.filein {{ type file slave.pcm "null" file "/dev/null" infile "{infile}" format "raw" }}
"""


def portaudio_available() -> bool:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def test_event_store_survives_reopen_and_counts(tmp_path: Path):
    store = EventStore(tmp_path / "e.sqlite")
    sid = store.start_session("test", "toy", 16000)
    store.add_events(sid, [Event("cough", 1.0, 1.5, 0.9), Event("cough", 4.0, 4.4, 0.7)])
    store.close()  # events are committed as they arrive: a crash after this loses nothing
    again = EventStore(tmp_path / "e.sqlite")
    assert [(e["start_s"], e["confidence"]) for e in again.events(sid)] == [(1.0, 0.9), (4.0, 0.7)]
    again.end_session(sid, 10.0, samples_dropped=3)
    assert again.sessions()[0]["samples_dropped"] == 3
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_report_draws_a_png(tmp_path: Path):
    pytest.importorskip("matplotlib")
    from acula.sdk.cli import main

    store = EventStore(tmp_path / "e.sqlite")
    sid = store.start_session("test", "toy", 16000)
    store.add_events(sid, [Event("cough", 1.0, 1.5, 0.9)])
    store.end_session(sid, 60.0)
    store.close()
    assert main(["report", str(tmp_path / "e.sqlite"), "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not portaudio_available(), reason="libportaudio2 is not installed")
def test_live_capture_reads_the_alsa_file_device_into_stream_and_store(tmp_path: Path):
    x, _ = synth_recording(4.0, seed=9)
    pcm = (x * 32767).astype("<i2")
    pcm.tofile(tmp_path / "in.raw")
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=tmp_path / "in.raw"))
    bundle = make_toy_bundle(tmp_path / "bundle")
    code = textwrap.dedent(f"""
        import json, numpy as np, acula.sdk as sdk
        from acula.sdk.capture import LiveCapture
        from acula.sdk.store import EventStore
        model = sdk.load({str(bundle)!r})
        got = []
        store = EventStore({str(tmp_path / 'events.sqlite')!r})
        # the ALSA null clock runs faster than real time: a queue of 10 s keeps the first 3 s whole
        cap = LiveCapture(model, 16000, block_s=0.05, queue_blocks=200, device="default", store=store)
        stats = cap.run(3.0, on_window=got.append)
        pcm = np.fromfile({str(tmp_path / 'in.raw')!r}, dtype="<i2")[:48000].astype(np.float32) / 32768
        offline = model.screen(pcm, 16000).windows
        same = [(a.start_s, a.cough_probability) for a in got] == [(b.start_s, b.cough_probability) for b in offline]
        print(json.dumps({{"windows": stats.windows, "received": stats.blocks_received, "same": same,
                          "sessions": len(store.sessions())}}))
    """)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["received"] >= 3.0 * 16000 / 800 and stats["sessions"] == 1
    assert stats["windows"] == 1 + (1 + (48000 - 1024) // 512 - 16) // 8
    assert stats["same"], "live capture must give exactly the offline results for the same samples"


def test_capture_counts_overflow_instead_of_losing_it():
    pytest.importorskip("sounddevice")
    from acula.sdk.capture import LiveCapture

    class Status:
        input_overflow = True

    cap = LiveCapture.__new__(LiveCapture)
    import queue

    from acula.sdk.capture import CaptureStats

    cap.queue, cap.stats, cap._pending_gap = queue.Queue(maxsize=1), CaptureStats(), 0
    block = np.zeros((160, 1), dtype=np.int16)
    for _ in range(3):
        cap._callback(block, 160, None, Status())
    assert (cap.stats.blocks_received, cap.stats.blocks_dropped, cap.stats.samples_dropped) == (1, 2, 320)
    assert cap.stats.input_overflows == 3
    cap.queue.get_nowait()
    cap._callback(block, 160, None, None)
    assert cap.queue.get_nowait() == 320  # the gap is delivered as a count of missing samples, in order


@pytest.mark.parametrize("speed", [None, 20.0])
def test_replay_through_the_live_path_gives_the_offline_windows(tmp_path: Path, speed):
    import soundfile as sf
    from acula.sdk.capture import LiveCapture
    from acula.sdk.model import load

    x, _ = synth_recording(3.0, sample_rate_hz=22050, seed=2)
    sf.write(tmp_path / "r.wav", x, 22050)
    model = load("default")
    store = EventStore(tmp_path / "e.sqlite")
    got = []
    cap = LiveCapture(model, block_s=0.05, queue_blocks=400, store=store, replay=str(tmp_path / "r.wav"),
                      speed=speed)
    stats = cap.run(on_window=got.append)
    from acula.sdk.audio import load_audio

    offline = model.screen(load_audio(tmp_path / "r.wav", None).samples, 22050).windows  # the file is 16-bit
    assert stats.blocks_dropped == 0 and cap.rate == 22050
    assert [(w.start_s, w.cough_probability) for w in got] == [(w.start_s, w.cough_probability) for w in offline]
    assert store.sessions()[0]["source"] == f"replay:{tmp_path / 'r.wav'}"
    store.close()


def test_replay_stops_after_the_seconds_asked_for(tmp_path: Path):
    import soundfile as sf
    from acula.sdk.capture import LiveCapture
    from acula.sdk.model import load

    x, _ = synth_recording(6.0, seed=2)
    sf.write(tmp_path / "r.wav", x, 16000)
    cap = LiveCapture(load("default"), replay=str(tmp_path / "r.wav"), speed=None)
    stats = cap.run(2.5)
    assert stats.windows == len(load("default").screen(np.zeros(40000, np.float32) + 0.01, 16000).windows)


def test_capture_feeds_the_stream_once_a_window_with_the_windows_block_by_block_feeding_gives(tmp_path: Path,
                                                                                             monkeypatch):
    """``coalesce`` (the default): blocks are held until the next window can complete
    (``Stream.samples_until_window``) and fed in one ``accept``; the windows, their samples and their order are
    those of feeding every block as it comes, in about one call a window instead of one a block."""
    import soundfile as sf
    from acula.sdk.capture import LiveCapture
    from acula.sdk.model import load
    from acula.sdk.stream import Stream

    x, _ = synth_recording(6.0, seed=3)
    sf.write(tmp_path / "r.wav", x, 16000)
    model = load("default")
    sizes: list[int] = []  # samples per call
    yields: list[int] = []  # windows per call
    real = Stream.accept

    def accept(self, chunk, rate):
        sizes.append(len(chunk))
        out = real(self, chunk, rate)
        yields.append(len(out))
        return out

    monkeypatch.setattr(Stream, "accept", accept)
    runs = {}
    for coalesce in (False, True):
        sizes.clear()
        yields.clear()
        got: list = []
        stats = LiveCapture(model, block_s=0.1, replay=str(tmp_path / "r.wav"), speed=None,
                            coalesce=coalesce).run(on_window=got.append)
        runs[coalesce] = ([(w.start_s, w.end_s, w.cough_probability, w.problems) for w in got], list(sizes),
                          list(yields), stats)
    block_windows, block_sizes, block_yields, _ = runs[False]
    held_windows, held_sizes, held_yields, stats = runs[True]
    assert held_windows == block_windows and len(held_windows) == stats.windows > 1
    assert sum(held_sizes) == sum(block_sizes) == x.size and len(block_sizes) == 60
    # every held call but the last (the recording's tail) completes exactly one window, in the same block as
    # block-by-block feeding completes it: the calls end where the blocks completing a window end
    assert held_yields[:-1] == [1] * (len(held_yields) - 1)
    block_ends = np.cumsum(block_sizes)[np.array(block_yields) > 0]
    assert list(np.cumsum(held_sizes)[:-1]) == list(block_ends[: len(held_sizes) - 1])


def test_a_stream_says_how_many_samples_its_next_window_needs():
    """``Stream.samples_until_window``: feeding exactly that many completes the next window, one fewer does not; at
    another rate the count is in the stream's own samples (the resampler's delay may leave it short: ask again)."""
    from acula.sdk.model import load

    model = load("default")
    x, _ = synth_recording(4.0, seed=1)
    s = model.stream()
    first = s.samples_until_window()
    assert s.accept(x[: first - 1], 16000) == [] and s.samples_until_window() == 1
    assert len(s.accept(x[first - 1 : first], 16000)) == 1
    need = s.samples_until_window()
    assert need == model.hop_frames * model.frontend.config.hop_length
    assert s.accept(x[first : first + need - 1], 16000) == [] and len(s.accept(x[first + need - 1 :][:1], 16000)) == 1
    s44 = model.stream()
    s44.accept(np.zeros(441, np.float32), 44100)
    fed, windows = 441, []
    while not windows:
        n = s44.samples_until_window()
        windows = s44.accept(np.zeros(n, np.float32), 44100)
        fed += n
    assert 32256 * 44100 / 16000 <= fed <= 32256 * 44100 / 16000 + 2 * 441  # the first window, within a few calls
