"""The on-device model: a verified bundle, a runtime backend, and per-session streams.

    model = sdk.load("path/to/bundle", backend="onnxruntime", precision="auto")
    result = model.screen(samples, sample_rate_hz=16000)      # events, window scores, quality flags
    stream = model.stream(); stream.accept(chunk, 16000)       # same results, chunk by chunk

A Model holds weights only and is shared, by any number of threads; each Stream holds one
session's state and serves one thread.  Whole-recording calls run a Stream over the recording,
so both give identical results.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from acula.sdk.bundle import Bundle, BundleError, models_dir, read_bundle
from acula.sdk.frontend import LogMelFrontend
from acula.sdk.level import bundle_level
from acula.sdk.results import EmbedResult, ScoreLog, ScoreResult, ScreenResult, WindowResult, result_problems
from acula.sdk.runtimes import make_backend
from acula.sdk.scoring import LabelScorer, check_matchable, clip_embedding, softmax
from acula.sdk.screening import Event, ScreeningConfig
from acula.sdk.stream import Stream

if TYPE_CHECKING:
    from acula.sdk.text import CustomLabels

__all__ = ["Model", "Stream", "WindowResult", "ScreenResult", "ScoreResult", "EmbedResult", "load",
           "available_models"]


def available_models() -> list[str]:
    """Names of the bundles shipped inside the package."""
    root = models_dir()
    if root is None or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def _resolve(bundle: str | Path) -> Path:
    root = models_dir()
    if root is not None and str(bundle) in available_models():
        return root / str(bundle)
    path = Path(bundle)
    if not path.exists():
        names = available_models()
        hint = f"packaged: {names}" if names else "no bundle is packaged in this install"
        raise BundleError(f"no bundle named or at {bundle!r} ({hint}); export one with 'acula export'")
    return path


def load(bundle: str | Path = "default", backend: str = "onnxruntime", precision: str = "auto",
         n_threads: int = 1, sha256: str | None = None, public_key: Any = None) -> Model:
    """Load and verify a bundle (a packaged name or a path) on one backend and precision (``"fp32"``,
    ``"int8"`` or ``"auto"``: the faster of the two on this device, measured once and cached; see
    :mod:`sdk.precision`).  ``sha256``: the
    manifest digest the bundle must have (``acula info`` prints it; packaged bundles are pinned anyway);
    ``public_key``: an Ed25519 public key its ``manifest.sig`` must verify against (needs cryptography)."""
    return Model(read_bundle(_resolve(bundle), sha256, public_key), backend, precision, n_threads)


def check_graph(backend: Any, manifest: dict[str, Any], window_frames: int, n_mels: int, precision: str
                ) -> tuple[int, int]:
    """One zero window through ``backend``: the manifest's shapes (a window of window_frames x n_mels in, the
    embedding and the heads out) must be the model file's, or an edited manifest would load and fail inside the
    runtime at the first window (or read a head that is not there); a :class:`BundleError` says which.  It is
    also the runtime's first call, which the first hop would pay otherwise."""
    try:
        emb, heads = backend(np.zeros((1, window_frames, n_mels), np.float32))
    except Exception as exc:  # each runtime raises its own types
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise BundleError(f"the bundle's {precision} model does not take the manifest's window of {window_frames} "
                          f"frames x {n_mels} mel bands ({type(exc).__name__}: {first})") from None
    if emb.shape != (1, int(manifest["embed_dim"])):
        raise BundleError(f"the bundle's {precision} model gives embeddings of shape {emb.shape[1:]}, the manifest "
                          f"says embed_dim {manifest['embed_dim']}")
    n_heads = heads.shape[1] if heads.ndim == 2 else 0
    for name, head in (manifest.get("heads") or {}).items():
        index = head.get("index") if isinstance(head, dict) else None
        if index is not None and not 0 <= int(index) < n_heads:
            raise BundleError(f"the manifest's head {name!r} reads output {index}, but the model has {n_heads}")
    return int(emb.shape[1]), n_heads


class Model:
    def __init__(self, bundle: Bundle, backend: str = "onnxruntime", precision: str = "auto",
                 n_threads: int = 1) -> None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
            raise ValueError(f"n_threads must be a whole number of threads, at least 1, got {n_threads!r}")
        self.bundle = bundle
        m = bundle.manifest
        built = None
        if precision == "auto":  # measured once per device and bundle, then cached (sdk/precision.py)
            from acula.sdk.precision import choose_precision

            precision, built = choose_precision(bundle, backend, n_threads)
        name, _ = bundle.model_file(backend, precision)
        self.backend_name, self.precision = backend, precision
        self.backend = built or make_backend(backend, bundle.files[name], n_threads)
        # serialise calls unless the runtime says one instance may serve many threads (sdk.runtimes)
        self._backend_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if getattr(self.backend, "thread_safe", False) else threading.Lock())
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
        #: per label set, per label: added to the calibrated logits (fitted with the temperature; absent: 0)
        self.bias: dict[str, list[float]] = {k: [float(v) for v in b] for k, b in cal.get("bias", {}).items()}
        self.scorer = LabelScorer(self.prompts, self._prompt_index, self.logit_scale, self.temperature, self.bias)
        self.cough_head = m.get("heads", {}).get("cough", {}).get("index")
        self.screening = ScreeningConfig.from_manifest(m["screening"]) if "screening" in m else ScreeningConfig()
        self._bundle_screening = self.screening  # set_cough_threshold scales from the bundle's own off / on
        #: windows shifted to a running level, gate judged relative to the loudest window (sdk.level); None: as is
        self.level = bundle_level(bundle)
        #: (embed_dim, n_heads): what the runtime gives per window, checked against the manifest at load
        self._out_dims = check_graph(self.backend, bundle.manifest, self.window_frames, self.frontend.config.n_mels,
                                     precision)

    @property
    def sample_rate_hz(self) -> int:
        return self.frontend.config.sample_rate_hz

    def set_cough_threshold(self, on: float) -> None:
        """Move the cough detector's operating point: an event opens when a window's cough probability reaches
        ``on`` (0 < on < 1) and closes under an 'off' scaled with it (the bundle's off / on ratio, as
        ``acula.benchmarks.cough_screening --grid`` replays other thresholds); streams made afterwards use it.  The
        bundle's own point was chosen on validation audio (the manifest's ``screening.calibrated_on`` says which);
        the README's phone-channel table gives the validation grid's lowest threshold meeting the false-alarm
        targets per channel."""
        if not 0.0 < float(on) < 1.0:  # NaN fails too
            raise ValueError(f"the cough threshold is a probability strictly between 0 and 1, got {on}")
        # from the bundle's settings, not the current ones: moves do not compound (a 4-decimal 'off' after 1e-5
        # would stay 0.0 for good)
        self.screening = self._bundle_screening.with_on(on)

    def stream(self) -> Stream:
        return Stream(self)

    def search(self, audio_or_embedding: np.ndarray, index: Any, k: int = 5, sample_rate_hz: int = 16000
               ) -> list[Any]:
        """The k most similar references in a :class:`sdk.search.CaseIndex` to a recording or an embedding.  A 1-D
        float array of this bundle's ``embed_dim`` values is an embedding (a recording that short, under one FFT
        frame, could not be scored anyway); anything else is a recording, refused as ``acula search`` refuses it
        when it is digital silence throughout or shorter than one window."""
        x = np.asarray(audio_or_embedding)
        d = int(self.bundle.manifest["embed_dim"])
        if x.ndim == 1 and x.dtype.kind == "f" and x.shape[0] == d:
            query = x.astype(np.float32)
        else:
            stream, windows, _ = self._whole(x, sample_rate_hz)
            check_matchable(stream.quality(), len(windows), "the recording", "match it by",
                            f" (an embedding to search with is a 1-D array of this bundle's {d} values)")
            query = clip_embedding(np.stack([w.embedding for w in windows]))
        return list(index.search(query, k))

    def embed_text(self, prompts: list[str], text_bundle: str | Path | None = None) -> np.ndarray:
        """Prompts -> (n, embed_dim) unit rows in this bundle's joint space, on the device (torch-free): the text
        encoder of a text bundle (``acula export-text``; ``text_bundle`` or ``$ACULA_TEXT_BUNDLE``), then its
        projection for this bundle (see :mod:`sdk.text`)."""
        from acula.sdk.text import joint_text  # custom prompts only: kept out of a cold start

        return joint_text(self.bundle, text_bundle)(prompts)

    def run_windows(self, windows: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows of shape (window_frames, n_mels) -> embeddings (n, embed_dim) and heads (n, n_heads).  One
        window at a time: a batched matmul rounds differently, and a stream must give bit-identical results
        whatever the chunking (on a device a hop yields one window anyway).  :class:`sdk.pool.StreamPool`
        batches instead, within a stated tolerance."""
        if not len(windows):
            return self._no_outputs()
        shape = (self.window_frames, self.frontend.config.n_mels)
        for w in windows:
            if np.shape(w) != shape:
                raise ValueError(f"a window has shape {np.shape(w)}; this model takes {shape} (frames, mel bands)")
        with self._backend_lock:
            outs = [self.backend(np.asarray(w, np.float32)[None]) for w in windows]
        if len(outs) == 1:
            return outs[0]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def run_batch(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One runtime call for a batch of shape (n, window_frames, n_mels): faster per window, equal to
        :meth:`run_windows` only to float32 rounding (see tests/test_pool.py for the tolerance)."""
        shape = (self.window_frames, self.frontend.config.n_mels)
        if np.ndim(windows) != 3 or np.shape(windows)[1:] != shape:
            raise ValueError(f"a batch of windows has shape {np.shape(windows)}; this model takes (n, *{shape})")
        if not len(windows):
            return self._no_outputs()
        with self._backend_lock:
            return self.backend(np.asarray(windows, np.float32))

    def _no_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The runtime's outputs for no window at all: (0, embed_dim) and (0, n_heads)."""
        return np.zeros((0, self._out_dims[0]), np.float32), np.zeros((0, self._out_dims[1]), np.float32)

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
              labels: dict[str, list[str]] | CustomLabels | None = None, text_bundle: str | Path | None = None
              ) -> ScoreResult:
        """Clip probabilities over a packaged label set, or over custom ``labels`` ({label: [prompt, ...]}, at
        least two labels; embedded by :meth:`embed_text`, uncalibrated: temperature 1; ``label_set`` "custom";
        or :class:`sdk.text.CustomLabels` embedded already, to score many recordings against one embedding)."""
        from acula.sdk.text import CustomLabels

        custom = (labels if isinstance(labels, CustomLabels) or labels is None
                  else CustomLabels.build(labels, lambda t: self.embed_text(t, text_bundle)))
        if custom is not None:
            label_set = "custom"
        elif not isinstance(label_set, str) or label_set not in self.label_sets:
            raise ValueError(f"label set {label_set!r} is not in this bundle; it offers {sorted(self.label_sets)}")
        stream, windows, _ = self._whole(audio, sample_rate_hz)
        names = custom.names if custom is not None else self.label_sets[label_set]
        if isinstance(windows, ScoreLog):  # a streamed file: its kept rows (custom ones scored as windows came)
            logits = windows.usable_logits()
        else:
            usable = [w for w in windows if not w.problems]
            if not usable:
                logits = np.zeros((0, len(names)), np.float32)
            elif custom is None:
                logits = np.stack([w.label_logits[label_set] for w in usable])
            else:
                logits = custom.logits(np.stack([w.embedding for w in usable]), self.logit_scale)
        quality = stream.quality()
        problems = result_problems(quality, windows)
        if not len(logits):
            gated = tuple(sorted({p for w in windows for p in w.problems} - set(problems)))
            return ScoreResult(label_set, names, None, np.zeros((0, len(names))), len(windows),
                               problems + gated, quality)
        probs = softmax(logits, axis=1)
        clip = softmax(logits.mean(0))
        return ScoreResult(label_set, names, {lab: float(p) for lab, p in zip(names, clip, strict=True)}, probs,
                           len(windows), problems, quality)

    def screen(self, audio: np.ndarray, sample_rate_hz: int) -> ScreenResult:
        stream, windows, events = self._whole(audio, sample_rate_hz)
        duration = stream.n_samples_16k / self.sample_rate_hz
        quality = stream.quality()
        return ScreenResult(duration, events, windows, quality,
                            len(events) / duration * 3600.0 if duration > 0 else 0.0)
