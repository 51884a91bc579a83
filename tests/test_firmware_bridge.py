"""Bridge transports on real OS channels (pty, TCP, UDP), the C encoder, and the header."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import tty
from pathlib import Path

import numpy as np
import pytest
from acula.firmware_bridge.codecs import AdpcmEncoder
from acula.firmware_bridge.decoder import FrameDecoder
from acula.firmware_bridge.header import render_header
from acula.firmware_bridge.protocol import Codec
from acula.firmware_bridge.simulate import stethoscope_frames
from acula.firmware_bridge.transports import ReplayTransport, TCPTransport, UDPTransport
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.synth import synth_recording

C_SOURCE = Path(__file__).resolve().parents[1] / "firmware_bridge" / "c" / "acula_encoder.c"


def audio(seconds: float = 2.0) -> np.ndarray:
    return synth_recording(seconds, seed=11)[0]


def decode_pieces(pieces) -> tuple[np.ndarray, FrameDecoder]:
    dec = FrameDecoder()
    out = [c for p in pieces for c in dec.feed(p)] + dec.flush()
    return np.concatenate([c.samples for c in out]) if out else np.zeros(0, np.int16), dec


def expected_pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def test_serial_over_a_pty_pair_delivers_the_stream():
    pytest.importorskip("serial")
    from acula.firmware_bridge.transports import SerialTransport

    master, slave = os.openpty()
    tty.setraw(slave)
    rx = SerialTransport(os.ttyname(slave), timeout_s=0.2)
    frames, _ = stethoscope_frames(audio(), 16000, Codec.PCM16)
    writer = threading.Thread(target=lambda: [os.write(master, f) for f in frames])
    writer.start()
    got, dec = decode_pieces(rx.read_chunks(idle_timeouts=3))
    writer.join()
    rx.close()
    os.close(master)
    np.testing.assert_array_equal(got, expected_pcm(audio()))
    assert dec.counters.frames_ok == len(frames) and dec.counters.frames_lost == 0


def test_tcp_loopback_with_loss_and_corruption_accounts_for_every_sample():
    frames, stats = stethoscope_frames(audio(), 16000, Codec.IMA_ADPCM, loss_rate=0.05, corrupt_rate=0.05, seed=3)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send() -> None:
        client = TCPTransport("127.0.0.1", port)
        for f in frames:
            client.write(f)
        client.close()

    t = threading.Thread(target=send)
    t.start()
    conn, _ = server.accept()
    got, dec = decode_pieces(TCPTransport("", 0, sock=conn).read_chunks())
    t.join()
    server.close()
    c = dec.counters
    assert c.frames_ok + c.frames_lost == stats["frames"]
    assert c.frames_lost == stats["dropped"] + stats["corrupted"]
    assert got.size == expected_pcm(audio()).size  # concealment keeps the timeline


def test_udp_datagrams_reordered_are_put_back_in_order():
    frames, _ = stethoscope_frames(audio(1.0), 16000, Codec.MU_LAW)
    rx, tx = UDPTransport(), UDPTransport()
    order = list(range(len(frames)))
    for i in range(0, len(order) - 1, 3):
        order[i], order[i + 1] = order[i + 1], order[i]
    for i in order:
        tx.write(frames[i], rx.address)
    got, dec = decode_pieces(rx.read_chunks())
    rx.close()
    tx.close()
    assert dec.counters.frames_ok == len(frames) and dec.counters.frames_lost == 0
    from acula.firmware_bridge.codecs import mulaw_decode, mulaw_encode

    np.testing.assert_array_equal(got, mulaw_decode(mulaw_encode(expected_pcm(audio(1.0)))))


def test_replay_and_cli_simulate_listen(tmp_path: Path, capsys):
    import json

    import soundfile as sf
    from acula.sdk.cli import main

    sf.write(tmp_path / "r.wav", audio(), 16000)
    assert main(["bridge", "simulate", str(tmp_path / "r.wav"), "--out", str(tmp_path / "cap.bin"),
                 "--loss", "0.02"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert main(["bridge", "listen", "--replay", str(tmp_path / "cap.bin"), "--no-screen"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["frames_ok"] + got["frames_lost"] == sent["frames"] and got["samples"] == 32000
    got2, _ = decode_pieces(ReplayTransport(tmp_path / "cap.bin", piece=7).read_chunks())
    assert got2.size == 32000


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_reference_encoder_is_bit_exact_with_python(tmp_path: Path):
    (tmp_path / "acula_bridge.h").write_text(render_header(FrontendConfig()))
    exe = tmp_path / "enc"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", str(tmp_path), str(C_SOURCE), "-o", str(exe)], check=True)
    x = audio(1.3)
    pcm = expected_pcm(x)
    c_stream = subprocess.run([str(exe)], input=pcm.astype("<i2").tobytes(), capture_output=True, check=True).stdout
    py_frames, _ = stethoscope_frames(x, 16000, Codec.IMA_ADPCM, frame_samples=256)
    assert c_stream == b"".join(py_frames)
    enc = AdpcmEncoder()
    assert enc.encode(pcm[:256]) == py_frames[0][16:-2]


def test_header_carries_protocol_and_fixed_point_front_end(tmp_path: Path):
    text = render_header(FrontendConfig())
    assert "#define ACULA_VERSION 1u" in text and "#define ACULA_CODEC_IMA_ADPCM 2u" in text
    assert "ACULA_FE_WINDOW_Q15[1024]" in text and "ACULA_FE_MEL_START[64]" in text
    assert "#define ACULA_FE_NORM_MEAN_DB -38.7f" in text


def test_feature_mode_frames_decode_to_the_front_end_within_quantisation(tmp_path: Path):
    pytest.importorskip("onnx")
    from acula.firmware_bridge.protocol import FEATURE_SCALE
    from acula.firmware_bridge.simulate import feature_frames

    from tests.toy_bundle import make_toy_bundle

    x = audio(3.0)
    frames, exact = feature_frames(x)
    dec = FrameDecoder()
    chunks = [c for f in frames[:5] + frames[6:] for c in dec.feed(f)] + dec.flush()  # frame 5 lost
    assert dec.counters.feature_frames == len(frames) - 1 and dec.counters.frames_lost == 1
    lost = [c for c in chunks if c.lost]
    assert len(lost) == 1 and lost[0].features is not None and lost[0].features.shape == (4, 64)
    got = np.concatenate([c.features for c in chunks])
    assert got.shape == exact.shape
    ok = np.ones(len(got), bool)
    ok[20:24] = False
    assert np.max(np.abs(got[ok] - exact[ok])) <= FEATURE_SCALE / 2 + 1e-6
    from acula import sdk

    model = sdk.load(make_toy_bundle(tmp_path / "b"))
    stream = model.stream()
    windows = [w for c in chunks for w in stream.accept_features(c.features)]
    assert len(windows) == len(model.embed(x, 16000).embeddings)


@pytest.mark.parametrize("mode", ["audio", "features"])
def test_the_bridge_feeds_its_stream_once_a_window_with_the_results_of_frame_by_frame(mode):
    """``bridge listen``'s screening holds a segment's frames (256 samples, or 4 log-mel frames, each) until the
    next window can complete and feeds them in one call: the windows and cough events of feeding every frame as
    it arrives, with lost frames concealed in place, in about one call a window."""
    pytest.importorskip("onnx")
    from acula.firmware_bridge.cli import _Screening
    from acula.firmware_bridge.simulate import feature_frames
    from acula.sdk.model import load
    from acula.sdk.stream import Stream

    x, _ = synth_recording(8.0, seed=5)
    frames = (stethoscope_frames(x, 16000, Codec.IMA_ADPCM, frame_samples=256, loss_rate=0.02)[0] if mode == "audio"
              else feature_frames(x)[0])
    dec = FrameDecoder()
    chunks = [c for f in frames for c in dec.feed(f)] + dec.flush()
    model = load("default")
    by_frame = model.stream()
    window_calls = []
    for c in chunks:  # the old way: every decoded frame into the stream as it comes
        window_calls.append(len(by_frame.accept_features(c.features) if mode == "features"
                                else by_frame.accept(c.samples, c.sample_rate_hz)))
    expected = sum(window_calls) + len(by_frame.flush())
    calls = []
    real = Stream.accept_features if mode == "features" else Stream.accept

    def counted(self, *a):
        calls.append(1)
        return real(self, *a)

    screening = _Screening(model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Stream, "accept_features" if mode == "features" else "accept", counted)
        for c in chunks:
            screening.accept(c)
        screening.close()
    assert screening.n_windows == expected > 1
    assert screening.events == [{**e.to_dict(), "segment": 0} for e in by_frame.events]
    # a window is 30 audio frames of 256 samples, or 4 packets of 4 log-mel frames: fewer calls by about that much
    assert len(chunks) > (10 if mode == "audio" else 3) * len(calls) and len(calls) <= expected + 1
