"""The LLM report writer against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aligner.llm_writer import LLMConfig, LLMReportWriter, build_prompt, parse_report
from aligner.records import Record
from aligner.reports import write_template_report

RECORD = Record("icbhi/r/c00", "icbhi", "r.flac", "lung", "icbhi:1", {"crackles": 1, "wheezes": 0,
                                                                         "diagnosis": "COPD"})


class FakeLLM:
    """Answers from a script: each entry is (status, content or None, delay_s)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str | None, float]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body})
                status, content, delay = fake.script.pop(0) if fake.script else (500, None, 0.0)
                time.sleep(delay)
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


def writer(url: str, tmp_path: Path, **kw) -> LLMReportWriter:
    cfg = dict(base_url=url, model="test-model", timeout_s=2.0, max_retries=2, backoff_s=0.01,
               cache_dir=str(tmp_path / "cache"))
    cfg.update(kw)
    return LLMReportWriter(LLMConfig(**cfg))


GOOD = json.dumps({"report": "Coarse crackles are heard; no wheezes. Known COPD."})


def test_success_sends_the_metadata_and_returns_the_report(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, GOOD, 0.0)]
    result = writer(llm.url, tmp_path).write(RECORD)
    assert (result.source, result.text) == ("llm", "Coarse crackles are heard; no wheezes. Known COPD.")
    assert llm.requests[0]["path"] == "/v1/chat/completions"
    assert llm.requests[0]["body"]["model"] == "test-model"
    assert "Crackles: 1" in llm.requests[0]["body"]["messages"][1]["content"]


def test_cache_hit_sends_no_second_request(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, GOOD, 0.0)]
    writer(llm.url, tmp_path).write(RECORD)
    again = writer(llm.url, tmp_path).write(RECORD)
    assert again.source == "cache" and len(llm.requests) == 1


def test_retry_after_500_then_success(llm: FakeLLM, tmp_path: Path):
    llm.script = [(500, None, 0.0), (503, None, 0.0), (200, GOOD, 0.0)]
    w = writer(llm.url, tmp_path)
    assert w.write(RECORD).source == "llm"
    assert len(llm.requests) == 3 and w.n_requests == 3


def test_timeout_exhausts_retries_and_falls_back_to_the_template(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, GOOD, 1.0)] * 3
    result = writer(llm.url, tmp_path, timeout_s=0.2, max_retries=1).write(RECORD)
    assert result.source == "template" and "request failed" in (result.fallback_reason or "")
    assert result.text == write_template_report(RECORD)


def test_client_error_is_not_retried(llm: FakeLLM, tmp_path: Path):
    llm.script = [(400, None, 0.0)]
    result = writer(llm.url, tmp_path).write(RECORD)
    assert result.source == "template" and len(llm.requests) == 1


def test_malformed_json_falls_back(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, "Sure! Here is the report: crackles.", 0.0)]
    result = writer(llm.url, tmp_path).write(RECORD)
    assert result.source == "template" and "malformed" in (result.fallback_reason or "")


def test_unfaithful_report_is_rejected(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, json.dumps({"report": "Crackles and wheezes consistent with pneumonia."}), 0.0)]
    result = writer(llm.url, tmp_path).write(RECORD)
    assert result.source == "template"
    assert "unfaithful" in (result.fallback_reason or "") and "wheez" in (result.fallback_reason or "")


def test_write_all_respects_order_under_concurrency(llm: FakeLLM, tmp_path: Path):
    records = [Record(f"r{i}", "d", "p", "lung", f"g{i}", {"crackles": 1, "age": 20 + i}) for i in range(6)]
    llm.script = [(200, json.dumps({"report": "Crackles are heard."}), 0.0)] * 6
    results = writer(llm.url, tmp_path, concurrency=3).write_all(records, progress=False)
    assert [r.record_id for r in results] == [r.record_id for r in records]
    assert all(r.source == "llm" for r in results) and len(llm.requests) == 6


def test_prompt_and_parser():
    assert "Diagnosis: COPD" in build_prompt(RECORD)
    assert parse_report('```json\n{"report": "x"}\n```') == "x"
    with pytest.raises(ValueError):
        parse_report('{"text": "x"}')
