"""The LLM report writer against a real HTTP server on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from acula.aligner.llm_writer import LLMConfig, LLMReportWriter, build_prompt, parse_report
from acula.aligner.records import Record
from acula.aligner.reports import write_template_report

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


# --- hostile servers: every failure is a typed, counted fallback for its record, never an exception ---------

class RawServer:
    """A loopback TCP server answering each POST with whatever bytes ``respond(sock, request_body)`` writes,
    so tests can send what no well-behaved HTTP server would: bad status lines, short bodies, drips."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.n_connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.n_connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += conn.recv(65536)
            try:
                self.respond(conn, json.loads(body))
            except OSError:  # the client gave up (deadline, size cap): stop sending
                pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def http_response(body: bytes, status: str = "200 OK", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def answer(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


@pytest.fixture
def raw():
    servers: list[RawServer] = []

    def start(respond) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


BAD_BODIES = {
    "json_list": (http_response(b'[{"message": {"content": "x"}}]'), "bad_shape"),
    "choices_null": (http_response(b'{"choices": null}'), "bad_shape"),
    "content_null": (http_response(b'{"choices": [{"message": {"content": null}}]}'), "bad_shape"),
    "invalid_utf8": (http_response(b'{"choices": [{"message": {"content": "\xff\xfe caf\xe9"}}]}'), "bad_encoding"),
    "not_json": (http_response(b"<html>502 Bad Gateway</html>"), "bad_json"),
    "truncated_body": (http_response(b'{"choices": [', length=500), "truncated"),
    "bad_status_line": (b"garbage that is not HTTP\r\n\r\n", "bad_status_line"),
    "closed_without_answer": (b"", "bad_status_line"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_hostile_response_becomes_a_typed_counted_fallback(raw, tmp_path: Path, case: str):
    payload, kind = BAD_BODIES[case]
    server = raw(lambda conn, _req: conn.sendall(payload))
    w = writer(server.url, tmp_path, max_retries=1)
    result = w.write(RECORD)
    assert (result.source, result.failure) == ("template", kind)
    assert result.text == write_template_report(RECORD)
    assert w.failures == {kind: 1}
    retried = kind in ("truncated", "bad_status_line")  # a cut-off exchange is transient; a bad body is not
    assert server.n_connections == (2 if retried else 1)
    assert not list((tmp_path / "cache").iterdir())  # nothing cached


def test_write_all_continues_past_failing_records_and_counts_them(raw, tmp_path: Path):
    def respond(conn, req):
        prompt = req["messages"][1]["content"]
        age = int(re.search(r"Age: (\d+)", prompt).group(1))
        bodies = {21: b'{"choices": null}', 23: b"\xff\xfe", 24: b"[]"}
        conn.sendall(http_response(bodies.get(age, answer(json.dumps({"report": "Crackles are heard."})))))

    server = raw(respond)
    records = [Record(f"r{i}", "d", "p", "lung", f"g{i}", {"crackles": 1, "age": 20 + i}) for i in range(6)]
    w = writer(server.url, tmp_path, concurrency=3, max_retries=0)
    results = w.write_all(records, progress=False)
    assert [r.record_id for r in results] == [r.record_id for r in records]
    assert [r.failure for r in results] == [None, "bad_shape", None, "bad_encoding", "bad_shape", None]
    assert w.failures == {"bad_shape": 2, "bad_encoding": 1}


def test_a_dripping_server_cannot_hold_a_request_past_its_deadline(raw, tmp_path: Path):
    def drip(conn, _req):
        for byte in http_response(answer(GOOD)):
            conn.sendall(bytes([byte]))
            time.sleep(0.5)  # always inside the 2 s socket timeout: only a deadline stops it

    server = raw(drip)
    t0 = time.monotonic()
    result = writer(server.url, tmp_path, timeout_s=2.0, max_retries=0).write(RECORD)
    elapsed_s = time.monotonic() - t0
    assert (result.source, result.failure) == ("template", "timeout")
    assert elapsed_s < 4.0, f"the request ran {elapsed_s:.1f} s under a 2 s timeout"


def test_the_deadline_can_be_longer_than_the_socket_timeout(raw, tmp_path: Path):
    def slow_headers(conn, _req):
        for part in (b"HTTP/1.1 200 OK\r\n", http_response(answer(GOOD))[17:]):
            time.sleep(0.3)
            conn.sendall(part)

    server = raw(slow_headers)
    result = writer(server.url, tmp_path, timeout_s=0.5, deadline_s=3.0, max_retries=0).write(RECORD)
    assert result.source == "llm"


@pytest.mark.parametrize("announce_length", [True, False])
def test_a_huge_body_is_refused_after_the_cap_and_not_cached(raw, tmp_path: Path, announce_length: bool):
    def huge(conn, _req):
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 300000000\r\n" if announce_length else "Connection: close\r\n"
        conn.sendall(head.encode() + b"\r\n" + b'{"choices": [{"message": {"content": "')
        chunk = b"x" * 65536
        for _ in range(300_000_000 // len(chunk)):  # 300 MB unless the client hangs up first
            conn.sendall(chunk)

    server = raw(huge)
    t0 = time.monotonic()
    w = writer(server.url, tmp_path, max_response_bytes=1 << 20, max_retries=0, timeout_s=10.0)
    result = w.write(RECORD)
    assert (result.source, result.failure) == ("template", "too_large")
    assert time.monotonic() - t0 < 5.0
    assert not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("first", ["Sure! Crackles.", json.dumps({"report": "Crackles; tuberculosis likely."})])
def test_refused_answers_are_not_cached_so_a_rerun_asks_again(llm: FakeLLM, tmp_path: Path, first: str):
    llm.script = [(200, first, 0.0), (200, GOOD, 0.0)]
    assert writer(llm.url, tmp_path).write(RECORD).source == "template"
    again = writer(llm.url, tmp_path).write(RECORD)
    assert again.source == "llm" and len(llm.requests) == 2
    assert writer(llm.url, tmp_path).write(RECORD).source == "cache"


def test_a_truncated_cache_file_is_a_miss_and_is_rewritten_whole(llm: FakeLLM, tmp_path: Path):
    llm.script = [(200, GOOD, 0.0), (200, GOOD, 0.0)]
    writer(llm.url, tmp_path).write(RECORD)
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(cached.read_bytes()[:20])  # a crash mid-write by an older version, a full disk
    w = writer(llm.url, tmp_path)
    assert w.write(RECORD).source == "llm" and w.n_cache_misses_unreadable == 1
    assert json.loads(cached.read_text())["content"] == GOOD
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached.name]  # no temporary files left


def test_unfaithful_clinical_terms_from_the_lexicon_are_refused(llm: FakeLLM, tmp_path: Path):
    record = Record("icbhi/r/c01", "icbhi", "r.flac", "lung", "icbhi:1", {"crackles": 0, "wheezes": 1,
                                                                           "diagnosis": "COPD"})
    for term in ("Fine rales at both bases.", "Rhonchi are heard.", "Suspicious for lung cancer.",
                 "Consistent with tuberculosis.", "Signs of heart failure."):
        llm.script = [(200, json.dumps({"report": f"Wheezes are heard. {term}"}), 0.0)]
        result = writer(llm.url, tmp_path).write(record)
        assert (result.source, result.failure) == ("template", "unfaithful"), term
