"""Micro-benchmarks (pytest-benchmark).  Not part of the test suite; run with

    python -m pytest benchmarks/micro --benchmark-only

Each one warms its subject up, times it, and fails when the subject's time over a fixed reference workload
timed in the same run exceeds the ratio stored in ``benchmarks/baselines/micro_ratios.json`` times
``--micro-tolerance`` (see ``conftest.py``; ``--micro-save-ratios`` stores this run's).  Absolute times can
still be compared with ``--benchmark-storage=benchmarks/baselines --benchmark-compare``, but only on the CPU
that stored them.
"""

from __future__ import annotations

import numpy as np
import pytest
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.synth import synth_recording

X10, _ = synth_recording(10.0, seed=0)


def test_frontend_whole_clip_10s(against_reference):
    against_reference(LogMelFrontend(), X10)


def test_frontend_stream_512(against_reference):
    stream = LogMelFrontend().stream()
    against_reference(stream.accept, X10[:512])


@pytest.mark.parametrize("backend,precision", [("onnxruntime", "int8"), ("onnxruntime", "fp32"),
                                               ("tflite", "int8"), ("tflite", "fp32")])
def test_runtime_one_window(against_reference, backend, precision):
    from acula import sdk

    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    model = sdk.load("default", backend, precision)
    window = np.zeros((1, model.window_frames, 64), dtype=np.float32)
    against_reference(model.run_windows, window)


def test_stream_accept_one_hop(against_reference):
    from acula import sdk

    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    model = sdk.load("default")
    stream = model.stream()
    stream.accept(X10[:48000], 16000)
    hop = X10[:7680]
    against_reference(stream.accept, hop, 16000)


def test_search_flat_1000(against_reference):
    from acula.sdk.search import CaseIndex

    rng = np.random.default_rng(0)
    index = CaseIndex(512, "flat")
    index.add(rng.standard_normal((1000, 512)).astype(np.float32), [{"i": i} for i in range(1000)])
    q = rng.standard_normal(512).astype(np.float32)
    against_reference(index.search, q, 5)


def test_bridge_decoder_100_frames(against_reference):
    from acula.firmware_bridge.decoder import FrameDecoder
    from acula.firmware_bridge.protocol import Codec
    from acula.firmware_bridge.simulate import stethoscope_frames

    frames, _ = stethoscope_frames(X10[: 256 * 100], 16000, Codec.IMA_ADPCM)
    data = b"".join(frames)

    def run() -> int:
        dec = FrameDecoder()
        return len(dec.feed(data)) + len(dec.flush())

    assert against_reference(run) == 100
