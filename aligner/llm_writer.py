"""Reports written by a language model behind any OpenAI-compatible endpoint.

``POST {base_url}/chat/completions`` (a local vLLM or llama.cpp server, or a
hosted one) with a prompt in the style the AcuLa authors used: the metadata as
``Key: value`` pairs, and a request for a short clinical report as JSON
``{"report": "..."}``.  Requests run under a concurrency limit, each with an idle
socket timeout *and* an overall deadline (a server that drips a byte at a time
cannot hold a request past ``deadline_s``), a cap on the response size, and
retries with exponential backoff on 429/5xx, network errors and cut-off
responses.  Only accepted answers are cached on disk (keyed by model and
prompt, written atomically), so a rerun sends nothing for them and asks again
for the rest; an unreadable cache file is a miss.  Every failure of a record
(:data:`FAILURE_KINDS`) falls back to the template report, is named in its
:class:`ReportResult` and counted in :attr:`LLMReportWriter.failures`; one bad
record never stops :meth:`LLMReportWriter.write_all`.  A report that is not the
asked-for JSON, or that states a term of the clinical lexicon the metadata does
not support (:func:`aligner.reports.unfaithful_findings`), is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from acula.aligner.records import Record
from acula.aligner.reports import unfaithful_findings, write_template_report

SYSTEM_PROMPT = (
    "You are a clinician writing brief auscultation reports. Use only the facts given; never add a finding, "
    "diagnosis or symptom that is not listed. Describe sounds in plain clinical language."
)
USER_TEMPLATE = (
    "Write a concise clinical report (one to three sentences) for this {modality} recording.\n"
    "Metadata: {metadata}\n"
    'Answer with JSON only: {{"report": "<the report>"}}'
)
#: why a record got the template report instead of the model's: kind -> retried?
FAILURE_KINDS: dict[str, bool] = {
    "timeout": True,        # the socket idled past timeout_s or the request ran past deadline_s
    "network": True,        # connection refused or reset, DNS
    "truncated": True,      # the body ended before its Content-Length (http.client.IncompleteRead)
    "bad_status_line": True,  # not an HTTP response, or the connection closed before one
    "http_status": False,   # 4xx other than 429, 3xx; 429 and 5xx are retried first (retry=True)
    "too_large": False,     # body over max_response_bytes
    "bad_encoding": False,  # body is not UTF-8
    "bad_json": False,      # body is not JSON
    "bad_shape": False,     # JSON without choices[0].message.content as a string
    "malformed_answer": False,  # the content is not {"report": "..."}
    "unfaithful": False,    # the report states what the metadata does not support
    "unexpected": False,    # anything else raised while writing this record (named in the reason)
}


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0  # socket idle timeout (connect, each read)
    deadline_s: float | None = None  # whole request, connect to last byte; None: timeout_s
    max_response_bytes: int = 1 << 20
    max_retries: int = 3
    backoff_s: float = 0.5
    concurrency: int = 4
    temperature: float = 0.0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {self.base_url!r}")
        if self.timeout_s <= 0 or (self.deadline_s is not None and self.deadline_s <= 0):
            raise ValueError("timeout_s and deadline_s must be positive")
        if self.max_response_bytes <= 0 or self.max_retries < 0 or self.concurrency < 1:
            raise ValueError("max_response_bytes and concurrency must be positive, max_retries non-negative")


@dataclass(frozen=True)
class ReportResult:
    record_id: str
    text: str
    source: str  # "llm", "cache" or "template"
    fallback_reason: str | None = None
    failure: str | None = None  # a key of FAILURE_KINDS when source == "template"


class LLMError(RuntimeError):
    """A request that produced no usable answer; ``kind`` is a key of :data:`FAILURE_KINDS`."""

    def __init__(self, kind: str, message: str, retry: bool | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry = FAILURE_KINDS[kind] if retry is None else retry


def build_prompt(record: Record) -> str:
    meta = ", ".join(f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in sorted(record.metadata.items())
                     if k not in {"official_split", "fold", "database", "patient"})
    return USER_TEMPLATE.format(modality=record.modality, metadata=meta)


def parse_report(content: str) -> str:
    """Take the report out of the model's answer; raise ValueError if it is not the asked-for JSON."""
    stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", content.strip())
    data = json.loads(stripped)
    if not isinstance(data, dict) or not isinstance(data.get("report"), str) or not data["report"].strip():
        raise ValueError("answer JSON has no non-empty 'report' string")
    return data["report"].strip()


def answer_content(body: bytes) -> str:
    """``choices[0].message.content`` of a chat-completions response body; LLMError naming what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LLMError("bad_encoding", f"response is not UTF-8: {exc}") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LLMError("bad_json", f"response is not JSON: {exc}") from exc
    choices = payload.get("choices") if isinstance(payload, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LLMError("bad_shape", f"response has no choices[0].message.content string: {text[:200]!r}")
    return content


class LLMReportWriter:
    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.n_requests = 0
        self.n_cache_misses_unreadable = 0
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _cache_path(self, prompt: str) -> Path | None:
        if not self.cache_dir:
            return None
        key = hashlib.sha256(f"{self.config.model}\n{SYSTEM_PROMPT}\n{prompt}".encode()).hexdigest()
        return self.cache_dir / f"{key}.json"

    def _request_once(self, url: str, body: bytes, headers: dict[str, str]) -> bytes:
        """One POST under the socket timeout and the overall deadline; the body, at most max_response_bytes."""
        cfg = self.config
        parts = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "", parts.port, timeout=cfg.timeout_s)
        deadline_s = cfg.deadline_s if cfg.deadline_s is not None else cfg.timeout_s
        expired = threading.Event()

        def expire() -> None:  # unblocks a read that keeps getting a byte just inside the socket timeout
            expired.set()
            if conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(deadline_s, expire)
        timer.daemon = True
        timer.start()
        try:
            conn.request("POST", parts.path or "/", body, headers)
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > cfg.max_response_bytes:
                raise LLMError("too_large", f"response of {int(length):,} bytes is over the "
                                            f"{cfg.max_response_bytes:,}-byte cap")
            data = resp.read(cfg.max_response_bytes + 1)
            if len(data) > cfg.max_response_bytes:
                raise LLMError("too_large", f"response is over the {cfg.max_response_bytes:,}-byte cap")
            if length and length.isdigit() and len(data) < int(length):  # read(n) returns what came before EOF
                raise http.client.IncompleteRead(data, int(length) - len(data))
            if resp.status == 429 or resp.status >= 500:
                raise LLMError("http_status", f"HTTP {resp.status}", retry=True)
            if resp.status != 200:
                raise LLMError("http_status", f"HTTP {resp.status}: not retried")
            return data
        except LLMError:
            if expired.is_set():
                raise LLMError("timeout", f"no complete answer within the {deadline_s:g} s deadline") from None
            raise
        except http.client.IncompleteRead as exc:
            if expired.is_set():
                raise LLMError("timeout", f"no complete answer within the {deadline_s:g} s deadline") from exc
            raise LLMError("truncated", f"response cut off after {len(exc.partial)} bytes") from exc
        except http.client.BadStatusLine as exc:  # also RemoteDisconnected
            if expired.is_set():
                raise LLMError("timeout", f"no complete answer within the {deadline_s:g} s deadline") from exc
            raise LLMError("bad_status_line", f"not an HTTP response: {exc!r}") from exc
        except TimeoutError as exc:
            raise LLMError("timeout", f"no data for {cfg.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise LLMError("timeout", f"no complete answer within the {deadline_s:g} s deadline") from exc
            raise LLMError("network", f"{type(exc).__name__}: {exc}") from exc
        finally:
            timer.cancel()
            conn.close()

    def _post(self, prompt: str) -> str:
        cfg = self.config
        body = json.dumps({"model": cfg.model, "temperature": cfg.temperature,
                           "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        last: LLMError | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
            with self._lock:
                self.n_requests += 1
            try:
                return answer_content(self._request_once(url, body, headers))
            except LLMError as exc:
                last = exc
                if not exc.retry:
                    raise LLMError(exc.kind, f"{url}: {exc}") from exc
        assert last is not None
        raise LLMError(last.kind, f"{url} failed after {cfg.max_retries + 1} attempts: {last}")

    def _read_cache(self, cache: Path) -> str | None:
        """The cached accepted content, or None: absent, truncated or not ours (a miss, asked again)."""
        try:
            content = json.loads(cache.read_text(encoding="utf-8"))["content"]
            if isinstance(content, str):
                return content
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            pass
        with self._lock:
            self.n_cache_misses_unreadable += 1
        return None

    def _write_cache(self, cache: Path, prompt: str, content: str) -> None:
        tmp = cache.with_name(f"{cache.name}.{uuid.uuid4().hex}.tmp")  # unique per writer thread
        try:
            tmp.write_text(json.dumps({"model": self.config.model, "prompt": prompt, "content": content}),
                           encoding="utf-8")
            os.replace(tmp, cache)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache that cannot be written costs a request next time, nothing more

    def _accept(self, record: Record, content: str) -> str:
        """The report in ``content`` if it is well-formed and faithful to the record; LLMError otherwise."""
        try:
            report = parse_report(content)
        except ValueError as exc:
            raise LLMError("malformed_answer", f"malformed answer: {exc}") from exc
        problems = unfaithful_findings(report, record.metadata)
        if problems:
            raise LLMError("unfaithful", "unfaithful: " + "; ".join(problems))
        return report

    def write(self, record: Record) -> ReportResult:
        """The model's report for ``record``, or the template report with the failure named; never raises for
        what a server sends."""
        prompt = build_prompt(record)
        cache = self._cache_path(prompt)
        if cache is not None and (cached := self._read_cache(cache)) is not None:
            try:
                return ReportResult(record.record_id, self._accept(record, cached), "cache")
            except LLMError:
                pass  # accepted under older rules (an earlier lexicon): ask again
        try:
            content = self._post(prompt)
            report = self._accept(record, content)
        except LLMError as exc:
            reason = str(exc) if exc.kind in ("malformed_answer", "unfaithful") else f"request failed: {exc}"
            return self._fallback(record, exc.kind, reason)
        if cache is not None:
            self._write_cache(cache, prompt, content)
        return ReportResult(record.record_id, report, "llm")

    def _fallback(self, record: Record, kind: str, reason: str) -> ReportResult:
        with self._lock:
            self.failures[kind] += 1
        return ReportResult(record.record_id, write_template_report(record, self.seed), "template", reason, kind)

    def _write_safely(self, record: Record) -> ReportResult:
        try:
            return self.write(record)
        except Exception as exc:  # one record's surprise must not cost the other records their reports
            return self._fallback(record, "unexpected", f"{type(exc).__name__}: {exc}")

    def write_all(self, records: Sequence[Record], progress: bool = True) -> list[ReportResult]:
        """Reports for ``records`` in order; failures are per record (``failure``) and counted in ``failures``."""
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            results = pool.map(self._write_safely, records)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(records), desc="LLM reports", unit="report")
            return list(results)
