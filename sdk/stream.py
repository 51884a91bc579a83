"""One streaming session: validate -> resample -> log-mel -> windows -> quality gate -> scores -> events.

Each stage is its own object, testable alone: :func:`sdk.audio.validate_samples`,
:class:`sdk.resample.StreamingResampler`, :class:`sdk.frontend.StreamingFrontend`, :class:`Windower`,
:class:`sdk.quality.WindowGate` and :class:`sdk.quality.QualityMeter`, the model's runtime and
:class:`sdk.scoring.LabelScorer`, :class:`sdk.screening.EventDetector`.  :class:`Stream` wires them together
and holds the session's state; the :class:`sdk.model.Model` it scores with is shared and stateless.

A hop is split in two so that :class:`sdk.pool.StreamPool` can batch many streams' windows into one runtime
call: :meth:`Stream._prepare` takes samples and returns the ready windows, :meth:`Stream._complete` scores
them from the runtime's outputs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from acula.sdk.audio import (
    MAX_FLOAT_PEAK,
    AudioError,
    AudioTypeError,
    NonFiniteAudioError,
    StreamEndedError,
    number_array,
    validate_samples,
)
from acula.sdk.fifo import Fifo
from acula.sdk.level import LevelShift
from acula.sdk.quality import QualityFlags, QualityMeter, WindowGate, block_stats
from acula.sdk.results import WindowResult
from acula.sdk.scoring import sigmoid
from acula.sdk.screening import Event, EventDetector, frame_power

if TYPE_CHECKING:
    from acula.sdk.model import Model

__all__ = ["HeldBlocks", "Stream", "Windower", "stage_whole_blocks"]

_MAX = np.maximum.reduce


class Windower:
    """Log-mel frames in, analysis windows out: window k covers frames [k * hop_frames, k * hop_frames +
    window_frames).  Windows are views of one frame buffer, shape (window_frames, n_mels), float32; with a
    :class:`sdk.level.LevelShift`, new arrays shifted by the running level at each window's end."""

    def __init__(self, n_mels: int, window_frames: int, hop_frames: int, level: LevelShift | None = None) -> None:
        self.window_frames, self.hop_frames, self.level = window_frames, hop_frames, level
        self.frames = Fifo((n_mels,), np.float32, 4 * window_frames)
        # each frame's loudest cell, for the running level (the frames' global indices)
        self.peaks = None if level is None else Fifo((), np.float32, 4 * max(window_frames, level.history_frames))
        self.reset()

    def reset(self) -> None:
        self.frames.reset()
        if self.peaks is not None:
            self.peaks.reset()
        self.n_windows = 0  # windows handed out so far

    def append(self, frames: np.ndarray, peaks: np.ndarray | None = None) -> None:
        """Frames (n, n_mels); ``peaks``: their loudest cells when the caller has them already (a pool computes
        them for all its streams' frames at once)."""
        if frames.shape[0]:
            self.frames.append(frames)
            if self.peaks is not None:
                self.peaks.append(_MAX(frames, axis=1) if peaks is None else peaks)

    def _level(self, end: int) -> float:
        """The running level at frame ``end``: the loudest cell of the ``history_frames`` frames up to it."""
        assert self.level is not None and self.peaks is not None
        return float(_MAX(self.peaks.view(end - self.level.history_frames, end)))

    def ready_raw(self) -> tuple[list[np.ndarray], list[float]]:
        """The complete windows not handed out yet, unshifted (views valid until the next append), and, with a
        level shift, each one's running level (else an empty list): what :meth:`LevelShift.shift_batch` writes
        into a model's input buffer."""
        windows, levels = [], []
        k = self.n_windows
        while k * self.hop_frames + self.window_frames <= self.frames.end:
            start = k * self.hop_frames
            windows.append(self.frames.view(start, start + self.window_frames))
            if self.level is not None:
                levels.append(self._level(start + self.window_frames))
            k += 1
        self.n_windows = k
        return windows, levels

    def ready(self) -> list[np.ndarray]:
        """The complete windows not handed out yet, shifted when the windower has a level shift (views valid
        until the next append; shifted windows are new arrays)."""
        windows, levels = self.ready_raw()
        return windows if self.level is None else list(self._shifted(windows, levels))

    def _shifted(self, windows: list[np.ndarray], levels: list[float]) -> np.ndarray:
        assert self.level is not None
        out = np.empty((len(windows), self.window_frames, self.frames.held().shape[1]), np.float32)
        return self.level.shift_batch(windows, levels, out)

    def tiled_raw(self) -> tuple[np.ndarray, float | None] | None:
        """For a recording shorter than one window (none handed out): its frames tiled to one window, and its
        running level (None without a level shift)."""
        held = self.frames.held()
        if self.n_windows or not held.shape[0]:
            return None
        self.n_windows = 1
        window = np.tile(held, (-(-self.window_frames // held.shape[0]), 1))[: self.window_frames]
        return window, None if self.level is None else self._level(self.frames.end)

    def tiled(self) -> np.ndarray | None:
        """:meth:`tiled_raw`'s window, shifted when the windower has a level shift."""
        raw = self.tiled_raw()
        if raw is None:
            return None
        window, level = raw
        return window if level is None else self._shifted([window], [level])[0]

    def release(self) -> None:
        """Drop the frames (and frame levels) no future window needs."""
        self.frames.drop_before(self.n_windows * self.hop_frames)
        if self.level is not None and self.peaks is not None:
            self.peaks.drop_before(self.n_windows * self.hop_frames + self.window_frames - self.level.history_frames)


class HeldBlocks:
    """Blocks of one stream held until its next window can complete (:meth:`Stream.samples_until_window`, or
    :meth:`Stream.frames_until_window` for feature frames), then handed over as one array: a live source's small
    blocks (a microphone's 0.1 s, a stethoscope's 256-sample frames) cost one ``accept`` a window instead of one a
    block, with every window at the same block.  Used by :class:`sdk.capture.LiveCapture` and ``acula bridge
    listen``."""

    def __init__(self, features: bool = False) -> None:
        self.features = features
        self.parts: list[np.ndarray] = []
        self.n = 0  # samples (or frames) held

    def add(self, part: np.ndarray, stream: Stream) -> np.ndarray | None:
        """Hold ``part``; returns everything held, as one array, once it completes ``stream``'s next window (the
        caller feeds it), else None."""
        self.parts.append(part)
        self.n += part.shape[0]
        need = stream.frames_until_window() if self.features else stream.samples_until_window()
        return self.take() if self.n >= need else None

    def take(self) -> np.ndarray | None:
        """Everything held, as one array (None when nothing is), and nothing held after."""
        if not self.parts:
            return None
        held = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
        self.parts, self.n = [], 0
        return held


class _Held:
    """``with``: take the lock without waiting, or raise (a Stream takes one caller at a time)."""

    __slots__ = ("lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            raise RuntimeError("this Stream is in use by another thread; a Stream holds one session's state and "
                               "takes one caller at a time: give each thread its own model.stream()")

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


@dataclass
class Pending:
    """Windows of one stream waiting for the runtime: unshifted (window_frames, n_mels) log-mel arrays, their
    16 kHz spans and, for a model with a level shift, each one's running level (:meth:`Stream._inputs` writes the
    model's input from them)."""

    windows: list[np.ndarray] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    padded: bool = False
    levels: list[float] = field(default_factory=list)
    level: LevelShift | None = None


class Stream:
    """One session: ``accept(chunk, sample_rate_hz)`` takes any length and returns the new windows.

    Threading model: a :class:`Model` holds read-only weights and may be shared by any number of threads; a
    Stream holds one session's state (buffers, window count, open event) and takes one caller at a time.  Give
    each thread its own ``model.stream()``.  A Stream entered while another thread is inside it raises
    RuntimeError rather than interleaving two callers' samples into misordered windows.

    Chunks follow :func:`sdk.audio.validate_samples`; the first non-empty chunk fixes the rate and the
    channel count.  Signal quality is measured on the samples as given, before resampling smears clipping.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._model_rate = model.sample_rate_hz  # the stream's one read of it (a property: a call each time)
        self.detector = EventDetector(model.screening, sample_rate_hz=self._model_rate)
        self.windower = Windower(model.frontend.config.n_mels, model.window_frames, model.hop_frames, model.level)
        self.gate = WindowGate(relative=model.level is not None and model.level.gate == "relative")
        self._held = _Held(threading.Lock())
        self._in = np.empty((1, model.window_frames, model.frontend.config.n_mels), np.float32)
        start, end = self._window_span(1)
        #: every window starts and ends on the quality gate's block grid at the model's rate (the default's: hops
        #: of 15 blocks, windows of 63), so a stream at that rate lets its gate keep only the samples it may read
        self._on_block_grid = start % WindowGate.BLOCK == 0 and end % WindowGate.BLOCK == 0
        self.reset()

    def _exclusive(self) -> _Held:
        """Hold the stream for one caller (a context manager; a class, not a generator: a hop enters it once)."""
        return self._held

    def reset(self) -> None:
        with self._exclusive():
            self._rate: int | None = None
            self._n_channels: int | None = None
            self._resampler: Any = None  # sdk.resample.StreamingResampler when the stream's rate is not the model's
            self._fe = self.model.frontend.stream()
            self.windower.reset()
            self.gate.reset()
            self._meter = QualityMeter()
            self.n_samples_16k = 0
            self.n_windows = 0
            self.events: list[Event] = []
            self.detector.reset()
            self._features_only = False
            self._flushed = False  # flush() ends the input; accepting more needs reset()

    @property
    def n_channels(self) -> int | None:
        return self._n_channels

    def samples_until_window(self) -> int:
        """Source samples (at the stream's rate; the model's before the first chunk) still to come before the next
        window can complete, at least 1.  A live source that buffers its blocks and feeds this many at once gets
        each window at the same sample as feeding block by block, in one ``accept`` a window instead of one a block
        (:class:`sdk.capture.LiveCapture`: 0.1 s blocks fed one by one cost about twice the CPU here,
        ``benchmarks.capture_cpu``).  At another rate than the model's, the resampler's delay may leave the window a
        few samples short: ask again."""
        need = self._window_span(self.windower.n_windows)[1] - self.n_samples_16k
        return max(1, self._to_source(need, round_up=True))

    def frames_until_window(self) -> int:
        """Feature mode's :meth:`samples_until_window`: log-mel frames still to come before the next window can
        complete, at least 1 (what :meth:`accept_features` may be fed at once for one call a window)."""
        w = self.windower
        return max(1, w.n_windows * w.hop_frames + w.window_frames - w.frames.end)

    def accept(self, chunk: np.ndarray, sample_rate_hz: int) -> list[WindowResult]:
        with self._exclusive():
            return self._score(self._prepare(chunk, sample_rate_hz))

    def _check_mode(self, features: bool) -> None:
        """Refuse input after :meth:`flush` (the end of input: its padded tail and closed event would sit in the
        middle of a recording), and samples in a stream fed features or features in one fed samples (their
        windows would mix two front ends, and the quality gate would judge windows it has no samples of)."""
        if self._flushed:
            raise StreamEndedError("this stream was flushed (end of input); call reset() to start a new recording "
                                   "on it, or make a new stream")
        if features and self._rate is not None:
            raise AudioError("this stream was fed samples; log-mel features need a stream of their own")
        if not features and self._features_only:
            raise AudioError("this stream was fed log-mel features; samples need a stream of their own")

    def accept_features(self, frames: np.ndarray) -> list[WindowResult]:
        """Feature mode: log-mel frames computed on the device (shape (n, n_mels), normalised), e.g. from the
        firmware bridge.  There are no samples, so the signal-quality gate cannot run: windows are marked
        ``features_only`` and still scored."""
        with self._exclusive():
            self._check_mode(features=True)
            arr = number_array(frames, "features")
            if arr.dtype.kind not in "iuf":  # complex, bool, strings, objects: not log-mel values
                raise AudioTypeError(f"features must be real numbers, got an array of {arr.dtype}")
            frames = arr.astype(np.float32, copy=False)
            n_mels = self.model.frontend.config.n_mels
            if frames.ndim != 2 or frames.shape[1] != n_mels:
                raise AudioError(f"features must have shape (n_frames, {n_mels}), got {frames.shape}")
            if not np.all(np.isfinite(frames)):
                raise NonFiniteAudioError("features hold NaN or infinite values")
            if not frames.shape[0]:
                return []
            self._features_only = True
            self.n_samples_16k += frames.shape[0] * self.model.frontend.config.hop_length
            self.windower.append(frames)
            return self._score(self._pending())

    def flush(self) -> list[WindowResult]:
        """End of input: emit what the resampler holds, a tiled window for a clip shorter than one
        window, and any open event."""
        with self._exclusive():
            out = self._score(self._prepare_flush())
            self._end_input()
            return out

    def _end_input(self) -> None:
        """After the last windows are scored (here or by a pool): close any open event, and take no more input
        until :meth:`reset`."""
        self.events += self.detector.flush()
        self._flushed = True

    def quality(self) -> QualityFlags | None:
        """Quality of every sample accepted so far (silence, clipping, level); None before the first sample and
        in feature mode, where there are no samples to measure."""
        with self._exclusive():
            return self._meter.flags() if self._meter.n_samples else None

    # -- the two halves of a hop (StreamPool calls them directly, holding _exclusive) --

    def _validate(self, chunk: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        self._check_mode(features=False)
        valid = validate_samples(chunk, sample_rate_hz, self._n_channels)
        mono, rate, n_channels = valid.mono, valid.sample_rate_hz, valid.n_channels
        if self._rate is None:
            if not mono.size:  # an empty chunk fixes nothing: the first non-empty one fixes rate and channels
                return mono
            self._rate = rate
            self.gate.sparse = rate == self._model_rate and self._on_block_grid
            if rate != self._model_rate:
                from acula.sdk.resample import StreamingResampler  # only streams at another rate need it

                self._resampler = StreamingResampler(rate, self._model_rate)
        elif rate != self._rate:
            raise AudioError(f"this stream runs at {self._rate} Hz; got a chunk at {rate} Hz "
                             "(start a new stream for a new rate)")
        if mono.size and self._n_channels is None:
            self._n_channels = n_channels
        if valid.channels is not None:  # each channel's flat tops, which the mixdown can hide
            self._meter.update_channels(valid.channels)
        return mono

    def _prepare(self, chunk: np.ndarray, sample_rate_hz: int) -> Pending:
        """Validate, measure and buffer a chunk; return the windows it completes."""
        self._emit(self._take_and_stage(chunk, sample_rate_hz))
        return self._pending()

    def _take_and_stage(self, chunk: np.ndarray, sample_rate_hz: int) -> int:
        """Validate, measure and stage a chunk for the front end; how many frames it completes.  One pass of
        :func:`stage_whole_blocks` where :meth:`_takes_whole_blocks` allows, else :meth:`_take` and :meth:`_stage`
        (which raise the chunk's error)."""
        n_frames = stage_whole_blocks([(self, chunk)])[0] if self._takes_whole_blocks(chunk, sample_rate_hz) else None
        return self._stage(self._take(chunk, sample_rate_hz)) if n_frames is None else n_frames

    def _takes_whole_blocks(self, chunk: Any, sample_rate_hz: Any) -> bool:
        """Whether :func:`stage_whole_blocks` may take this chunk in place of :meth:`_take` and :meth:`_stage`:
        a float32 mono array at the stream's own rate, which is the model's (the stream's first chunk has been
        validated in full), a whole number of quality blocks and envelope frames, and both grids at a boundary
        (a stream fed one hop at a time stays there).  Anything else takes the general path."""
        return (type(chunk) is np.ndarray and chunk.dtype == np.float32 and chunk.ndim == 1 and not self._flushed
                and type(sample_rate_hz) is int and sample_rate_hz == self._rate == self._model_rate
                and self._n_channels == 1 and chunk.shape[0] > 0 and chunk.shape[0] % WindowGate.BLOCK == 0
                and not self.gate.block_open and self.detector.on_frame_grid(chunk.shape[0]))

    def _take(self, chunk: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Validate and measure a chunk; its samples at the model's rate (resampled when the stream is not)."""
        x = self._validate(chunk, sample_rate_hz)
        if x.size:
            self._meter.update(*self.gate.append(x))  # the samples in float64 and their statistics
        if self._resampler is not None:
            x = self._resampler.accept(x)
        return x

    def _prepare_flush(self) -> Pending:
        if self._resampler is not None:
            self._feed(self._resampler.flush())
        pending = self._pending()
        tiled = self.windower.tiled_raw()
        if tiled is not None:
            pending.windows.append(tiled[0])
            if tiled[1] is not None:
                pending.levels.append(tiled[1])
            pending.spans.append((0, self.n_samples_16k))
            pending.padded = True
        return pending

    def _feed(self, x: np.ndarray) -> None:
        self._emit(self._stage(x))

    def _emit(self, n_frames: int) -> None:
        """The staged frames' log-mel, computed here and handed to the windower."""
        self._add_frames(self._fe.compute(n_frames), n_frames)

    def _stage(self, x: np.ndarray, power: np.ndarray | None = None) -> int:
        """Take model-rate samples up to the front end; returns how many frames they complete.  ``power``: their
        envelope frames' power when :func:`stage_whole_blocks` computed it already."""
        self.n_samples_16k += x.size
        if power is None:
            self.detector.accept_samples(x)  # the energy envelope that splits an event into single coughs
        else:
            self.detector.accept_power(power)
        return self._fe.stage(x)

    def _add_frames(self, logmel: np.ndarray, n_frames: int, peaks: np.ndarray | None = None) -> None:
        """The staged frames' log-mel (computed here or, batched with other streams', by StreamPool, which
        passes their loudest cells, ``peaks``, too)."""
        self._fe.commit(n_frames)
        self.windower.append(logmel, peaks)

    def _pending(self) -> Pending:
        first = self.windower.n_windows
        windows, levels = self.windower.ready_raw()
        return Pending(windows, [self._window_span(k) for k in range(first, first + len(windows))], False, levels,
                       self.windower.level)

    def _inputs(self, pending: Pending) -> np.ndarray | list[np.ndarray]:
        """The model's input for ``pending``'s windows: the windows themselves, or, with a level shift, the
        windows shifted into the stream's own input buffer (valid until its next hop; no allocation once it
        has grown to a hop's windows)."""
        if pending.level is None:
            return pending.windows
        n = len(pending.windows)
        if self._in.shape[0] < n:
            self._in = np.empty((n, *self._in.shape[1:]), np.float32)
        return pending.level.shift_batch(pending.windows, pending.levels, self._in[:n])

    def _window_span(self, k: int) -> tuple[int, int]:
        cfg = self.model.frontend.config
        start = k * self.model.hop_frames * cfg.hop_length
        end = (k * self.model.hop_frames + self.model.window_frames - 1) * cfg.hop_length + cfg.n_fft
        return start, end

    def _to_source(self, n_16k: int, round_up: bool = False) -> int:
        """Source-rate sample index of a 16 kHz one (the resampler is delay-compensated)."""
        rate, model_rate = self._rate, self._model_rate
        if rate is None or rate == model_rate:  # the usual stream: the model's own rate, the same index
            return n_16k
        return -(-n_16k * rate // model_rate) if round_up else n_16k * rate // model_rate

    def _score(self, pending: Pending) -> list[WindowResult]:
        if not pending.windows:
            return []
        emb, heads = self.model.run_windows(self._inputs(pending))
        return self._complete(pending, emb, heads)

    def _complete(self, pending: Pending, emb: np.ndarray, heads: np.ndarray,
                  logits: dict[str, np.ndarray] | None = None) -> list[WindowResult]:
        """Gate, score and detect events for the pending windows given the runtime's outputs, shapes
        (n_windows, embed_dim) and (n_windows, n_heads), and their label logits when the caller scored them
        already (:class:`sdk.pool.StreamPool`, for all its streams at once); then drop what no future window
        needs."""
        if logits is None:
            logits = self.model.scorer(emb) if len(pending.windows) else {}
        rate, cough = self._model_rate, self.model.cough_head
        out = []
        for i, (s, e) in enumerate(pending.spans):
            problems = () if self._features_only else self.gate.problems(self._to_source(s),
                                                                         self._to_source(e, round_up=True))
            p = None if cough is None or problems else float(sigmoid(heads[i, cough]))
            w = WindowResult(self.n_windows, round(s / rate, 4), round(e / rate, 4), emb[i], p,
                             {k: v[i] for k, v in logits.items()}, problems, pending.padded)
            self.n_windows += 1
            self.events += self.detector.update(w.start_s, w.end_s, p)
            out.append(w)
        self.windower.release()
        self.gate.drop_before(self._to_source(self._window_span(self.windower.n_windows)[0]))
        return out


def stage_whole_blocks(items: list[tuple[Stream, np.ndarray]]) -> list[int | None]:
    """:meth:`Stream._take` and :meth:`Stream._stage` for chunks of one length that
    :meth:`Stream._takes_whole_blocks` accepts, measured for all the streams at once (the quality blocks'
    statistics and the cough envelope's frame power: :func:`sdk.quality.block_stats`,
    :func:`sdk.screening.frame_power`, each row's values the same as its stream's own path computes).  Returns
    per stream the frames its front end can now compute, or None, the stream untouched, where the chunk's peak
    is NaN, infinite or over :data:`sdk.audio.MAX_FLOAT_PEAK`: its general path raises the error then."""
    n_streams, n = len(items), items[0][1].shape[0]
    x = np.empty((n_streams, n))
    for j, (_, chunk) in enumerate(items):
        x[j] = chunk  # float32 -> float64, exact: the gate's and the envelope's samples
    blocks, totals = block_stats(x.reshape(n_streams, -1, WindowGate.BLOCK))
    frame = items[0][0].detector.frame_samples
    power = frame_power(x.reshape(n_streams, -1, frame), frame)
    out: list[int | None] = []
    for j, (stream, chunk) in enumerate(items):
        if not totals[j, 0] <= MAX_FLOAT_PEAK:
            out.append(None)
            continue
        stream._meter.update(*stream.gate.append_blocks(x[j], blocks[j], totals[j]))
        out.append(stream._stage(chunk, power[j]))
    return out
