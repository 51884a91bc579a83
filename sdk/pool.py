"""Many streams, one model, one thread: a gateway serving many stethoscopes.

    pool = StreamPool(model)
    streams = [model.stream() for _ in range(n)]
    results = pool.accept([(s, chunk, 16000) for s, chunk in zip(streams, chunks)])  # one list per stream

Each :meth:`StreamPool.accept` runs every stream's own front end, then scores all the windows that became
ready, across streams, with one runtime call per ``max_batch`` windows.  A step costs a fixed overhead per
stream, so a gateway receiving small packets does best to hold each stream's samples until
``stream.samples_until_window()`` have arrived and hand the pool one chunk per window (what
``acula bridge listen`` does for one stethoscope).  A batched call rounds differently
from one window at a time (``Model.run_windows``, which a single stream uses so that its results are
bit-identical whatever the chunking): embeddings and probabilities agree within ``POOL_TOLERANCE``
(tests/test_pool.py), quality gating and events are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from acula.sdk.audio import AudioError
from acula.sdk.frontend import _Scratch
from acula.sdk.model import Model
from acula.sdk.results import WindowResult
from acula.sdk.stream import Pending, Stream, stage_whole_blocks

__all__ = ["POOL_TOLERANCE", "StreamPool"]

#: relative difference, batched against one window at a time, that tests/test_pool.py allows on
#: embeddings (and, as absolute difference, on probabilities)
POOL_TOLERANCE = 1e-5


class StreamPool:
    """Batches the ready windows of many :class:`Stream` of one model into one runtime call per step.  One
    pool serves one thread (it keeps one batch buffer); the model may be shared with other pools."""

    #: streams whose hops are measured in one pass of :func:`sdk.stream.stage_whole_blocks` (32 hops of 0.48 s
    #: in float64: 2 MB, one core's L2 cache here)
    STAGE_ROWS = 32

    def __init__(self, model: Model, max_batch: int = 32, frontend_rows: int = 128) -> None:
        """``max_batch``: windows per runtime call (onnxruntime fp32 here, per window: 76 us alone, 48 us in
        batches of 16-32, 55 us at 64, 60 us at 128); ``frontend_rows``: log-mel frames per front-end pass
        (the FFT of 960 frames at once ran 9.4 us a frame, out of cache; in passes of 128, 3.9 us)."""
        if max_batch < 1 or frontend_rows < 1:
            raise ValueError(f"max_batch and frontend_rows must be at least 1, got {max_batch}, {frontend_rows}")
        self.model, self.max_batch, self.frontend_rows = model, max_batch, frontend_rows
        self._batch = np.empty((0, model.window_frames, model.frontend.config.n_mels), dtype=np.float32)
        self._scratch = _Scratch(model.frontend.config.n_fft)  # the front end's work buffers for all streams

    def stream(self) -> Stream:
        return self.model.stream()

    def accept(self, chunks: Sequence[tuple[Stream, np.ndarray, int]]
               ) -> list[list[WindowResult] | AudioError]:
        """``(stream, chunk, sample_rate_hz)`` per stream, each stream at most once; returns, in order, each
        stream's new windows, or the :class:`AudioError` its chunk raised (the other streams are still
        served, and the failed stream's state is as before the chunk).  The front ends of all streams run as
        one batch too (numpy engine), the same values as each stream's own.  A step of one stream is that stream's
        own ``accept`` (bit-identical; the pool's bookkeeping cost 5 % of a lone stream's CPU time here)."""
        streams = self._unique([s for s, _, _ in chunks])
        if len(chunks) == 1:  # nothing to batch: the stream's own path, bit-identical to its accept
            stream, chunk, rate = chunks[0]
            try:
                return [stream.accept(chunk, rate)]
            except AudioError as exc:
                return [exc]
        with self._held(streams):
            if self.model.frontend.engine != "numpy":  # the numba front end runs per stream
                return self._serve(streams, lambda i: chunks[i][0]._prepare(chunks[i][1], chunks[i][2]))
            staged = self._stage_all(chunks)
            self._frontend_batch(streams, staged)
            errors = {i: e for i, e in enumerate(staged) if isinstance(e, AudioError)}
            return self._serve(streams, lambda i: errors[i] if i in errors else streams[i]._pending())

    def flush(self, streams: Sequence[Stream]) -> list[list[WindowResult] | AudioError]:
        """End of input for each of ``streams`` (as :meth:`Stream.flush`)."""
        streams = self._unique(list(streams))
        with self._held(streams):
            out = self._serve(streams, lambda i: streams[i]._prepare_flush())
        for s in streams:
            s._end_input()
        return out

    def _unique(self, streams: list[Stream]) -> list[Stream]:
        if len({id(s) for s in streams}) != len(streams):
            raise ValueError("a stream appears twice in one pool step; give each stream at most one chunk a step")
        if any(s.model is not self.model for s in streams):
            raise ValueError("a stream of another model in this pool: a pool runs every window through its own model "
                             "(and its level shift); make the streams with pool.stream() or pool.model.stream()")
        return streams

    @staticmethod
    @contextlib.contextmanager
    def _held(streams: list[Stream]) -> Iterator[None]:
        """Every stream held for the whole step (a Stream takes one caller at a time)."""
        with contextlib.ExitStack() as held:
            for s in streams:
                held.enter_context(s._exclusive())
            yield

    def _stage_all(self, chunks: Sequence[tuple[Stream, np.ndarray, int]]) -> list[int | AudioError]:
        """Validate, measure and stage every chunk; per stream the frames its front end can compute, or the error
        its chunk raised.  Chunks of one hop (float32, on the quality and envelope grids: the usual step) are
        measured for ``STAGE_ROWS`` streams at a time (:func:`sdk.stream.stage_whole_blocks`), the rest one by
        one; either way each stream ends in the state its own ``accept`` leaves."""
        staged: list[int | AudioError | None] = [None] * len(chunks)
        by_length: dict[int, list[int]] = {}
        for i, (s, chunk, rate) in enumerate(chunks):
            if s._takes_whole_blocks(chunk, rate):
                by_length.setdefault(chunk.shape[0], []).append(i)
        for same in by_length.values():
            for a in range(0, len(same), self.STAGE_ROWS):
                part = same[a : a + self.STAGE_ROWS]
                for i, n in zip(part, stage_whole_blocks([(chunks[i][0], chunks[i][1]) for i in part]), strict=True):
                    staged[i] = n
        for i, (s, chunk, rate) in enumerate(chunks):
            if staged[i] is None:
                try:
                    staged[i] = s._stage(s._take(chunk, rate))
                except AudioError as exc:
                    staged[i] = exc
        return [n for n in staged if n is not None]  # every entry is set by now

    def _frontend_batch(self, streams: list[Stream], staged: list[int | AudioError]) -> None:
        """The log-mel of every stream's staged frames, in passes of about ``frontend_rows`` frames over several
        streams (window, FFT, power, mel, log; row by row, so each stream gets exactly what its own front end
        gives), handed back to each stream.  A stream's frames stay in one pass."""
        block: list[tuple[Stream, int]] = []
        rows = 0
        for s, n in zip(streams, staged, strict=True):
            if not isinstance(n, int) or not n:
                continue
            if block and rows + n > self.frontend_rows:
                self._frontend_pass(block, rows)
                block, rows = [], 0
            block.append((s, n))
            rows += n
        if block:
            self._frontend_pass(block, rows)

    def _frontend_pass(self, block: list[tuple[Stream, int]], rows: int) -> None:
        windowed, work = self._scratch.get(rows)
        a = 0
        for s, n in block:
            s._fe.window_staged(n, windowed[a : a + n])
            a += n
        logmel = self.model.frontend.logmel_of_windowed(windowed, work)
        # each frame's loudest cell, for the running level, in one pass over every stream's frames
        peaks = None if self.model.level is None else np.maximum.reduce(logmel, axis=1)
        a = 0
        for s, n in block:
            s._add_frames(logmel[a : a + n], n, None if peaks is None else peaks[a : a + n])
            a += n

    def _serve(self, streams: list[Stream], prepare: Callable[[int], Pending | AudioError]
               ) -> list[list[WindowResult] | AudioError]:
        """Score the ready windows of all streams with one runtime call per ``max_batch`` (streams held)."""
        pendings: list[Pending | AudioError] = []
        for i in range(len(streams)):
            try:
                pendings.append(prepare(i))
            except AudioError as exc:
                pendings.append(exc)
        ready = [p for p in pendings if isinstance(p, Pending) and p.windows]
        emb, heads = self._run(ready)
        # label logits of every ready window in one product (each row is its own product: the same values
        # as one stream's scorer call on its rows)
        logits = self.model.scorer(emb) if emb.shape[0] else {}
        out: list[list[WindowResult] | AudioError] = []
        a = 0
        for s, p in zip(streams, pendings, strict=True):
            if isinstance(p, AudioError) or not p.windows:
                out.append(p if isinstance(p, AudioError) else [])
                continue
            b = a + len(p.windows)
            out.append(s._complete(p, emb[a:b], heads[a:b], {k: v[a:b] for k, v in logits.items()}))
            a = b
        return out

    def _run(self, ready: list[Pending]) -> tuple[np.ndarray, np.ndarray]:
        """The windows of ``ready`` written straight into the batch buffer (shifted there by their running levels
        when the model has a level shift) and run, ``max_batch`` at a time."""
        windows = [w for p in ready for w in p.windows]
        n = len(windows)
        if not n:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        level = ready[0].level
        levels = [v for p in ready for v in p.levels]
        if self._batch.shape[0] < min(n, self.max_batch):
            self._batch = np.empty((min(n, self.max_batch), *self._batch.shape[1:]), dtype=np.float32)
        embs, heads = [], []
        for start in range(0, n, self.max_batch):
            part = windows[start : start + self.max_batch]
            batch = self._batch[: len(part)]
            if level is None:
                for j, w in enumerate(part):
                    batch[j] = w
            else:
                level.shift_batch(part, levels[start : start + self.max_batch], batch)
            e, h = self.model.run_batch(batch)
            embs.append(e)
            heads.append(h)
        if len(embs) == 1:
            return embs[0], heads[0]
        return np.concatenate(embs), np.concatenate(heads)
