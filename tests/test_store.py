"""The SQLite event store: sessions a crash left open, read-only stores, files that are no store."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from acula.sdk.screening import Event
from acula.sdk.store import EventStore, StoreError


def test_an_unclosed_session_ends_at_its_last_event_or_heartbeat_and_is_flagged(tmp_path: Path):
    store = EventStore(tmp_path / "e.sqlite")
    crashed = store.start_session("test", "toy", 16000)
    store.add_events(crashed, [Event("cough", 1.0, 1.5, 0.9), Event("cough", 30.0, 30.5, 0.8)])
    beat_only = store.start_session("test", "toy", 16000)
    store.heartbeat(beat_only, 42.0)
    empty = store.start_session("test", "toy", 16000)
    closed = store.start_session("test", "toy", 16000)
    store.add_events(closed, [Event("cough", 1.0, 1.5, 0.9)])
    store.end_session(closed, 60.0)
    store.close()  # the process dies here: three sessions were never ended
    rows = {r["id"]: r for r in EventStore(tmp_path / "e.sqlite", read_only=True).summaries()}
    assert (rows[crashed]["closed"], rows[crashed]["duration_s"]) == (False, 30.5)
    assert rows[crashed]["events_per_hour"] == pytest.approx(2 / 30.5 * 3600)
    assert (rows[beat_only]["closed"], rows[beat_only]["duration_s"], rows[beat_only]["events_per_hour"]) == (
        False, 42.0, 0.0)
    assert (rows[empty]["duration_s"], rows[empty]["events_per_hour"]) == (0.0, None)  # no 3.6e13 coughs/h
    assert (rows[closed]["closed"], rows[closed]["events_per_hour"]) == (True, 60.0)


def test_a_store_written_before_heartbeats_existed_opens_and_gains_the_column(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.executescript("CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_unix REAL NOT NULL, ended_unix REAL, "
                     "source TEXT, bundle TEXT, sample_rate_hz INTEGER, duration_s REAL, samples_dropped INTEGER "
                     "DEFAULT 0, note TEXT); CREATE TABLE events (id INTEGER PRIMARY KEY, session_id INTEGER NOT "
                     "NULL, kind TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, confidence REAL NOT "
                     "NULL); INSERT INTO sessions (started_unix) VALUES (1.0); "
                     "INSERT INTO events (session_id, kind, start_s, end_s, confidence) VALUES (1, 'cough', 2, 3, 1)")
    db.commit()
    db.close()
    assert EventStore(tmp_path / "old.sqlite", read_only=True).summaries()[0]["duration_s"] == 3.0
    store = EventStore(tmp_path / "old.sqlite")
    store.heartbeat(1, 9.0)
    assert store.summaries()[0]["duration_s"] == 9.0


@pytest.mark.parametrize("content", [b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200), b"not a database at all" * 50])
def test_a_file_that_is_not_sqlite_is_refused_with_a_sentence(tmp_path: Path, content: bytes):
    path = tmp_path / "recording.wav"
    path.write_bytes(content)
    for read_only in (True, False):
        with pytest.raises(StoreError, match="is not an event store"):
            EventStore(path, read_only=read_only)


def test_an_sqlite_database_of_another_program_is_refused(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "other.sqlite")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an acula event store"):
        EventStore(tmp_path / "other.sqlite", read_only=True)


def test_read_only_store_never_writes_and_refuses_writes_with_a_sentence(tmp_path: Path):
    EventStore(tmp_path / "e.sqlite").close()
    before = (tmp_path / "e.sqlite").read_bytes()
    store = EventStore(tmp_path / "e.sqlite", read_only=True)
    with pytest.raises(StoreError, match="cannot write"):
        store.start_session("test", "toy", 16000)
    store.close()
    assert (tmp_path / "e.sqlite").read_bytes() == before


def test_an_unwritable_path_is_refused_with_a_sentence(tmp_path: Path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(StoreError, match="cannot write"):
        EventStore(tmp_path / "a_file" / "e.sqlite")
    with pytest.raises(StoreError, match="is a directory"):
        EventStore(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="file modes do not bind root")
def test_a_store_on_read_only_files_can_be_read(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = EventStore(folder / "e.sqlite")
    store.add_events(store.start_session("test", "toy", 16000), [Event("cough", 1.0, 1.5, 0.9)])
    store.close()
    for p in folder.iterdir():
        p.chmod(0o444)
    folder.chmod(0o555)
    try:
        assert EventStore(folder / "e.sqlite", read_only=True).summaries()[0]["n_events"] == 1
        with pytest.raises(StoreError, match="cannot write"):
            EventStore(folder / "e.sqlite").start_session("test", "toy", 16000)
    finally:
        folder.chmod(0o755)
