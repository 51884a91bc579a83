"""The parts of a Stream, each alone: Fifo, SampleStore, Windower, WindowGate (quality gate) and LabelScorer."""

from __future__ import annotations

import numpy as np
import pytest
from acula.sdk.fifo import Fifo, SampleStore
from acula.sdk.quality import CLIP_LEVEL, WindowGate, assess_quality
from acula.sdk.scoring import LabelScorer, softmax
from acula.sdk.stream import Windower


def test_fifo_keeps_order_across_compaction_and_growth():
    f = Fifo((2,), np.float32, capacity=8)
    rows = np.arange(200, dtype=np.float32).reshape(100, 2)
    for i in range(0, 100, 7):
        f.append(rows[i : i + 7])
        f.drop_before(max(0, f.end - 11))
        np.testing.assert_array_equal(f.held(), rows[f.base : f.end])
    np.testing.assert_array_equal(f.view(f.end - 3, f.end + 5), rows[-3:])  # clipped to what is held



def test_sample_store_keeps_suffixes_in_runs_reads_views_and_refuses_skipped_samples():
    x = np.arange(100, dtype=np.float32)
    s = SampleStore()
    s.append(x[:30])  # kept whole
    s.append(x[30:60], keep_from=30)  # skipped
    s.append(x[60:80], keep_from=5)  # [65, 80) kept
    s.append(x[80:100].astype(np.float64))  # kept, as float32: continues the run [65, 80)
    assert (s.base, s.end) == (0, 100)
    assert [(a, p.tolist()) for a, p in s.pieces()] == [(0, x[:30].tolist()), (65, x[65:].tolist())]
    inside = s.view(66, 99)
    np.testing.assert_array_equal(inside, x[66:99])
    assert np.shares_memory(inside, s.pieces()[1][1])  # one run holds it: a view
    np.testing.assert_array_equal(s.view(20, 70, skipped_as_zero=True),
                                  np.concatenate([x[20:30], np.zeros(35, np.float32), x[65:70]]))
    assert s.view(95, 200).tolist() == x[95:].tolist()  # clipped to what is held
    with pytest.raises(RuntimeError, match="only 5 of them were kept"):
        s.view(25, 35)
    s.drop_before(70)
    assert s.base == 70 and [(a, p[0]) for a, p in s.pieces()] == [(70, 70.0)]
    assert s.view(0, 72).tolist() == [70.0, 71.0]
    s.append(x[:0])
    s.drop_before(500)
    assert (s.base, s.end, s.pieces()) == (100, 100, [])


def test_sample_store_holds_one_run_for_samples_fed_one_at_a_time():
    """Chunks of one sample (a stream at 44.1 kHz keeps every sample) make one run in one buffer, whose memory
    stays that of the samples held, not of one array per chunk."""
    s = SampleStore()
    x = np.random.default_rng(0).normal(size=50_000).astype(np.float32)
    for i in range(x.size):
        s.append(x[i : i + 1])
        if i % 1000 == 999:
            s.drop_before(i + 1 - 20_000)  # a window's worth held
    assert len(s.pieces()) == 1 and s.pieces()[0][0] == s.base == 30_000
    np.testing.assert_array_equal(s.view(30_000, 50_000), x[30_000:])
    assert s._data._buf.nbytes <= 4 * 2 * 32_768


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_gate_judges_grid_windows_as_the_full_gate_and_keeps_only_what_they_can_read(seed: int):
    """A gate on the block grid (``sparse``, what a 16 kHz stream sets) keeps the chunks that reach the clip
    level and the samples of the block left open, and judges every window on the grid, and the ragged end of a
    flushed stream, exactly as a gate that keeps every sample; quiet hops leave nothing behind."""
    rng = np.random.default_rng(seed)
    hop, window = 15 * 512, 63 * 512
    x = (rng.normal(0, 0.1, 30 * hop) * np.repeat(10.0 ** rng.uniform(-4, 0, 30), hop)).astype(np.float32)
    x[9 * hop + 100 : 9 * hop + 400] = 1.0  # flat tops: their chunks are kept, and counted sample by sample
    x[22 * hop + 1000 : 22 * hop + 1300] = -1.0
    total = x.size - int(rng.integers(1, 511))  # the stream ends inside a block
    sparse, full = WindowGate(), WindowGate()
    sparse.sparse = True
    pos, n, kept, flagged = 0, 0, [], []
    # hops on the grid (the first clip arrives in one), then chunks of any length (the second clip in them)
    sizes = [1000, 2 * hop - 1000] + [hop] * 10 + [int(v) for v in rng.integers(1, 3 * hop, 40)]
    while pos < total:
        size = sizes.pop(0)
        chunk = x[pos : min(total, pos + size)]
        if chunk.shape[0] == hop and not sparse.block_open:
            from acula.sdk.quality import block_stats

            blocks, totals = block_stats(chunk.astype(np.float64).reshape(1, -1, 512))
            sparse.append_blocks(chunk.astype(np.float64), blocks[0], totals[0])
        else:
            sparse.append(chunk)
        full.append(chunk)
        pos += chunk.shape[0]
        while n * hop + window <= pos:
            got = sparse.problems(n * hop, n * hop + window)
            assert got == full.problems(n * hop, n * hop + window)
            flagged.append(got)
            n += 1
            for g in (sparse, full):
                g.drop_before(n * hop)
        kept.append(sum(p.shape[0] for _, p in sparse.samples.pieces()))
    assert sparse.problems(n * hop, total) == full.problems(n * hop, total)  # the flushed stream's ragged end
    assert sparse.loudest_dbfs == full.loudest_dbfs
    assert n > 20 and 6 < sum("clipped" in f for f in flagged) < n
    held = sum(p.shape[0] for _, p in full.samples.pieces())
    assert max(kept) <= 3 * hop + 512 < held  # the clipped chunk at most, never a window's samples


def test_windower_hands_out_each_window_once_as_views_of_the_frames():
    w = Windower(n_mels=3, window_frames=5, hop_frames=2)
    frames = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    got = []
    for i in range(0, 20, 3):
        w.append(frames[i : i + 3])
        got += [x.copy() for x in w.ready()]
        w.release()
    assert len(got) == (20 - 5) // 2 + 1
    for k, x in enumerate(got):
        np.testing.assert_array_equal(x, frames[2 * k : 2 * k + 5])
    assert w.tiled() is None  # windows were handed out: nothing to tile


def test_windower_tiles_a_recording_shorter_than_one_window():
    w = Windower(n_mels=2, window_frames=7, hop_frames=2)
    w.append(np.arange(6, dtype=np.float32).reshape(3, 2))
    assert w.ready() == []
    tiled = w.tiled()
    assert tiled is not None and tiled.shape == (7, 2)
    np.testing.assert_array_equal(tiled[3:6], tiled[:3])


@pytest.mark.parametrize("kind", ["speech", "quiet", "silent", "clipped"])
def test_window_gate_equals_assess_quality_on_the_window(kind: str):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, 48000)
    if kind == "quiet":
        x[16000:] *= 1e-4
    elif kind == "silent":
        x[:] = 0.0
    elif kind == "clipped":
        x = np.clip(x * 30, -1, 1)
    gate = WindowGate()
    for i in range(0, x.size, 4000):
        gate.append(x[i : i + 4000].astype(np.float32))
    loudest = -np.inf
    for start in range(0, 48000 - 16000, 4000):
        seg = x[start : start + 16000].astype(np.float32).astype(np.float64)
        q = assess_quality(seg)
        loudest = max(loudest, q.rms_dbfs)
        want = tuple(p for p, on in (("silent", q.silent), ("clipped", q.clipped),
                                     ("low_level", q.low_level and q.rms_dbfs < loudest - 30.0)) if on)
        assert gate.problems(start, start + 16000) == want
    assert (kind == "clipped") == (np.abs(x).max() >= CLIP_LEVEL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_gate_chunk_statistics_give_the_window_flags_whatever_the_chunks_and_drops(seed: int):
    """Windows at any offset, chunks of any length (some longer than a window), drops inside a chunk: the
    blocks' statistics and the ragged edges give the flags (and, to rounding, the RMS) of the window's own
    samples, as :func:`assess_quality` finds them."""
    from acula.sdk.quality import chunk_stats

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, 60000) * np.repeat(10.0 ** rng.uniform(-5, 0, 60), 1000)  # loud, quiet, near-silent
    x[30000:30050] = 0.99  # a flat top near full scale: the full meter's path
    x = x.astype(np.float32).astype(np.float64)  # samples as a stream's gate keeps them (float32)
    gate, ref = WindowGate(), WindowGate()
    pos, start, n_windows = 0, 0, 0
    while start + 9000 < x.size:
        while pos < min(x.size, start + 9000 + int(rng.integers(0, 5000))):
            n = int(rng.integers(1, 12000))
            held, stats = gate.append(x[pos : pos + n])
            want_stats = chunk_stats(x[pos : pos + n])  # the same values, summed block by block
            assert stats[0] == want_stats[0] and stats[1:] == pytest.approx(want_stats[1:], rel=1e-12, abs=1e-12)
            pos += held.shape[0]
        end = min(pos, start + 9000)
        seg = x[start:end]
        # the direct reduction over the window, same gate rules
        want = ref._judge(seg.size, *chunk_stats(seg), lambda seg=seg: seg)
        assert gate.problems(start, end) == want
        assert gate.loudest_dbfs == pytest.approx(ref.loudest_dbfs, abs=1e-9)
        q = assess_quality(seg)
        assert ("silent" in want) == q.silent and ("clipped" in want) == q.clipped
        start += int(rng.integers(1, 2500))
        gate.drop_before(start)
        n_windows += 1
    assert n_windows > 15 and len(gate._blocks) < 60  # blocks that ended are dropped with their samples


def test_window_gate_says_too_short_for_samples_it_no_longer_holds():
    gate = WindowGate()
    gate.append(np.ones(100, np.float32) * 0.1)
    gate.drop_before(100)
    assert gate.problems(0, 50) == ("too_short",)


def test_label_scorer_equals_the_mean_of_prompt_similarities():
    rng = np.random.default_rng(2)
    prompts = rng.normal(size=(7, 16)).astype(np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    groups = {"a": [np.array([0, 1]), np.array([2])], "b": [np.array([3, 4, 5]), np.array([6]), np.array([0])]}
    scorer = LabelScorer(prompts, groups, 14.0, {"a": 2.0, "b": 1.0})
    emb = rng.normal(size=(5, 16)).astype(np.float32)
    got = scorer(emb)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = e @ prompts.T * 14.0
    for name, temp in (("a", 2.0), ("b", 1.0)):
        want = np.stack([sims[:, idx].mean(1) for idx in groups[name]], 1) / temp
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scorer(emb[2:3])["a"][0], got["a"][2])  # a row does not depend on the batch


def test_softmax_is_stable_and_sums_to_one():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]), axis=1)
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_at_16khz_the_gate_judges_the_models_windows_from_block_statistics_alone(monkeypatch):
    """The model's windows start and end on the gate's block grid at 16 kHz: hop-sized chunks are reduced once,
    block by block, and no window reduces a sample of its own (chunk_stats is never called)."""
    import acula.sdk.quality as Q
    from acula.sdk.synth import synth_recording

    calls = []
    real = Q.chunk_stats
    monkeypatch.setattr(Q, "chunk_stats", lambda x: calls.append(x.shape[0]) or real(x))
    gate = WindowGate()
    hop, window = 15 * 512, 63 * 512  # the default bundle's hop and window span, in samples
    x = synth_recording(10.0, seed=1)[0][: 20 * hop]
    n = 0
    for i in range(0, x.size, hop):
        gate.append(x[i : i + hop])
        while n * hop + window <= i + hop:
            seg = x[n * hop : n * hop + window].astype(np.float64)
            assert gate.problems(n * hop, n * hop + window) == gate._judge(seg.size, *real(seg), lambda seg=seg: seg)
            gate.drop_before((n + 1) * hop)
            n += 1
    assert n > 10 and calls == []
