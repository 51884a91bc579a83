"""A first-in first-out buffer of rows (samples or frames) that a stream appends to and drops from.

One preallocated array, compacted in place and grown by doubling only when it is full, so appending a hop
and dropping what no window needs any more allocates nothing in the steady state; reads are views.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Fifo"]


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
