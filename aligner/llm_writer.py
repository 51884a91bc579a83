"""Reports written by a language model behind any OpenAI-compatible endpoint.

``POST {base_url}/chat/completions`` (a local vLLM or llama.cpp server, or a
hosted one) with a prompt in the style the AcuLa authors used: the metadata as
``Key: value`` pairs, and a request for a short clinical report as JSON
``{"report": "..."}``.  Requests run under a concurrency limit with a timeout and
retries with exponential backoff on 429/5xx and network errors.  Answers are
cached on disk keyed by model and prompt, so a rerun sends nothing.  A report
that is not valid JSON, or that names a finding the metadata lacks
(:func:`aligner.reports.unfaithful_findings`), is replaced by the template report.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aligner.records import Record
from aligner.reports import unfaithful_findings, write_template_report

SYSTEM_PROMPT = (
    "You are a clinician writing brief auscultation reports. Use only the facts given; never add a finding, "
    "diagnosis or symptom that is not listed. Describe sounds in plain clinical language."
)
USER_TEMPLATE = (
    "Write a concise clinical report (one to three sentences) for this {modality} recording.\n"
    "Metadata: {metadata}\n"
    'Answer with JSON only: {{"report": "<the report>"}}'
)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5
    concurrency: int = 4
    temperature: float = 0.0
    cache_dir: str | None = None


@dataclass(frozen=True)
class ReportResult:
    record_id: str
    text: str
    source: str  # "llm", "cache" or "template"
    fallback_reason: str | None = None


class LLMError(RuntimeError):
    pass


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


class LLMReportWriter:
    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.n_requests = 0
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _cache_path(self, prompt: str) -> Path | None:
        if not self.cache_dir:
            return None
        key = hashlib.sha256(f"{self.config.model}\n{SYSTEM_PROMPT}\n{prompt}".encode()).hexdigest()
        return self.cache_dir / f"{key}.json"

    def _post(self, prompt: str) -> str:
        cfg = self.config
        body = json.dumps({"model": cfg.model, "temperature": cfg.temperature,
                           "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        last: Exception | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
            self.n_requests += 1
            try:
                with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=cfg.timeout_s) as resp:
                    payload = json.loads(resp.read().decode())
                return str(payload["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code != 429 and exc.code < 500:
                    raise LLMError(f"HTTP {exc.code} from {url}: not retried") from exc
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = exc
            except (KeyError, IndexError, json.JSONDecodeError) as exc:
                raise LLMError(f"unexpected response shape from {url}: {exc}") from exc
        raise LLMError(f"{url} failed after {cfg.max_retries + 1} attempts: {last}")

    def write(self, record: Record) -> ReportResult:
        prompt = build_prompt(record)
        cache = self._cache_path(prompt)
        source = "llm"
        if cache is not None and cache.is_file():
            content, source = json.loads(cache.read_text())["content"], "cache"
        else:
            try:
                content = self._post(prompt)
            except LLMError as exc:
                return self._fallback(record, f"request failed: {exc}")
            if cache is not None:
                tmp = cache.with_suffix(f".{uuid.uuid4().hex}.tmp")  # unique per writer thread
                tmp.write_text(json.dumps({"model": self.config.model, "prompt": prompt, "content": content}))
                tmp.replace(cache)
        try:
            report = parse_report(content)
        except ValueError as exc:
            return self._fallback(record, f"malformed answer: {exc}")
        problems = unfaithful_findings(report, record.metadata)
        if problems:
            return self._fallback(record, "unfaithful: " + "; ".join(problems))
        return ReportResult(record.record_id, report, source)

    def _fallback(self, record: Record, reason: str) -> ReportResult:
        return ReportResult(record.record_id, write_template_report(record, self.seed), "template", reason)

    def write_all(self, records: Sequence[Record], progress: bool = True) -> list[ReportResult]:
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            results = pool.map(self.write, records)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(records), desc="LLM reports", unit="report")
            return list(results)
