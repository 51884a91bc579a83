"""``precision="auto"``: pick a bundle's fp32 or int8 model by timing both on this device, once.

int8 is smaller and is what integer-only targets run; on x86 it was measured 1.7-1.8x slower than fp32 with
both runtimes.  So ``auto`` times one window on each at load and keeps the faster, int8 unless fp32 is faster
by more than ``FP32_MARGIN`` (integer-friendly cores keep int8).  The choice is cached in a small JSON file
keyed by CPU model, backend, thread count and bundle digest, in ``$ACULA_CACHE_DIR`` or the user cache dir
(``$XDG_CACHE_HOME/acula-edge``, else ``~/.cache/acula-edge``), so later loads skip the measurement.
``ACULA_PRECISION=int8`` (or fp32) overrides the choice, e.g. on an integer-only target.

Speed is not enough: on x86 CPUs without VNNI (AVX2 only) onnxruntime's u8 x s8 int8 kernels can saturate
their 16-bit sums, and the int8 student then answers something else than fp32 (measured on an AVX2-only AMD
EPYC: embedding cosine 0.39 to fp32 on a real cough, cough probability 0.002 instead of 0.73).  So ``auto``
also runs both models on a few deterministic windows (seeded noise bursts through the bundle's own front
end) and keeps int8 only when its embeddings agree with fp32's (cosine >= ``INT8_MIN_COSINE``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FP32_MARGIN", "INT8_MIN_COSINE", "cache_path", "choose_precision", "cpu_model", "int8_agreement"]

#: fp32 is chosen only when its median window time is below (1 - FP32_MARGIN) x int8's
FP32_MARGIN = 0.10
N_WARMUP, N_TIMED = 3, 15
CACHE_FILE = "precision.json"
#: int8 is usable on this device only if its embeddings agree with fp32's this well on the probe windows
#: (a sound int8 export measures >= 0.999 on real windows; a saturating kernel measured 0.39)
INT8_MIN_COSINE = 0.98
#: bumped when the choice rule changes, so choices cached by an older rule are made again
RULE = "v2"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_path() -> Path:
    root = os.environ.get("ACULA_CACHE_DIR")
    if root:
        return Path(root) / CACHE_FILE
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "acula-edge" / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:  # a read-only home is no reason to fail a load: the next load measures again
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _median_ms(backend: Any, window: np.ndarray) -> float:
    for _ in range(N_WARMUP):
        backend(window)
    times = []
    for _ in range(N_TIMED):
        t0 = time.perf_counter()
        backend(window)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def probe_windows(bundle: Any, n: int = 3, seed: int = 0) -> np.ndarray:
    """``n`` deterministic windows of realistic features: seeded noise bursts of different levels and
    spectral tilts through the bundle's own front end (no recording needs to ship for this)."""
    from acula.sdk.frontend import LogMelFrontend

    m, fe = bundle.manifest, LogMelFrontend(bundle.frontend)
    frames = int(m["window_frames"])
    rate, hop, n_fft = fe.config.sample_rate_hz, fe.config.hop_length, fe.config.n_fft
    n_samples = (frames - 1) * hop + n_fft
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / rate
    out = []
    for i in range(n):
        noise = np.cumsum(rng.standard_normal(n_samples)) if i % 2 else rng.standard_normal(n_samples)
        noise -= noise.mean()
        burst = np.exp(-0.5 * ((t - t[-1] * (i + 1) / (n + 1)) / 0.08) ** 2)  # a cough-like burst
        x = (0.02 + burst) * noise / (np.abs(noise).max() + 1e-9) * 10 ** (-6 * i / 20)
        out.append(fe(x.astype(np.float32))[:frames])
    return np.stack(out).astype(np.float32)


def int8_agreement(int8: Any, fp32: Any, windows: np.ndarray) -> float:
    """The lowest cosine between the int8 and fp32 models' embeddings over ``windows``."""
    worst = 1.0
    for w in windows:
        a, b = (np.asarray(backend(w[None])[0], np.float64).ravel() for backend in (int8, fp32))
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        worst = min(worst, cos)
    return worst


def choose_precision(bundle: Any, backend_name: str, n_threads: int = 1) -> tuple[str, Any]:
    """(precision, a backend built for it or None) for ``bundle`` on ``backend_name``: from the cache, or by
    timing each precision the bundle offers on one zero window (the runtime's cost does not depend on the
    values).  The backend comes back when the measurement built it, so the load does not build it twice."""
    from acula.sdk.runtimes import make_backend

    offered = sorted({info["precision"] for info in bundle.manifest["files"].values()
                      if info.get("role") == "student" and info.get("backend") == backend_name})
    forced = os.environ.get("ACULA_PRECISION")
    if forced in offered:
        return str(forced), None
    if len(offered) < 2:
        return (offered[0] if offered else "int8"), None
    key = f"{cpu_model()}|{backend_name}|threads={n_threads}|{bundle.sha256}|{RULE}"
    path = cache_path()
    cache = _read_cache(path)
    hit = cache.get(key)
    if isinstance(hit, dict) and hit.get("precision") in offered:
        return str(hit["precision"]), None
    m = bundle.manifest
    window = np.zeros((1, int(m["window_frames"]), int(bundle.frontend.n_mels)), dtype=np.float32)
    built, ms = {}, {}
    for precision in ("int8", "fp32"):
        name, _ = bundle.model_file(backend_name, precision)
        built[precision] = make_backend(backend_name, bundle.files[name], n_threads)
        ms[precision] = _median_ms(built[precision], window)
    agreement = int8_agreement(built["int8"], built["fp32"], probe_windows(bundle))
    if agreement < INT8_MIN_COSINE:
        choice, reason = "fp32", f"int8 disagrees with fp32 on this CPU (embedding cosine {agreement:.3f})"
    elif ms["fp32"] < (1.0 - FP32_MARGIN) * ms["int8"]:
        choice, reason = "fp32", "fp32 is faster"
    else:
        choice, reason = "int8", "int8 agrees with fp32 and is not slower"
    cache[key] = {"precision": choice, "reason": reason, "window_ms": ms, "int8_cosine": round(agreement, 5),
                  "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_cache(path, cache)
    return choice, built[choice]
