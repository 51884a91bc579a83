"""Serve the page from a local HTTP server and drive it in headless Chromium (tests and ``benchmarks.web``).

    with open_page(model_dir) as page:             # model_dir: written by sdk.web.build.build
        result = analyse(page, Path("cough.wav"))   # the page's own file-input path
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
def serve(model_dir: Path) -> Iterator[str]:
    """Serve sdk/web (with /model/ from ``model_dir``) on 127.0.0.1 in a thread; yields the page's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, model_dir=Path(model_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def open_page(model_dir: Path, fake_mic: bool = False, timeout_s: float = 60.0) -> Iterator[Any]:
    """A Playwright page with the model loaded and warmed up (state 'ready'); console errors are collected in
    ``page.acula_console``."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with serve(model_dir) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=CHROMIUM_ARGS + (FAKE_MIC_ARGS if fake_mic else []))
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.acula_console = console
            page.goto(url)
            page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)",
                                   timeout=timeout_s * 1e3)
            if page.evaluate("document.body.dataset.state") == "error":
                raise RuntimeError(f"the page failed to load: {page.inner_text('#status')}; console: {console}")
            yield page
        finally:
            browser.close()


def analyse(page: Any, path: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Choose ``path`` in the page's file input and return ``window.aculaResult`` once it is analysed."""
    page.evaluate("document.body.dataset.state = 'submitted'")
    page.set_input_files("#file", str(path))
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=timeout_s * 1e3)
    if page.evaluate("document.body.dataset.state") == "error":
        raise RuntimeError(f"the page failed on {path}: {page.inner_text('#status')}")
    result: dict[str, Any] = page.evaluate("window.aculaResult")
    return result
