"""Serve the page from a local HTTP server and drive it in headless Chromium (tests and ``benchmarks.web``).

    with launch() as browser, open_page(browser, model_dir) as page:   # model_dir: from sdk.web.build.build
        result = analyse(page, Path("cough.wav"))                      # the page's own file-input path
        page.screenshot(path="page.png")

``result`` is ``window.aculaResult``: windows (start_s, end_s, cough_probability, problems, embedding),
events, scores per label set and per-hop latencies in ms.  Chromium is Debian's ``chromium`` (or
``$ACULA_CHROMIUM``), driven by Playwright for Python (``pip install acula-edge[web]``; no
``playwright install`` needed); the page's runtime is ``sdk/web/node_modules`` (``npm ci`` in ``sdk/web``).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from acula.sdk.audio import load_audio
from acula.sdk.synth import synth_recording

WEB_ROOT = Path(__file__).resolve().parent
ORT_DIST = WEB_ROOT / "node_modules" / "onnxruntime-web" / "dist"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: a fake microphone (a beep) that needs no permission prompt
FAKE_MIC_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def chromium_path() -> str | None:
    """``$ACULA_CHROMIUM``, else ``chromium`` on PATH, else None."""
    return os.environ.get("ACULA_CHROMIUM") or shutil.which("chromium")


def missing() -> str | None:
    """Why the page cannot be driven here (a sentence naming the fix), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'acula-edge[web]' or bash scripts/install.sh --all)"
    if chromium_path() is None:
        return "no chromium found (apt-get install chromium, or set ACULA_CHROMIUM)"
    if not (ORT_DIST / "ort.wasm.min.mjs").is_file():
        return f"onnxruntime-web is not installed in {WEB_ROOT} (run 'npm ci' there, or bash scripts/install.sh --all)"
    return None


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}

    def __init__(self, *args: Any, model_dir: Path, **kwargs: Any) -> None:
        self.model_dir = model_dir
        super().__init__(*args, directory=str(WEB_ROOT), **kwargs)

    def translate_path(self, path: str) -> str:
        # /model/* comes from the folder the test or benchmark built, not from sdk/web/model
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/model/"):
            name = clean[len("/model/"):]
            if "/" in name or name in ("", ".", ".."):
                return str(self.model_dir / "missing")
            return str(self.model_dir / name)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve(model_dir: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve sdk/web (with /model/ from ``model_dir``) in a thread (port 0: any free port); yields the page's
    URL."""
    server = ThreadingHTTPServer((host, port), functools.partial(_Handler, model_dir=Path(model_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def launch(fake_mic: bool = False) -> Iterator[Any]:
    """Headless Chromium under Playwright (one per process at a time: the sync API runs its own event loop)."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=CHROMIUM_ARGS + (FAKE_MIC_ARGS if fake_mic else []))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Any, model_dir: Path, timeout_s: float = 60.0) -> Iterator[Any]:
    """A page of ``browser`` served with ``model_dir``, the model loaded and warmed up (state 'ready');
    console messages are collected in ``page.acula_console``."""
    with serve(model_dir) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.acula_console = console
        try:
            page.goto(url)
            page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)",
                                   timeout=timeout_s * 1e3)
            if page.evaluate("document.body.dataset.state") == "error":
                raise RuntimeError(f"the page failed to load: {page.inner_text('#status')}; console: {console}")
            yield page
        finally:
            page.close()


def analyse(page: Any, path: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Choose ``path`` in the page's file input and return ``window.aculaResult`` once it is analysed."""
    page.evaluate("document.body.dataset.state = 'submitted'")
    page.set_input_files("#file", str(path))
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=timeout_s * 1e3)
    if page.evaluate("document.body.dataset.state") == "error":
        raise RuntimeError(f"the page failed on {path}: {page.inner_text('#status')}")
    result: dict[str, Any] = page.evaluate("window.aculaResult")
    return result


# --- fixtures and the comparison with the SDK, shared by tests/test_web.py and benchmarks/web.py -------------

#: the page must give the SDK's results: per-window embedding cosine at least this, the same windows, quality
#: problems and events (times to the SDK's rounding, confidences and probabilities to float32 noise)
MIN_COSINE = 0.99
MAX_ABS_PROBABILITY = 2e-3
EVENT_TIME_TOL_S = 1e-3


def write_wav(path: Path, samples: Any, rate_hz: int = 16000) -> Path:
    """16-bit PCM WAV (what a phone records); returns ``path``."""
    sf.write(str(path), np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768), rate_hz,
             subtype="PCM_16")
    return Path(path)


def synthetic_recording(seconds: float = 10.0, silence_s: float = 2.5, seed: int = 4) -> Any:
    """``silence_s`` of digital silence (windows the quality gate rejects) then ``sdk.synth`` heart, breathing and
    cough-like bursts; 16 kHz float32."""
    x, _ = synth_recording(seconds - silence_s, seed=seed)
    return np.concatenate([np.zeros(int(silence_s * 16000), np.float32), x.astype(np.float32)])


def cough_in_noise(cough_path: Path, seconds: float = 6.0, at_s: float = 2.0, noise_dbfs: float = -50.0,
                   seed: int = 0) -> Any:
    """A recorded cough placed at ``at_s`` in ``seconds`` of white noise at ``noise_dbfs`` RMS; 16 kHz float32."""
    cough = load_audio(cough_path).samples
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(int(seconds * 16000)) * 10 ** (noise_dbfs / 20)).astype(np.float32)
    start = int(at_s * 16000)
    x[start : start + cough.size] += cough[: x.size - start]
    return x


def sdk_result(model: Any, path: Path) -> dict[str, Any]:
    """What the SDK gives for the file at ``path``, in the page's result layout."""
    clip = load_audio(path)
    screen = model.screen(clip.samples, clip.sample_rate_hz)
    scores = {name: model.score(clip.samples, clip.sample_rate_hz, name).probabilities for name in model.label_sets}
    return {"windows": [{"start_s": w.start_s, "end_s": w.end_s, "cough_probability": w.cough_probability,
                         "problems": list(w.problems), "embedding": np.asarray(w.embedding)} for w in screen.windows],
            "events": [e.to_dict() for e in screen.events], "scores": scores}


def parity(browser: dict[str, Any], sdk: dict[str, Any]) -> dict[str, Any]:
    """Compare the page's result with :func:`sdk_result`; ``ok`` is True when they agree within the tolerances."""
    bw, sw = browser["windows"], sdk["windows"]
    same_windows = [(b["start_s"], b["end_s"], b["problems"]) for b in bw] == [
        (s["start_s"], s["end_s"], s["problems"]) for s in sw]
    cosines = [float(np.dot(b["embedding"], s["embedding"])
                     / (np.linalg.norm(b["embedding"]) * np.linalg.norm(s["embedding"]) + 1e-12))
               for b, s in zip(bw, sw, strict=False)]
    dp = [abs(b["cough_probability"] - s["cough_probability"]) for b, s in zip(bw, sw, strict=False)
          if b["cough_probability"] is not None and s["cough_probability"] is not None]
    same_gate = [b["cough_probability"] is None for b in bw] == [s["cough_probability"] is None for s in sw]
    be, se = browser["events"], sdk["events"]
    same_events = len(be) == len(se) and all(
        abs(b["start_s"] - s["start_s"]) <= EVENT_TIME_TOL_S and abs(b["end_s"] - s["end_s"]) <= EVENT_TIME_TOL_S
        and abs(b["confidence"] - s["confidence"]) <= MAX_ABS_PROBABILITY for b, s in zip(be, se, strict=True))
    ds = [abs(browser["scores"][k][lab] - p) for k, probs in sdk["scores"].items() if probs
          for lab, p in probs.items()]
    same_scored = all((browser["scores"][k] is None) == (v is None) for k, v in sdk["scores"].items())
    out = {"n_windows_browser": len(bw), "n_windows_sdk": len(sw), "same_windows": same_windows,
           "min_cosine": min(cosines, default=float("nan")), "max_abs_cough_probability": max(dp, default=0.0),
           "same_quality_gate": same_gate, "max_abs_score": max(ds, default=0.0),
           "n_events_browser": len(be), "n_events_sdk": len(se), "same_events": same_events}
    out["ok"] = bool(same_windows and same_gate and same_events and same_scored and bw
                     and out["min_cosine"] >= MIN_COSINE and out["max_abs_cough_probability"] <= MAX_ABS_PROBABILITY
                     and out["max_abs_score"] <= MAX_ABS_PROBABILITY)
    return out
