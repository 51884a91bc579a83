"""Signal quality: silence, clipping and level of mono samples, whole recordings and sliding windows.

:class:`QualityMeter` measures a recording fed in chunks of any length (:func:`assess_quality` on one array
gives the same flags, but for a level within rounding of a threshold); :class:`WindowGate` keeps a stream's
recent per-block statistics (and the samples a window may still read: flat tops, ragged edges) and says which
quality problems keep one analysis window from being scored.  A window's flags equal :func:`assess_quality`'s
on its samples, but for a window whose RMS lies within rounding of a threshold: its sums are added block by
block, in another order, so their last bits may differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from acula.sdk.fifo import Fifo, SampleStore

__all__ = ["QualityFlags", "QualityMeter", "WindowGate", "assess_quality", "block_stats"]

LSB16 = 1.0 / 32768.0
#: A peak under two 16-bit steps is digital silence (dither of +-1 step included).
SILENCE_PEAK = 2 * LSB16
#: Clipping = flat tops: runs of at least CLIP_MIN_RUN samples at or above CLIP_LEVEL in magnitude whose
#: neighbours differ by at most CLIP_TOLERANCE.  (A smooth low-frequency wave near full scale changes by more
#: than that from sample to sample, so clean heart and lung sounds are not flagged; the test is local, so a
#: stream fed in chunks counts exactly what one call on the whole recording counts.)
CLIP_LEVEL = 0.95
CLIP_TOLERANCE = 4 * LSB16
CLIP_MIN_RUN = 3
#: A recording (or window) is ``clipped`` when at least 0.5 % of its samples (5 ms a second) sit on flat
#: tops: a cough whose peaks touch full scale a few times is still scored, a recording held against the rails
#: is not.  (It was 0.1 %: 32 samples in a 2 s window, a single clipped cough peak, gated the window.)
CLIPPED_FRACTION = 0.005
#: ``low_level``: RMS under -60 dBFS.  On a recording it is a warning (the windows are still scored); a window
#: is gated only when it is that quiet *and* ``INACTIVE_BELOW_LOUDEST_DB`` under the loudest window so far,
#: so a quiet but valid recording keeps its score and the pauses of a normal one are still gated.
LOW_LEVEL_RMS_DBFS = -60.0
INACTIVE_BELOW_LOUDEST_DB = 30.0


@dataclass(frozen=True)
class QualityFlags:
    """Signal quality of a recording or a window.  ``peak_dbfs`` / ``rms_dbfs`` are -inf for digital zero
    (``to_dict`` writes them as None, so JSON stays strict)."""

    silent: bool
    clipped: bool
    low_level: bool
    peak_dbfs: float
    rms_dbfs: float
    clipped_fraction: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(n for n in ("silent", "clipped", "low_level", "truncated") if getattr(self, n))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("peak_dbfs", "rms_dbfs"):
            d[key] = d[key] if math.isfinite(d[key]) else None
        return d




ChunkStats = tuple[float, float, float]


def chunk_stats(x: np.ndarray) -> ChunkStats:
    """(peak magnitude, sum, sum of squares) of samples of shape (n,), n >= 1, summed in float64."""
    x = np.asarray(x, dtype=np.float64)
    # max and -min instead of abs(x).max(): the same value without a temporary the size of the chunk; einsum,
    # not np.dot: a BLAS dot spawns OpenBLAS threads that spin on a loaded core (63 ms instead of 5 us for one
    # window measured here with the other core busy)
    # (the ufuncs' reduce called directly: ndarray.max / .sum go through a Python wrapper, a microsecond each
    # on the two or three calls a window makes)
    return (max(float(_MAX(x)), -float(_MIN(x))), float(_SUM(x)), float(np.einsum("i,i->", x, x)))


_MAX, _MIN, _SUM = np.maximum.reduce, np.minimum.reduce, np.add.reduce


def row_dots(a: np.ndarray) -> np.ndarray:
    """Each row's dot product with itself, shape (..., m) -> (...), float64 rows: one product per row, the same
    whatever the leading shape (one stream's rows or many streams' at once); numpy >= 2's vecdot (a BLAS dot per
    row; rows of a few hundred samples are far below the length at which OpenBLAS starts threads), else einsum."""
    return np.vecdot(a, a) if _HAS_VECDOT else np.einsum("...j,...j->...", a, a)


_HAS_VECDOT = hasattr(np, "vecdot")


def _merge(a: ChunkStats, b: ChunkStats) -> ChunkStats:
    """The statistics of two spans of samples together."""
    return max(a[0], b[0]), a[1] + b[1], a[2] + b[2]


def block_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of blocks of float64 samples, for one stream or many at once: shape (m, n_blocks, block) ->
    per block (m, 3, n_blocks) (peak magnitude, sum, sum of squares: :func:`chunk_stats` of each block) and
    over all of a row's blocks (m, 3).  Every value is a reduction along a contiguous last axis, computed the
    same way whatever ``m`` is, so a stream's statistics do not depend on how many streams shared the call."""
    m, n_blocks, _ = rows.shape
    blocks = np.empty((m, 3, n_blocks))
    _MAX(np.abs(rows), axis=2, out=blocks[:, 0])  # two calls, not four (max, min, negation, maximum): the same value
    _SUM(rows, axis=2, out=blocks[:, 1])
    blocks[:, 2] = row_dots(rows)  # one dot per block (BLAS), 2.5x faster here than the einsum it replaces
    totals = np.empty((m, 3))
    _MAX(blocks[:, 0], axis=1, out=totals[:, 0])
    _SUM(blocks[:, 1:], axis=2, out=totals[:, 1:])
    return blocks, totals


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


class QualityMeter:
    """Silence, level and clipping of mono samples in [-1, 1] fed in chunks of any length; :meth:`flags`
    equals :func:`assess_quality` on everything fed so far, but in the last bits of ``rms_dbfs``: the sums are
    added chunk by chunk (or block by block), in another order than one pass over the whole array, so a flag can
    differ only for a level within rounding of its threshold."""

    _BLOCK = 1 << 20  # bounds the temporaries of one update

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n_samples = 0
        self.n_clipped = 0
        self._peak = 0.0
        self._sum = 0.0
        self._sumsq = 0.0
        self._last: float | None = None
        self._run = 0  # length of the flat-top run ending at the last sample
        self._channels: list[QualityMeter] | None = None  # each channel's flat tops (update_channels)

    def update(self, samples: np.ndarray, stats: ChunkStats | None = None) -> None:
        """Add samples of shape (n,); ``stats``: their :func:`chunk_stats`, when the caller has them already."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if stats is not None and x.shape[0] <= self._BLOCK:
            self._update(x, stats)
            return
        for i in range(0, x.shape[0], self._BLOCK):
            self._update(x[i : i + self._BLOCK])

    def _update(self, x: np.ndarray, stats: ChunkStats | None = None) -> None:
        if not x.size:
            return
        self.n_samples += x.shape[0]
        peak, total, squares = stats or chunk_stats(x)
        self._peak = max(self._peak, peak)
        self._sum += total
        self._sumsq += squares
        if peak < CLIP_LEVEL:  # the usual case: nothing near full scale, no run to follow
            self._run, self._last = 0, float(x[-1])
            return
        mag = np.abs(x)
        high = mag >= CLIP_LEVEL
        prev = np.concatenate(([np.nan if self._last is None else self._last], x[:-1]))
        # link[i]: sample i continues the flat top that sample i - 1 is on
        link = high & (np.abs(prev) >= CLIP_LEVEL) & (np.abs(x - prev) <= CLIP_TOLERANCE)
        idx = np.arange(x.shape[0])
        last_break = np.maximum.accumulate(np.where(link, -1, idx))
        run = np.where(last_break >= 0, idx - last_break + 1, self._run + idx + 1)
        run[~high] = 0
        # a run counts all its samples once it reaches CLIP_MIN_RUN: MIN_RUN at that sample, then one each
        self.n_clipped += CLIP_MIN_RUN * int(np.count_nonzero(run == CLIP_MIN_RUN))
        self.n_clipped += int(np.count_nonzero(run > CLIP_MIN_RUN))
        self._run, self._last = int(run[-1]), float(x[-1])

    def update_channels(self, x: np.ndarray) -> None:
        """Count the flat tops of each channel of multichannel float samples, shape (n, channels), fed beside their
        mixdown (:meth:`update`): a mixdown halves a channel clipped beside a quiet one and hides its flat tops,
        so :meth:`flags` reports the worst clipped fraction of the mixdown and every channel.  Feed every chunk of
        a recording's channels, or none (mono: nothing to do).  A window's gate judges the mixdown, what the model
        hears."""
        n, n_channels = x.shape
        if n_channels < 2 or not n:
            return
        if self._channels is None:
            self._channels = [QualityMeter() for _ in range(n_channels)]
        peaks = np.maximum(_MAX(x, axis=0), -_MIN(x, axis=0))
        for c, meter in enumerate(self._channels):
            if peaks[c] < CLIP_LEVEL:  # the usual case: only the run state to carry on
                meter.n_samples += n
                meter._run, meter._last = 0, float(x[-1, c])
            else:
                meter._update(np.asarray(x[:, c], dtype=np.float64))

    @property
    def clipped_fraction(self) -> float:
        """The share of samples on flat tops: of the mixdown, or of its worst channel where that is more."""
        fractions = [m.n_clipped / m.n_samples for m in [self, *(self._channels or [])] if m.n_samples]
        return max(fractions, default=0.0)

    @property
    def rms(self) -> float:
        """RMS around the mean (a DC offset is not level)."""
        if not self.n_samples:
            return 0.0
        mean = self._sum / self.n_samples
        return math.sqrt(max(0.0, self._sumsq / self.n_samples - mean * mean))

    def flags(self, truncated: bool = False) -> QualityFlags:
        if not self.n_samples:
            from acula.sdk.audio import EmptyAudioError  # sdk.audio imports this module

            raise EmptyAudioError("audio holds no samples")
        silent = self._peak < SILENCE_PEAK
        fraction = self.clipped_fraction
        return QualityFlags(silent=silent, clipped=fraction >= CLIPPED_FRACTION,
                            low_level=(not silent) and _dbfs(self.rms) < LOW_LEVEL_RMS_DBFS,
                            peak_dbfs=_dbfs(self._peak), rms_dbfs=_dbfs(self.rms), clipped_fraction=fraction,
                            truncated=truncated)


def assess_quality(samples: np.ndarray, truncated: bool = False) -> QualityFlags:
    """Silence, clipping and level of mono samples in [-1, 1], shape (n_samples,)."""
    meter = QualityMeter()
    meter.update(samples)
    return meter.flags(truncated)


class WindowGate:
    """A stream's source samples (float64) for the windows still to come, and the gate: which quality
    problems keep a window off the scores.  Silence and clipping are absolute; low level needs a quiet window
    (< LOW_LEVEL_RMS_DBFS) that is also INACTIVE_BELOW_LOUDEST_DB under the loudest window so far, so a quiet
    but valid recording is scored.

    Windows overlap (a 2 s window every 0.48 s), so the statistics (peak, sum, sum of squares:
    :func:`chunk_stats`) of every block of ``BLOCK`` samples on a fixed grid are kept, and a window adds up the
    blocks it covers whole and reduces only its ragged edges.  At 16 kHz the model's windows start and end on
    that grid (512 samples, the front end's hop), so a window reads no sample at all; at other rates the edges
    are under a block each.  The flags are those of :func:`assess_quality` on the window's samples (its sums
    are added in another order, so the last bits of the RMS may differ); a window reaching full scale, where
    flat tops must be followed sample by sample, runs the full meter on its samples."""

    BLOCK = 512

    def __init__(self, relative: bool = False) -> None:
        #: True: low level is judged against the loudest window alone, whatever the absolute level (a level-blind
        #: bundle's gate, :mod:`sdk.level`); silence and clipping stay absolute
        self.relative = relative
        # float32, what sdk.audio.validate_samples gives a stream; only the samples a window may read again
        self.samples = SampleStore()
        self._blocks = Fifo((3,), np.float64, 256)  # per whole block b (row b): peak, sum, sum of squares
        self.reset()

    def reset(self) -> None:
        #: False: every sample is kept (windows may have ragged edges anywhere).  True, which a stream sets when
        #: its windows start and end on the block grid (at the model's rate): only the samples a window can read
        #: are kept, the chunks that reach CLIP_LEVEL (whose flat tops are counted sample by sample) and a block
        #: still open (the ragged end of a flushed stream); a quiet hop on the grid is measured and not copied.
        #: The 256 KB buffer a stream held for 4 s of samples goes, with the copy of every hop into it (7 % of a
        #: pooled stream's CPU time here).
        self.sparse = False
        self.samples.reset()
        self._blocks.reset()
        self._part = (0.0, 0.0, 0.0)  # the statistics of the block being filled, and how many samples it has
        self._part_n = 0
        self.loudest_dbfs = -math.inf  # RMS of the loudest window so far

    def append(self, x: np.ndarray) -> tuple[np.ndarray, ChunkStats | None]:
        """Keep source samples of shape (n,) (as float32: pass float32 samples, as a stream does, for flags that
        are exactly those of the samples given).  Returns their float64 copy and their statistics (None when
        empty; :func:`chunk_stats`' values, summed block by block), for :meth:`QualityMeter.update`."""
        x32 = np.asarray(x).astype(np.float32, copy=False)
        held = x32.astype(np.float64)
        n = held.shape[0]
        if not n:
            return held, None
        first = self.samples.end
        parts: list[ChunkStats] = []
        i = 0
        if self._part_n:  # complete the block the last chunk left open
            i = min(self.BLOCK - self._part_n, n)
            head = chunk_stats(held[:i])
            parts.append(head)
            self._part = _merge(self._part, head)
            self._part_n += i
            if self._part_n == self.BLOCK:
                self._blocks.append(np.array([self._part]))
                self._part, self._part_n = (0.0, 0.0, 0.0), 0
        whole = (n - i) // self.BLOCK * self.BLOCK
        if whole:
            blocks, totals = block_stats(held[i : i + whole].reshape(1, -1, self.BLOCK))
            self._blocks.append(blocks[0].T)
            parts.append((float(totals[0, 0]), float(totals[0, 1]), float(totals[0, 2])))
            i += whole
        if i < n:  # open the next block
            self._part, self._part_n = chunk_stats(held[i:]), n - i
            parts.append(self._part)
        total = parts[0]
        for p in parts[1:]:
            total = _merge(total, p)
        # sparse: a quiet chunk keeps only its samples in the block it leaves open (none on the grid)
        keep_from = 0 if not self.sparse or total[0] >= CLIP_LEVEL else max(0, (first + n) // self.BLOCK * self.BLOCK
                                                                            - first)
        self.samples.append(x32, keep_from)
        return held, total

    @property
    def block_open(self) -> bool:
        """Whether the last samples appended left a block part-filled (the next append is off the block grid)."""
        return self._part_n > 0

    def append_blocks(self, x: np.ndarray, blocks: np.ndarray, totals: np.ndarray
                      ) -> tuple[np.ndarray, ChunkStats]:
        """:meth:`append` for samples whose statistics :func:`block_stats` has computed already (for many streams
        at once, :class:`sdk.pool.StreamPool`): ``x`` of shape (n,), a whole number of blocks, appended where a
        block starts (no block open); ``blocks`` (3, n // BLOCK) and ``totals`` (3,) are one row of its output.
        Keeps and returns what :meth:`append` would (``x`` itself as the float64 copy)."""
        if self._part_n or x.shape[0] != blocks.shape[1] * self.BLOCK:
            raise ValueError("append_blocks takes whole blocks appended on the block grid")
        self.samples.append(x, 0 if not self.sparse or totals[0] >= CLIP_LEVEL else x.shape[0])
        self._blocks.append(blocks.T)
        return x, (float(totals[0]), float(totals[1]), float(totals[2]))

    def drop_before(self, index: int) -> None:
        """Forget the samples before global sample ``index`` (and the blocks that end by then)."""
        self.samples.drop_before(index)
        self._blocks.drop_before(index // self.BLOCK)

    def problems(self, start: int, end: int) -> tuple[str, ...]:
        """Problems of the window of global source samples [start, end): ``silent``, ``clipped``, ``low_level``
        (as :func:`assess_quality` on those samples would find), or ``too_short`` when none is held."""
        held = self.samples
        start, end = max(start, held.base), min(end, held.end)
        if end <= start:
            return ("too_short",)
        block = self.BLOCK
        a = max(-(-start // block), self._blocks.base)  # blocks [a, b) lie inside the window whole
        b = min(end // block, self._blocks.end)
        if a >= b:
            seg = held.view(start, end)
            return self._judge(end - start, *chunk_stats(seg), lambda: seg)
        inner = self._blocks.view(a, b)
        sums = _SUM(inner, axis=0)  # the three columns in one call (the peaks' sum unread)
        stats = float(_MAX(inner[:, 0])), float(sums[1]), float(sums[2])
        if a * block > start:  # ragged edges: only at rates other than the model's
            stats = _merge(stats, chunk_stats(held.view(start, a * block)))
        if b * block < end:
            stats = _merge(stats, chunk_stats(held.view(b * block, end)))
        return self._judge(end - start, *stats, lambda: held.view(start, end, skipped_as_zero=True))

    def _judge(self, n: int, peak: float, total: float, squares: float,
               samples: Callable[[], np.ndarray]) -> tuple[str, ...]:
        """The problems of ``n`` samples from their statistics; ``samples()`` gives the samples themselves, read
        only where flat tops must be counted (rare), where a sample not kept reads as 0.0: it was under
        CLIP_LEVEL, so it neither counts nor continues a flat top, as 0.0 does not."""
        mean = total / n
        rms_dbfs = _dbfs(math.sqrt(max(0.0, squares / n - mean * mean)))
        silent = peak < SILENCE_PEAK
        clipped = peak >= CLIP_LEVEL and assess_quality(samples()).clipped
        low = (not silent) and (self.relative or rms_dbfs < LOW_LEVEL_RMS_DBFS)
        self.loudest_dbfs = max(self.loudest_dbfs, rms_dbfs)
        inactive = low and rms_dbfs < self.loudest_dbfs - INACTIVE_BELOW_LOUDEST_DB
        if not (silent or clipped or inactive):  # the usual window
            return ()
        return tuple(p for p, on in (("silent", silent), ("clipped", clipped), ("low_level", inactive)) if on)
