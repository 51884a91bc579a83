"""Sessions and events in SQLite (WAL): crash-safe, one commit per event batch."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sdk.screening import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, started_unix REAL NOT NULL, ended_unix REAL, source TEXT, bundle TEXT,
    sample_rate_hz INTEGER, duration_s REAL, samples_dropped INTEGER DEFAULT 0, note TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id), kind TEXT NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL, confidence REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, start_s);
"""


class EventStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def start_session(self, source: str, bundle: str, sample_rate_hz: int) -> int:
        with self.db:
            cur = self.db.execute("INSERT INTO sessions (started_unix, source, bundle, sample_rate_hz) "
                                  "VALUES (?, ?, ?, ?)", (time.time(), source, bundle, sample_rate_hz))
        return int(cur.lastrowid or 0)

    def add_events(self, session_id: int, events: list[Event]) -> None:
        if events:
            with self.db:
                self.db.executemany("INSERT INTO events (session_id, kind, start_s, end_s, confidence) "
                                    "VALUES (?, ?, ?, ?, ?)",
                                    [(session_id, e.kind, e.start_s, e.end_s, e.confidence) for e in events])

    def end_session(self, session_id: int, duration_s: float, samples_dropped: int = 0, note: str = "") -> None:
        with self.db:
            self.db.execute("UPDATE sessions SET ended_unix=?, duration_s=?, samples_dropped=?, note=? WHERE id=?",
                            (time.time(), duration_s, samples_dropped, note, session_id))

    def sessions(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM sessions ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def events(self, session_id: int | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM events"
        args: tuple[int, ...] = ()
        if session_id is not None:
            q, args = q + " WHERE session_id=?", (session_id,)
        cur = self.db.execute(q + " ORDER BY session_id, start_s", args)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self.db.close()
