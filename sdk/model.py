"""The on-device model: a verified bundle, a runtime backend, and per-session streams.

    model = sdk.load("path/to/bundle", backend="onnxruntime", precision="int8")
    result = model.screen(samples, sample_rate_hz=16000)      # events, window scores, quality flags
    stream = model.stream(); stream.accept(chunk, 16000)       # same results, chunk by chunk

A Model holds weights only and is shared; each Stream holds one session's state.
Whole-recording calls run a Stream over the recording, so both give identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sdk.audio import AudioError, NonFiniteAudioError, QualityFlags, assess_quality
from sdk.bundle import Bundle, BundleError, read_bundle
from sdk.frontend import LogMelFrontend
from sdk.resample import StreamingResampler
from sdk.runtimes import make_backend
from sdk.screening import Event, EventDetector, ScreeningConfig

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
    problems: tuple[str, ...] = ()

    def to_dict(self, with_embedding: bool = False) -> dict[str, Any]:
        d = {"index": self.index, "start_s": self.start_s, "end_s": self.end_s,
             "cough_probability": self.cough_probability, "problems": list(self.problems)}
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
    def ok(self) -> bool:
        return self.quality is None or self.quality.ok

    def peak_window(self) -> WindowResult | None:
        """The window with the highest cough probability; None when the quality gate left none scored."""
        scored = [w for w in self.windows if w.cough_probability is not None]
        return max(scored, key=lambda w: float(w.cough_probability or 0.0), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "n_events": len(self.events), "coughs_per_hour": self.coughs_per_hour,
                "events": _as_dict(self.events), "quality": None if self.quality is None else _as_dict(
                    self.quality.__dict__), "poor_signal": not self.ok,
                "windows": [w.to_dict() for w in self.windows]}


@dataclass
class ScoreResult:
    label_set: str
    labels: list[str]
    probabilities: dict[str, float] | None  # None when no window passed the quality gate
    window_probabilities: np.ndarray  # (n_usable_windows, n_labels)
    n_windows: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"label_set": self.label_set, "labels": self.labels, "probabilities": self.probabilities,
                "n_windows": self.n_windows, "n_usable_windows": int(self.window_probabilities.shape[0]),
                "problems": list(self.problems)}


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
        x = np.asarray(audio_or_embedding, dtype=np.float32)
        if x.ndim == 1 and x.shape[0] == int(self.bundle.manifest["embed_dim"]):
            query = x
        else:
            emb = self.embed(x, sample_rate_hz).embeddings
            if emb.shape[0] == 0:
                raise AudioError("the recording is too short for one analysis window")
            query = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).mean(0)
        return list(index.search(query, k))

    def embed_text(self, prompts: list[str]) -> np.ndarray:
        """Custom text prompts need the bundle's optional text encoder."""
        if not any(i.get("role") == "text_encoder" for i in self.bundle.manifest["files"].values()):
            raise NotImplementedError(
                "this bundle carries no text encoder, so custom prompts cannot be embedded on the device; use the "
                f"label sets it ships ({', '.join(sorted(self.label_sets))}) or export a bundle with a text encoder")
        raise NotImplementedError("text-encoder bundles are not supported by this SDK version yet")

    def _label_logits(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        e = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
        sims = e @ self.prompts.T * self.logit_scale
        return {name: np.stack([sims[:, idx].mean(1) for idx in groups], 1) / self.temperature[name]
                for name, groups in self._prompt_index.items()}

    def run_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One window at a time: a batched matmul rounds differently, and a stream must give
        bit-identical results whatever the chunking (on a device a hop yields one window anyway)."""
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

    def score(self, audio: np.ndarray, sample_rate_hz: int, label_set: str = "lung") -> ScoreResult:
        if label_set not in self.label_sets:
            raise ValueError(f"label set {label_set!r} is not in this bundle; it offers {sorted(self.label_sets)}")
        stream, windows, _ = self._whole(audio, sample_rate_hz)
        usable = [w for w in windows if not w.problems]
        labels = self.label_sets[label_set]
        if not usable:
            problems = tuple(sorted({p for w in windows for p in w.problems})) or ("too_short",)
            return ScoreResult(label_set, labels, None, np.zeros((0, len(labels))), len(windows), problems)
        logits = np.stack([w.label_logits[label_set] for w in usable])
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        pooled = logits.mean(0)
        clip = np.exp(pooled - pooled.max())
        clip /= clip.sum()
        return ScoreResult(label_set, labels, {lab: float(p) for lab, p in zip(labels, clip, strict=True)}, probs,
                           len(windows))

    def screen(self, audio: np.ndarray, sample_rate_hz: int) -> ScreenResult:
        stream, windows, events = self._whole(audio, sample_rate_hz)
        duration = stream.n_samples_16k / self.sample_rate_hz
        quality = stream.quality()
        return ScreenResult(duration, events, windows, quality,
                            len(events) / duration * 3600.0 if duration > 0 else 0.0)


class Stream:
    """One session: ``accept(chunk, sample_rate_hz)`` takes any length and returns the new windows."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.detector = EventDetector(model.screening)
        self.reset()

    def reset(self) -> None:
        self._rate: int | None = None
        self._resampler: StreamingResampler | None = None
        self._fe = self.model.frontend.stream()
        self._frames = np.zeros((0, self.model.frontend.config.n_mels), dtype=np.float32)
        self._frame_base = 0  # global index of _frames[0]
        self._samples = np.zeros(0, dtype=np.float32)
        self._sample_base = 0
        self.n_samples_16k = 0
        self.n_windows = 0
        self.events: list[Event] = []
        self.detector.reset()
        self._peak = 0.0
        self._sumsq = 0.0
        self._features_only = False

    def _validate(self, chunk: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        x = np.asarray(chunk)
        if np.issubdtype(x.dtype, np.integer):  # scale before mixing down, while the type is known
            x = x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if x.ndim != 1:
            raise AudioError(f"expected a chunk of shape (n,) or (n, channels), got {x.shape}")
        if x.size and not np.all(np.isfinite(x)):
            raise NonFiniteAudioError(f"chunk holds {int(x.size - np.isfinite(x).sum())} NaN or infinite samples")
        if self._rate is None:
            if sample_rate_hz <= 0:
                raise AudioError(f"sample rate must be positive, got {sample_rate_hz}")
            self._rate = int(sample_rate_hz)
            if self._rate != self.model.sample_rate_hz:
                self._resampler = StreamingResampler(self._rate, self.model.sample_rate_hz)
        elif int(sample_rate_hz) != self._rate:
            raise AudioError(f"this stream runs at {self._rate} Hz; got a chunk at {sample_rate_hz} Hz "
                             "(start a new stream for a new rate)")
        return x.astype(np.float32)

    def accept(self, chunk: np.ndarray, sample_rate_hz: int) -> list[WindowResult]:
        x = self._validate(chunk, sample_rate_hz)
        if self._resampler is not None:
            x = self._resampler.accept(x)
        return self._feed(x)

    def accept_features(self, frames: np.ndarray) -> list[WindowResult]:
        """Feature mode: log-mel frames computed on the device (shape (n, n_mels), normalised), e.g. from the
        firmware bridge.  There are no samples, so the signal-quality gate cannot run: windows are marked
        ``features_only`` and still scored."""
        frames = np.asarray(frames, dtype=np.float32)
        n_mels = self.model.frontend.config.n_mels
        if frames.ndim != 2 or frames.shape[1] != n_mels:
            raise AudioError(f"features must have shape (n_frames, {n_mels}), got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise NonFiniteAudioError("features hold NaN or infinite values")
        self._features_only = True
        hop = self.model.frontend.config.hop_length
        self.n_samples_16k += frames.shape[0] * hop
        self._samples = np.concatenate([self._samples, np.zeros(frames.shape[0] * hop, dtype=np.float32)])
        self._frames = np.concatenate([self._frames, frames])
        return self._emit()

    def _feed(self, x: np.ndarray) -> list[WindowResult]:
        self.n_samples_16k += x.size
        if x.size:
            self._peak = max(self._peak, float(np.max(np.abs(x))))
            self._sumsq += float(np.sum(x.astype(np.float64) ** 2))
        self._samples = np.concatenate([self._samples, x])
        frames = self._fe.accept(x)
        if frames.shape[0]:
            self._frames = np.concatenate([self._frames, frames])
        return self._emit()

    def _window_span(self, k: int) -> tuple[int, int]:
        cfg = self.model.frontend.config
        start = k * self.model.hop_frames * cfg.hop_length
        end = (k * self.model.hop_frames + self.model.window_frames - 1) * cfg.hop_length + cfg.n_fft
        return start, end

    def _emit(self, tail: bool = False) -> list[WindowResult]:
        W, H = self.model.window_frames, self.model.hop_frames
        batch: list[np.ndarray] = []
        spans: list[tuple[int, int]] = []
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
            break
        results = self._run(np.stack(batch), spans) if batch else []
        # drop frames and samples no future window needs
        keep_frame = (self.n_windows * H) - self._frame_base
        if keep_frame > 0:
            self._frames = self._frames[keep_frame:]
            self._frame_base += keep_frame
        keep_sample = self._window_span(self.n_windows)[0] - self._sample_base
        if keep_sample > 0:
            self._samples = self._samples[keep_sample:]
            self._sample_base += keep_sample
        return results

    def _run(self, windows: np.ndarray, spans: list[tuple[int, int]]) -> list[WindowResult]:
        emb, heads = self.model.run_windows(windows.astype(np.float32))
        logits = self.model._label_logits(emb)
        rate = self.model.sample_rate_hz
        out = []
        for i, (s, e) in enumerate(spans):
            seg = self._samples[max(0, s - self._sample_base) : max(0, e - self._sample_base)]
            if self._features_only:
                problems: tuple[str, ...] = ()
            else:
                problems = assess_quality(seg).problems if seg.size else ("too_short",)
            p = None
            if self.model.cough_head is not None and not problems:
                p = float(1.0 / (1.0 + np.exp(-heads[i, self.model.cough_head])))
            w = WindowResult(self.n_windows, round(s / rate, 4), round(e / rate, 4), emb[i], p,
                             {k: v[i] for k, v in logits.items()}, problems)
            self.n_windows += 1
            self.events += self.detector.update(w.start_s, w.end_s, p)
            out.append(w)
        return out

    def flush(self) -> list[WindowResult]:
        """End of input: emit what the resampler holds, a tiled window for a clip shorter than one
        window, and any open event."""
        out: list[WindowResult] = []
        if self._resampler is not None:
            out += self._feed(self._resampler.flush())
        out += self._emit(tail=True)
        self.events += self.detector.flush()
        return out

    def quality(self) -> QualityFlags | None:
        """Level statistics of everything accepted so far (silence, low level)."""
        if self.n_samples_16k == 0:
            return None
        rms = float(np.sqrt(self._sumsq / self.n_samples_16k))
        return QualityFlags(silent=self._peak < 2 / 32768, clipped=False,
                            low_level=self._peak >= 2 / 32768 and rms < 10 ** (-60 / 20),
                            peak_dbfs=20 * np.log10(self._peak) if self._peak > 0 else -np.inf,
                            rms_dbfs=20 * np.log10(rms) if rms > 0 else -np.inf, clipped_fraction=0.0)
