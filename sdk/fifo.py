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
        return self.base + len(self)

    def append(self, rows: np.ndarray) -> np.ndarray:
        """Copy rows in (cast to the buffer's dtype); returns the view of them inside the buffer."""
        n, held = rows.shape[0], len(self)
        if self._stop + n > self._buf.shape[0]:
            if held + n > self._buf.shape[0]:
                grown = np.empty((max(held + n, 2 * self._buf.shape[0]), *self._buf.shape[1:]), self._buf.dtype)
                grown[:held] = self._buf[self._start : self._stop]
                self._buf = grown
            else:
                self._buf[:held] = self._buf[self._start : self._stop]
            self._start, self._stop = 0, held
        out = self._buf[self._stop : self._stop + n]
        out[...] = rows
        self._stop += n
        return out

    def view(self, start: int, stop: int) -> np.ndarray:
        """Global rows [start, stop), clipped to what is held (a view, valid until the next append)."""
        a = self._start + min(max(0, start - self.base), len(self))
        b = self._start + min(max(0, stop - self.base), len(self))
        return self._buf[a:max(a, b)]

    def held(self) -> np.ndarray:
        return self._buf[self._start : self._stop]

    def drop_before(self, index: int) -> None:
        """Forget the rows before global ``index``."""
        n = min(index - self.base, len(self))
        if n > 0:
            self._start += n
            self.base += n
