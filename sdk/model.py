"""The on-device model: a verified bundle, a runtime backend, and per-session streams.

    model = sdk.load("path/to/bundle", backend="onnxruntime", precision="int8")
    result = model.screen(samples, sample_rate_hz=16000)      # events, window scores, quality flags
    stream = model.stream(); stream.accept(chunk, 16000)       # same results, chunk by chunk

A Model holds weights only and is shared, by any number of threads; each Stream holds one
session's state and serves one thread.  Whole-recording calls run a Stream over the recording,
so both give identical results.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sdk.audio import (
    INACTIVE_BELOW_LOUDEST_DB,
    AudioError,
    NonFiniteAudioError,
    QualityFlags,
    QualityMeter,
    assess_quality,
    validate_samples,
)
from sdk.bundle import Bundle, BundleError, read_bundle
from sdk.frontend import LogMelFrontend
from sdk.resample import StreamingResampler
from sdk.runtimes import make_backend
from sdk.screening import Event, EventDetector, ScreeningConfig
from sdk.text import CustomLabels, joint_text

__all__ = ["Model", "Stream", "WindowResult", "ScreenResult", "ScoreResult", "EmbedResult", "load",
           "available_models"]

PACKAGE_MODELS = "sdk.models"


def available_models() -> list[str]:
    """Names of the bundles shipped inside the package."""
    try:
        root = resources.files(PACKAGE_MODELS)
    except ModuleNotFoundError:
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def _resolve(bundle: str | Path) -> Path:
    if str(bundle) in available_models():
        return Path(str(resources.files(PACKAGE_MODELS).joinpath(str(bundle))))
    path = Path(bundle)
    if not path.exists():
        names = available_models()
        hint = f"packaged: {names}" if names else "no bundle is packaged in this install"
        raise BundleError(f"no bundle named or at {bundle!r} ({hint}); export one with 'acula export'")
    return path


def load(bundle: str | Path = "default", backend: str = "onnxruntime", precision: str = "int8",
         n_threads: int = 1, sha256: str | None = None, public_key: Any = None) -> Model:
    """Load and verify a bundle (a packaged name or a path) on one backend and precision.  ``sha256``: the
    manifest digest the bundle must have (``acula info`` prints it; packaged bundles are pinned anyway);
    ``public_key``: an Ed25519 public key its ``manifest.sig`` must verify against (needs cryptography)."""
    return Model(read_bundle(_resolve(bundle), sha256, public_key), backend, precision, n_threads)


def _as_dict(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, dict):
        return {k: _as_dict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_as_dict(v) for v in x]
    return x


@dataclass
class WindowResult:
    index: int
    start_s: float
    end_s: float
    embedding: np.ndarray
    cough_probability: float | None  # None: gated out by signal quality
    label_logits: dict[str, np.ndarray]
    problems: tuple[str, ...] = ()  # quality problems that gate the window out (silent, clipped, low_level)
    padded: bool = False  # the recording is shorter than one window: this one is a tiled copy of it

    def to_dict(self, with_embedding: bool = False) -> dict[str, Any]:
        d = {"index": self.index, "start_s": self.start_s, "end_s": self.end_s,
             "cough_probability": self.cough_probability, "problems": list(self.problems), "padded": self.padded}
        if with_embedding:
            d["embedding"] = self.embedding.tolist()
        return d


@dataclass
class ScreenResult:
    duration_s: float
    events: list[Event]
    windows: list[WindowResult]
    quality: QualityFlags | None
    coughs_per_hour: float

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this is less than a full reading: the recording's quality flags, ``too_short`` (shorter than one
        window: scored on a tiled copy, or not at all when empty) and ``not_scored`` (the quality gate left no
        window scored)."""
        return _result_problems(self.quality, self.windows)

    @property
    def ok(self) -> bool:
        return not self.problems

    def peak_window(self) -> WindowResult | None:
        """The window with the highest cough probability; None when the quality gate left none scored."""
        scored = [w for w in self.windows if w.cough_probability is not None]
        return max(scored, key=lambda w: float(w.cough_probability or 0.0), default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: no NaN or infinity anywhere (a level of digital zero is None, with ``silent`` set)."""
        return {"duration_s": self.duration_s, "n_events": len(self.events), "coughs_per_hour": self.coughs_per_hour,
                "events": _as_dict(self.events), "ok": self.ok, "problems": list(self.problems),
                "quality": None if self.quality is None else self.quality.to_dict(),
                "poor_signal": self.quality is not None and not self.quality.ok,
                "n_windows": len(self.windows), "n_scored_windows": sum(not w.problems for w in self.windows),
                "windows": [w.to_dict() for w in self.windows]}


def _result_problems(quality: QualityFlags | None, windows: list[WindowResult]) -> tuple[str, ...]:
    problems = list(quality.problems) if quality is not None else []
    if not windows or any(w.padded for w in windows):
        problems.append("too_short")
    if windows and all(w.problems for w in windows):
        problems.append("not_scored")
    return tuple(problems)


@dataclass
class ScoreResult:
    label_set: str
    labels: list[str]
    probabilities: dict[str, float] | None  # None when no window passed the quality gate
    window_probabilities: np.ndarray  # (n_usable_windows, n_labels)
    n_windows: int
    problems: tuple[str, ...] = field(default_factory=tuple)  # as ScreenResult.problems
    quality: QualityFlags | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label_set": self.label_set, "labels": self.labels, "probabilities": self.probabilities,
                "n_windows": self.n_windows, "n_usable_windows": int(self.window_probabilities.shape[0]),
                "ok": not self.problems, "problems": list(self.problems),
                "quality": None if self.quality is None else self.quality.to_dict()}


@dataclass
class EmbedResult:
    times_s: np.ndarray  # (n_windows, 2) start and end
    embeddings: np.ndarray  # (n_windows, embed_dim)

    def to_dict(self) -> dict[str, Any]:
        return {"times_s": self.times_s.tolist(), "embeddings": self.embeddings.tolist()}


class Model:
    def __init__(self, bundle: Bundle, backend: str = "onnxruntime", precision: str = "int8",
                 n_threads: int = 1) -> None:
        self.bundle = bundle
        m = bundle.manifest
        name, _ = bundle.model_file(backend, precision)
        self.backend_name, self.precision = backend, precision
        self.backend = make_backend(backend, bundle.files[name], n_threads)
        # an onnxruntime session may be run from many threads at once; a TFLite interpreter may not
        self._backend_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if backend == "onnxruntime" else threading.Lock())
        self.frontend = LogMelFrontend(bundle.frontend)
        self.window_frames, self.hop_frames = int(m["window_frames"]), int(m["hop_frames"])
        bank = m["prompt_bank"]
        self.prompts = bundle.array(bank["file"]).astype(np.float32)
        self.label_sets: dict[str, list[str]] = {k: list(v) for k, v in bank["label_sets"].items()}
        self._prompt_index = {k: [np.asarray(idx) for idx in v.values()] for k, v in bank["label_sets"].items()}
        cal = m.get("calibration", {})
        self.logit_scale = float(cal.get("logit_scale", 14.3))
        temperature = cal.get("temperature", 1.0)
        #: per label set: divides the clip- and window-level logits (fitted on held-out data at export)
        self.temperature = {k: float(temperature.get(k, 1.0) if isinstance(temperature, dict) else temperature)
                            for k in self.label_sets}
        self.cough_head = m.get("heads", {}).get("cough", {}).get("index")
        self.screening = ScreeningConfig.from_manifest(m["screening"]) if "screening" in m else ScreeningConfig()

    @property
    def sample_rate_hz(self) -> int:
        return self.frontend.config.sample_rate_hz

    def stream(self) -> Stream:
        return Stream(self)

    def search(self, audio_or_embedding: np.ndarray, index: Any, k: int = 5, sample_rate_hz: int = 16000
               ) -> list[Any]:
        """The k most similar references in a :class:`sdk.search.CaseIndex` to a recording or an embedding."""
        x = np.asarray(audio_or_embedding)
        if x.ndim == 1 and x.dtype.kind == "f" and x.shape[0] == int(self.bundle.manifest["embed_dim"]):
            query = x.astype(np.float32)
        else:
            emb = self.embed(x, sample_rate_hz).embeddings
            if emb.shape[0] == 0:
                raise AudioError("the recording is too short for one analysis window")
            query = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).mean(0)
        return list(index.search(query, k))

    def embed_text(self, prompts: list[str], text_bundle: str | Path | None = None) -> np.ndarray:
        """Prompts -> (n, embed_dim) unit rows in this bundle's joint space, on the device (torch-free): the text
        encoder of a text bundle (``acula export-text``; ``text_bundle`` or ``$ACULA_TEXT_BUNDLE``), then its
        projection for this bundle (see :mod:`sdk.text`)."""
        return joint_text(self.bundle, text_bundle)(prompts)

    def _label_logits(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        e = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
        sims = e @ self.prompts.T * self.logit_scale
        return {name: np.stack([sims[:, idx].mean(1) for idx in groups], 1) / self.temperature[name]
                for name, groups in self._prompt_index.items()}

    def run_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One window at a time: a batched matmul rounds differently, and a stream must give
        bit-identical results whatever the chunking (on a device a hop yields one window anyway)."""
        with self._backend_lock:
            outs = [self.backend(w[None]) for w in windows]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def _whole(self, audio: np.ndarray, sample_rate_hz: int) -> tuple[Stream, list[WindowResult], list[Event]]:
        stream = self.stream()
        windows = stream.accept(audio, sample_rate_hz)
        windows += stream.flush()
        return stream, windows, stream.events

    def embed(self, audio: np.ndarray, sample_rate_hz: int) -> EmbedResult:
        _, windows, _ = self._whole(audio, sample_rate_hz)
        d = int(self.bundle.manifest["embed_dim"])
        return EmbedResult(np.array([[w.start_s, w.end_s] for w in windows]).reshape(-1, 2),
                           np.stack([w.embedding for w in windows]) if windows else np.zeros((0, d), np.float32))

    def score(self, audio: np.ndarray, sample_rate_hz: int, label_set: str = "lung",
              labels: dict[str, list[str]] | None = None, text_bundle: str | Path | None = None) -> ScoreResult:
        """Clip probabilities over a packaged label set, or over custom ``labels`` ({label: [prompt, ...]}, at
        least two labels; embedded by :meth:`embed_text`, uncalibrated: temperature 1; ``label_set`` "custom")."""
        custom = None if labels is None else CustomLabels.build(labels, lambda t: self.embed_text(t, text_bundle))
        if custom is not None:
            label_set = "custom"
        elif label_set not in self.label_sets:
            raise ValueError(f"label set {label_set!r} is not in this bundle; it offers {sorted(self.label_sets)}")
        stream, windows, _ = self._whole(audio, sample_rate_hz)
        usable = [w for w in windows if not w.problems]
        names = custom.names if custom is not None else self.label_sets[label_set]
        quality = stream.quality()
        problems = _result_problems(quality, windows)
        if not usable:
            gated = tuple(sorted({p for w in windows for p in w.problems} - set(problems)))
            return ScoreResult(label_set, names, None, np.zeros((0, len(names))), len(windows),
                               problems + gated, quality)
        logits = (np.stack([w.label_logits[label_set] for w in usable]) if custom is None
                  else custom.logits(np.stack([w.embedding for w in usable]), self.logit_scale))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        pooled = logits.mean(0)
        clip = np.exp(pooled - pooled.max())
        clip /= clip.sum()
        return ScoreResult(label_set, names, {lab: float(p) for lab, p in zip(names, clip, strict=True)}, probs,
                           len(windows), problems, quality)

    def screen(self, audio: np.ndarray, sample_rate_hz: int) -> ScreenResult:
        stream, windows, events = self._whole(audio, sample_rate_hz)
        duration = stream.n_samples_16k / self.sample_rate_hz
        quality = stream.quality()
        return ScreenResult(duration, events, windows, quality,
                            len(events) / duration * 3600.0 if duration > 0 else 0.0)


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
        self.detector = EventDetector(model.screening)
        self._busy = threading.Lock()
        self.reset()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this Stream is in use by another thread; a Stream holds one session's state and "
                               "takes one caller at a time: give each thread its own model.stream()")
        try:
            yield
        finally:
            self._busy.release()

    def reset(self) -> None:
        with self._exclusive():
            self._rate: int | None = None
            self._n_channels: int | None = None
            self._resampler: StreamingResampler | None = None
            self._fe = self.model.frontend.stream()
            self._frames = np.zeros((0, self.model.frontend.config.n_mels), dtype=np.float32)
            self._frame_base = 0  # global index of _frames[0]
            self._source = np.zeros(0, dtype=np.float32)  # samples at the source rate, for the window gate
            self._source_base = 0  # global index of _source[0]
            self._meter = QualityMeter()
            self._loudest_dbfs = -np.inf  # RMS of the loudest window so far
            self.n_samples_16k = 0
            self.n_windows = 0
            self.events: list[Event] = []
            self.detector.reset()
            self._features_only = False

    def _validate(self, chunk: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        mono, rate, n_channels = validate_samples(chunk, sample_rate_hz, self._n_channels)
        if self._rate is None:
            self._rate = rate
            if rate != self.model.sample_rate_hz:
                self._resampler = StreamingResampler(rate, self.model.sample_rate_hz)
        elif rate != self._rate:
            raise AudioError(f"this stream runs at {self._rate} Hz; got a chunk at {rate} Hz "
                             "(start a new stream for a new rate)")
        if mono.size and self._n_channels is None:
            self._n_channels = n_channels
        return mono

    def accept(self, chunk: np.ndarray, sample_rate_hz: int) -> list[WindowResult]:
        with self._exclusive():
            x = self._validate(chunk, sample_rate_hz)
            self._meter.update(x)
            self._source = np.concatenate([self._source, x])
            if self._resampler is not None:
                x = self._resampler.accept(x)
            return self._feed(x)

    def accept_features(self, frames: np.ndarray) -> list[WindowResult]:
        """Feature mode: log-mel frames computed on the device (shape (n, n_mels), normalised), e.g. from the
        firmware bridge.  There are no samples, so the signal-quality gate cannot run: windows are marked
        ``features_only`` and still scored."""
        with self._exclusive():
            frames = np.asarray(frames, dtype=np.float32)
            n_mels = self.model.frontend.config.n_mels
            if frames.ndim != 2 or frames.shape[1] != n_mels:
                raise AudioError(f"features must have shape (n_frames, {n_mels}), got {frames.shape}")
            if not np.all(np.isfinite(frames)):
                raise NonFiniteAudioError("features hold NaN or infinite values")
            self._features_only = True
            self.n_samples_16k += frames.shape[0] * self.model.frontend.config.hop_length
            self._frames = np.concatenate([self._frames, frames])
            return self._emit()

    def _feed(self, x: np.ndarray) -> list[WindowResult]:
        self.n_samples_16k += x.size
        frames = self._fe.accept(x)
        if frames.shape[0]:
            self._frames = np.concatenate([self._frames, frames])
        return self._emit()

    def _window_span(self, k: int) -> tuple[int, int]:
        cfg = self.model.frontend.config
        start = k * self.model.hop_frames * cfg.hop_length
        end = (k * self.model.hop_frames + self.model.window_frames - 1) * cfg.hop_length + cfg.n_fft
        return start, end

    def _to_source(self, n_16k: int, round_up: bool = False) -> int:
        """Source-rate sample index of a 16 kHz one (the resampler is delay-compensated)."""
        rate, model_rate = self._rate or self.model.sample_rate_hz, self.model.sample_rate_hz
        return -(-n_16k * rate // model_rate) if round_up else n_16k * rate // model_rate

    def _emit(self, tail: bool = False) -> list[WindowResult]:
        W, H = self.model.window_frames, self.model.hop_frames
        batch: list[np.ndarray] = []
        spans: list[tuple[int, int]] = []
        padded = False
        while True:
            k = self.n_windows + len(batch)
            first = k * H - self._frame_base
            if first + W <= self._frames.shape[0]:
                batch.append(self._frames[first : first + W])
                spans.append(self._window_span(k))
                continue
            if tail and k == 0 and self._frames.shape[0] > 0:  # a clip shorter than one window: tile it
                reps = -(-W // self._frames.shape[0])
                batch.append(np.tile(self._frames, (reps, 1))[:W])
                spans.append((0, self.n_samples_16k))
                padded = True
            break
        results = self._run(np.stack(batch), spans, padded) if batch else []
        # drop frames and samples no future window needs
        keep_frame = (self.n_windows * H) - self._frame_base
        if keep_frame > 0:
            self._frames = self._frames[keep_frame:]
            self._frame_base += keep_frame
        keep_sample = self._to_source(self._window_span(self.n_windows)[0]) - self._source_base
        if keep_sample > 0:
            self._source = self._source[keep_sample:]
            self._source_base += keep_sample
        return results

    def _gate(self, start_16k: int, end_16k: int) -> tuple[str, ...]:
        """Quality problems that keep a window from being scored, measured on its source samples.  Silence and
        clipping are absolute; low level needs a quiet window (< LOW_LEVEL_RMS_DBFS) that is also
        INACTIVE_BELOW_LOUDEST_DB under the loudest window so far, so a quiet but valid recording is scored."""
        if self._features_only:
            return ()
        a, b = self._to_source(start_16k), self._to_source(end_16k, round_up=True)
        seg = self._source[max(0, a - self._source_base) : max(0, b - self._source_base)]
        if not seg.size:
            return ("too_short",)
        q = assess_quality(seg)
        self._loudest_dbfs = max(self._loudest_dbfs, q.rms_dbfs)
        inactive = q.low_level and q.rms_dbfs < self._loudest_dbfs - INACTIVE_BELOW_LOUDEST_DB
        return tuple(p for p, on in (("silent", q.silent), ("clipped", q.clipped), ("low_level", inactive)) if on)

    def _run(self, windows: np.ndarray, spans: list[tuple[int, int]], padded: bool) -> list[WindowResult]:
        emb, heads = self.model.run_windows(windows.astype(np.float32))
        logits = self.model._label_logits(emb)
        rate = self.model.sample_rate_hz
        out = []
        for i, (s, e) in enumerate(spans):
            problems = self._gate(s, e)
            p = None
            if self.model.cough_head is not None and not problems:
                p = float(1.0 / (1.0 + np.exp(-heads[i, self.model.cough_head])))
            w = WindowResult(self.n_windows, round(s / rate, 4), round(e / rate, 4), emb[i], p,
                             {k: v[i] for k, v in logits.items()}, problems, padded)
            self.n_windows += 1
            self.events += self.detector.update(w.start_s, w.end_s, p)
            out.append(w)
        return out

    def flush(self) -> list[WindowResult]:
        """End of input: emit what the resampler holds, a tiled window for a clip shorter than one
        window, and any open event."""
        with self._exclusive():
            out: list[WindowResult] = []
            if self._resampler is not None:
                out += self._feed(self._resampler.flush())
            out += self._emit(tail=True)
            self.events += self.detector.flush()
            return out

    def quality(self) -> QualityFlags | None:
        """Quality of every sample accepted so far (silence, clipping, level); None before the first sample and
        in feature mode, where there are no samples to measure."""
        with self._exclusive():
            return self._meter.flags() if self._meter.n_samples else None
