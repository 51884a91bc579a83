"""A first-in first-out buffer of rows (samples or frames) that a stream appends to and drops from, and a store
of a stream's samples that keeps only the ones that may be read again.

A :class:`Fifo` is one preallocated array, compacted in place and grown by doubling only when it is full, so
appending a hop and dropping what no window needs any more allocates nothing in the steady state; reads are
views.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

__all__ = ["Fifo", "SampleStore"]


class Fifo:
    """Rows of shape ``row_shape`` and dtype ``dtype``; row ``i`` of the stream is ``view(i, i + 1)`` while held.

    ``base`` is the global index of the oldest row held; ``end`` one past the newest.
    """

    def __init__(self, row_shape: tuple[int, ...] = (), dtype: Any = np.float64, capacity: int = 4096) -> None:
        self._buf = np.empty((capacity, *row_shape), dtype=dtype)
        self.reset()

    def reset(self) -> None:
        self._start = self._stop = 0  # held rows are _buf[_start:_stop]
        self.base = 0

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def end(self) -> int:
        return self.base + self._stop - self._start

    def append(self, rows: np.ndarray) -> np.ndarray:
        """Copy rows in (cast to the buffer's dtype); returns the view of them inside the buffer.  (Plain
        arithmetic on the indices, no ``len(self)``: a stream appends to three of these every hop.)"""
        start, stop, n = self._start, self._stop, rows.shape[0]
        if stop + n > self._buf.shape[0]:
            held = stop - start
            if held + n > self._buf.shape[0]:
                grown = np.empty((max(held + n, 2 * self._buf.shape[0]), *self._buf.shape[1:]), self._buf.dtype)
                grown[:held] = self._buf[start:stop]
                self._buf = grown
            else:
                self._buf[:held] = self._buf[start:stop]
            self._start, stop = 0, held
        out = self._buf[stop : stop + n]
        out[...] = rows
        self._stop = stop + n
        return out

    def view(self, start: int, stop: int) -> np.ndarray:
        """Global rows [start, stop), clipped to what is held (a view, valid until the next append)."""
        held, base, first = self._stop - self._start, self.base, self._start
        a = first + min(max(0, start - base), held)
        b = first + min(max(0, stop - base), held)
        return self._buf[a:max(a, b)]

    def held(self) -> np.ndarray:
        return self._buf[self._start : self._stop]

    def drop_before(self, index: int) -> None:
        """Forget the rows before global ``index``."""
        n = min(index - self.base, self._stop - self._start)
        if n > 0:
            self._start += n
            self.base += n


class SampleStore:
    """A stream's samples by global index, kept only where they may be read again: each appended chunk keeps a
    suffix of itself (all of it, part, or none).  :class:`sdk.quality.WindowGate` keeps every sample of a stream whose
    windows have ragged edges, and on the block grid only the chunks that reach the clip level and the samples of a
    block still open; a hop of quiet samples on the grid is not copied at all.

    The kept samples lie in order in one :class:`Fifo` (no allocation in the steady state, whatever the chunk size);
    a short list of runs maps them to global indices, one run per stretch of consecutive kept samples.
    ``base`` is the global index of the oldest sample still held (or skipped); ``end`` one past the newest.
    """

    def __init__(self) -> None:
        self._data = Fifo((), np.float32, 1 << 10)  # the kept samples, float32, in order (grows by doubling)
        self.reset()

    def reset(self) -> None:
        self._data.reset()
        self._runs: list[list[int]] = []  # [global start, index in _data, length] per run, ascending
        self.base = self.end = 0

    def append(self, x: np.ndarray, keep_from: int = 0) -> None:
        """Samples of shape (n,) follow the last ones; ``x[keep_from:]`` is kept (as float32), the rest skipped."""
        n = x.shape[0]
        if keep_from < n:
            start, at = self.end + keep_from, self._data.end
            self._data.append(x[keep_from:])
            last = self._runs[-1] if self._runs else None
            if last is not None and last[0] + last[2] == start:  # continues the last run
                last[2] += n - keep_from
            else:
                self._runs.append([start, at, n - keep_from])
        self.end += n

    def view(self, start: int, stop: int, skipped_as_zero: bool = False) -> np.ndarray:
        """Global samples [start, stop), clipped to what is held: a view where one run holds them all (valid until the
        next append), else a new array.  A skipped sample raises RuntimeError (a read the keeping rule should have
        foreseen), or reads as 0.0 with ``skipped_as_zero``, for a reader that looks only at samples at the clip
        level."""
        start, stop = max(start, self.base), min(stop, self.end)
        if stop <= start:
            return np.zeros(0, np.float32)
        k = max(0, bisect.bisect_right(self._runs, start, key=lambda r: r[0]) - 1)
        if k < len(self._runs):
            s, at, n = self._runs[k]
            if s <= start and stop <= s + n:
                return self._data.view(at + start - s, at + stop - s)
        out = np.zeros(stop - start, np.float32)
        covered = 0
        for s, at, n in self._runs[k:]:
            if s >= stop:
                break
            lo, hi = max(s, start), min(s + n, stop)
            if lo < hi:
                out[lo - start : hi - start] = self._data.view(at + lo - s, at + hi - s)
                covered += hi - lo
        if covered < stop - start and not skipped_as_zero:
            raise RuntimeError(f"samples [{start}, {stop}) were read but only {covered} of them were kept")
        return out

    def pieces(self) -> list[tuple[int, np.ndarray]]:
        """The kept samples from ``base`` on, as (global start, samples) per run."""
        return [(s, self._data.view(at, at + n)) for s, at, n in self._runs]

    def drop_before(self, index: int) -> None:
        """Forget the samples before global ``index``."""
        self.base = min(max(self.base, index), self.end)
        k = 0
        while k < len(self._runs) and self._runs[k][0] + self._runs[k][2] <= self.base:
            k += 1
        del self._runs[:k]
        if self._runs and self._runs[0][0] < self.base:  # the first run starts before base: trim it
            cut = self.base - self._runs[0][0]
            self._runs[0] = [self.base, self._runs[0][1] + cut, self._runs[0][2] - cut]
        self._data.drop_before(self._runs[0][1] if self._runs else self._data.end)
