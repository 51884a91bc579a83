"""StreamPool: many streams batched into one runtime call give each stream's own results within tolerance."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from acula.sdk.audio import AudioError  # noqa: E402
from acula.sdk.pool import POOL_TOLERANCE, StreamPool  # noqa: E402
from acula.sdk.synth import synth_recording  # noqa: E402

from acula import sdk  # noqa: E402
from tests.toy_bundle import make_toy_bundle  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> sdk.Model:
    return sdk.load(make_toy_bundle(tmp_path_factory.mktemp("toy") / "bundle"), precision="fp32")


def serve(pool: StreamPool, xs: list[np.ndarray], rates: list[int], chunk: int) -> tuple[list, list]:
    streams = [pool.stream() for _ in xs]
    got: list[list] = [[] for _ in xs]
    for i in range(0, max(x.size for x in xs), chunk):
        step = pool.accept([(s, x[i : i + chunk], rate) for s, x, rate in zip(streams, xs, rates, strict=True)])
        for g, r in zip(got, step, strict=True):
            assert not isinstance(r, AudioError)
            g += r
    for g, r in zip(got, pool.flush(streams), strict=True):
        assert not isinstance(r, AudioError)
        g += r
    return got, streams


@pytest.mark.parametrize("max_batch", [1, 3, 256])
def test_pool_results_equal_per_stream_results_within_tolerance(model: sdk.Model, max_batch: int):
    xs = [synth_recording(d, seed=i)[0] for i, d in enumerate([6.0, 4.0, 1.0, 5.0])]
    xs[1] = xs[1] * 1e-5  # quiet: gated windows take the same path in the pool
    got, streams = serve(StreamPool(model, max_batch), xs, [16000] * 4, 5000)
    for x, g, s in zip(xs, got, streams, strict=True):
        ref = model.screen(x, 16000)
        assert [(w.index, w.start_s, w.end_s, w.problems, w.padded) for w in g] == \
               [(w.index, w.start_s, w.end_s, w.problems, w.padded) for w in ref.windows]
        e, e_ref = np.stack([w.embedding for w in g]), np.stack([w.embedding for w in ref.windows])
        assert np.abs(e - e_ref).max() <= POOL_TOLERANCE * np.abs(e_ref).max()
        p = [w.cough_probability for w in g]
        p_ref = [w.cough_probability for w in ref.windows]
        assert [v is None for v in p] == [v is None for v in p_ref]
        np.testing.assert_allclose([v for v in p if v is not None], [v for v in p_ref if v is not None],
                                   atol=POOL_TOLERANCE)
        assert s.events == ref.events


def test_pool_serves_streams_at_different_rates(model: sdk.Model):
    x, _ = synth_recording(3.0, seed=3)
    x44 = np.interp(np.arange(int(x.size * 44100 / 16000)) * 16000 / 44100, np.arange(x.size), x)
    got, _ = serve(StreamPool(model), [x, x44.astype(np.float32)], [16000, 44100], 4410)
    assert len(got[0]) == len(model.screen(x, 16000).windows)
    assert len(got[1]) == len(model.screen(x44, 44100).windows)


def test_pool_returns_a_bad_chunk_error_and_serves_the_other_streams(model: sdk.Model):
    pool = StreamPool(model)
    a, b = pool.stream(), pool.stream()
    x, _ = synth_recording(3.0, seed=1)
    bad = x.copy()
    bad[5] = np.nan
    out = pool.accept([(a, bad, 16000), (b, x, 16000)])
    assert isinstance(out[0], AudioError) and not isinstance(out[1], AudioError) and out[1]
    assert len(a.accept(x, 16000)) == len(out[1])  # the failed stream kept no part of the bad chunk


def test_pool_refuses_a_stream_twice_in_one_step(model: sdk.Model):
    pool = StreamPool(model)
    s = pool.stream()
    with pytest.raises(ValueError, match="twice"):
        pool.accept([(s, np.zeros(100, np.float32), 16000), (s, np.zeros(100, np.float32), 16000)])


def test_pool_refuses_a_stream_of_another_model(model: sdk.Model, tmp_path):
    other = sdk.load(make_toy_bundle(tmp_path / "other"), precision="fp32")
    pool = StreamPool(model)
    chunk = np.zeros(7680, np.float32)
    with pytest.raises(ValueError, match="another model"):
        pool.accept([(pool.stream(), chunk, 16000), (other.stream(), chunk, 16000)])
    with pytest.raises(ValueError, match="another model"):
        pool.flush([other.stream()])


def test_pool_on_the_packaged_default_within_tolerance():
    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    for precision in ("fp32", "int8"):
        m = sdk.load("default", precision=precision)
        xs = [synth_recording(4.0, seed=10 + i)[0] for i in range(3)]
        got, _ = serve(StreamPool(m), xs, [16000] * 3, 7680)
        for x, g in zip(xs, got, strict=True):
            ref = m.screen(x, 16000).windows
            e, e_ref = np.stack([w.embedding for w in g]), np.stack([w.embedding for w in ref])
            assert np.abs(e - e_ref).max() <= POOL_TOLERANCE * np.abs(e_ref).max()




@pytest.mark.parametrize("frontend_rows", [128, 4])
def test_the_pooled_front_end_gives_each_stream_its_own_log_mel_bit_for_bit(model: sdk.Model, frontend_rows: int):
    """The pool runs the streams' front ends in passes of several streams' frames: after every step, each stream
    holds exactly the log-mel frames and samples its own front end gives (a 44.1 kHz stream, a chunk that fails,
    odd chunks; passes of 4 frames split the streams across passes and leave a stream with more alone)."""
    rates = [16000, 44100, 16000]
    xs = [synth_recording(5.0, sample_rate_hz=r, seed=i)[0] for i, r in enumerate(rates)]
    pool = StreamPool(model, frontend_rows=frontend_rows)
    pooled, alone = [pool.stream() for _ in xs], [model.stream() for _ in xs]
    n_windows = 0
    for i in range(0, 5 * 44100, 3001):
        chunks = [x[i * r // 44100 : (i + 3001) * r // 44100] for x, r in zip(xs, rates, strict=True)]
        if i == 3001 * 7:
            chunks[2] = np.full(100, np.nan, np.float32)  # fails: that stream is left as before the chunk
        out = pool.accept([(s, c, r) for s, c, r in zip(pooled, chunks, rates, strict=True)])
        for k, (a, b, c, r) in enumerate(zip(pooled, alone, chunks, rates, strict=True)):
            if isinstance(out[k], AudioError):
                assert k == 2
                continue
            assert len(b.accept(c, r)) == len(out[k])
            n_windows += len(out[k])
            assert np.array_equal(a._fe._buf[: a._fe._n_buf], b._fe._buf[: b._fe._n_buf])
            assert a.windower.frames.end == b.windower.frames.end
            assert np.array_equal(a.windower.frames.held(), b.windower.frames.held())
    assert n_windows > 15


def test_hops_measured_for_many_streams_at_once_leave_each_stream_its_own_state(model: sdk.Model, monkeypatch):
    """Hop-sized float32 chunks are measured for several streams in one pass (sdk.stream.stage_whole_blocks,
    STAGE_ROWS streams at a time; 2 here, so 5 streams make three passes): each stream's gate, meter, envelope,
    front end and windows equal bit for bit those of the same stream fed alone, and a chunk with NaN or over
    full scale fails that stream alone, leaving it as it was."""
    import acula.sdk.pool as P

    from tests.test_model import stream_state

    monkeypatch.setattr(StreamPool, "STAGE_ROWS", 2)
    passes = []
    real = P.stage_whole_blocks
    monkeypatch.setattr(P, "stage_whole_blocks", lambda items: passes.append(len(items)) or real(items))
    hop = 7680
    xs = [synth_recording(8.0, seed=20 + i)[0] for i in range(5)]
    xs[1][2 * hop + 50 : 2 * hop + 300] = -1.0  # a flat top
    xs[3] *= 1e-4  # quiet
    pool = StreamPool(model)
    pooled, alone = [pool.stream() for _ in xs], [model.stream() for _ in xs]
    for k in range(8 * 16000 // hop):
        chunks = [x[k * hop : (k + 1) * hop] for x in xs]
        if k == 4:
            chunks[0] = chunks[0].copy()
            chunks[0][9] = np.nan
            chunks[2] = chunks[2].copy()
            chunks[2][5] = 20.0  # over MAX_FLOAT_PEAK: PCM counts passed as floats
        out = pool.accept([(s, c, 16000) for s, c in zip(pooled, chunks, strict=True)])
        for j, (a, b, c) in enumerate(zip(pooled, alone, chunks, strict=True)):
            if k == 4 and j in (0, 2):
                assert isinstance(out[j], AudioError)
                with pytest.raises(AudioError):
                    b.accept(c, 16000)
            else:
                assert [(w.index, w.problems) for w in b.accept(c, 16000)] == [(w.index, w.problems) for w in out[j]]
            assert stream_state(a) == stream_state(b)
            assert np.array_equal(a._fe._buf[: a._fe._n_buf], b._fe._buf[: b._fe._n_buf])
            assert np.array_equal(a.windower.frames.held(), b.windower.frames.held())
    assert passes.count(2) > 10  # the first step (the rates unknown yet) takes the general path


def test_a_step_of_one_stream_is_the_streams_own_accept_bit_for_bit(model: sdk.Model):
    """Nothing to batch: one stream's step gives exactly what its own ``accept`` gives, and a bad chunk comes back
    as the error, not raised."""
    x, _ = synth_recording(4.0, seed=6)
    pool = StreamPool(model)
    pooled, own = pool.stream(), model.stream()
    for i in range(0, x.size, 7680):
        (got,) = pool.accept([(pooled, x[i : i + 7680], 16000)])
        want = own.accept(x[i : i + 7680], 16000)
        assert not isinstance(got, AudioError)
        assert [(w.index, w.cough_probability) for w in got] == [(w.index, w.cough_probability) for w in want]
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(g.embedding, w.embedding)
    bad = x[:100].copy()
    bad[3] = np.inf
    (err,) = pool.accept([(pooled, bad, 16000)])
    assert isinstance(err, AudioError)


def test_the_pool_shifts_each_window_into_its_batch_as_the_stream_shifts_it():
    """On a level bundle the pool writes each window, moved by its stream's running level, straight into its
    batch buffer (and takes the frames' peaks from one pass over all streams): bit for bit the windows each
    stream's own Windower hands out."""
    if "default" not in sdk.available_models():
        pytest.skip("no packaged default bundle")
    m = sdk.load("default", precision="fp32")
    assert m.level is not None
    batches: list[np.ndarray] = []
    run_batch = m.run_batch
    m.run_batch = lambda b: (batches.append(b.copy()), run_batch(b))[1]  # type: ignore[method-assign]
    xs = [synth_recording(5.0, seed=20 + i)[0] * np.float32(10 ** (-g / 20)) for i, g in enumerate((0, 18, 36))]
    serve(StreamPool(m, max_batch=2), xs, [16000] * 3, 7680)
    got = np.concatenate(batches)
    per_stream = []
    for x in xs:
        s = m.stream()
        fe, win = s._fe, s.windower
        for a in range(0, x.size, 7680):
            win.append(fe.accept(x[a : a + 7680]))
            per_stream.append([w.copy() for w in win.ready()])
            win.release()
        tiled = win.tiled()
        per_stream.append([] if tiled is None else [tiled])
    # the pool's order: step by step, stream by stream
    n_steps = -(-xs[0].size // 7680)
    order = [w for k in range(n_steps) for i in range(3) for w in per_stream[i * (n_steps + 1) + k]]
    order += [w for i in range(3) for w in per_stream[i * (n_steps + 1) + n_steps]]
    assert got.shape[0] == len(order) > 0
    np.testing.assert_array_equal(got, np.stack(order))
