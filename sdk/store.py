"""Sessions and events in SQLite (WAL): crash-safe, one commit per event batch.

A session is closed by :meth:`EventStore.end_session`, which records its
duration.  A process that dies first (power loss, kill, crash) leaves the
session open with no duration; :meth:`EventStore.summaries` then takes its end
as the later of its last event and its last heartbeat (``heartbeat_s``, seconds
of audio seen, written by :meth:`EventStore.heartbeat` while capturing) and
marks it ``closed=False``, so a report neither divides by zero nor hides it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from acula.sdk.screening import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, started_unix REAL NOT NULL, ended_unix REAL, source TEXT, bundle TEXT,
    sample_rate_hz INTEGER, duration_s REAL, samples_dropped INTEGER DEFAULT 0, note TEXT, heartbeat_s REAL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id), kind TEXT NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL, confidence REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, start_s);
"""


class StoreError(ValueError):
    """The path is not a usable event store (not SQLite, not ours, or not writable); the message says which."""


class EventStore:
    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """Open (``read_only=False``: create if missing) the event store at ``path``.  Raises
        :class:`StoreError` with a sentence when the file is not an event store or cannot be written."""
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not an event store")
        if read_only and not self.path.is_file():
            raise StoreError(f"no event store at {self.path}")
        try:
            self.db = self._connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._explain(exc)) from exc

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            # mode=ro still needs the -shm file of a WAL database; immutable=1 reads a copy on read-only media
            for flags in ("mode=ro", "immutable=1"):
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True)
                try:
                    self._check_schema(db)
                    return db
                except sqlite3.OperationalError:
                    db.close()
                    if flags == "immutable=1":
                        raise
            raise AssertionError("unreachable")
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
            if "heartbeat_s" not in columns:  # a store written before heartbeats existed
                db.execute("ALTER TABLE sessions ADD COLUMN heartbeat_s REAL")
            self._check_schema(db)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _check_schema(self, db: sqlite3.Connection) -> None:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"sessions", "events"} <= tables:
            raise StoreError(f"{self.path} is an SQLite database but not an acula event store "
                             f"(tables {sorted(tables)}; expected sessions and events)")

    def _explain(self, exc: sqlite3.DatabaseError) -> str:
        msg = str(exc)
        if "not a database" in msg:
            return f"{self.path} is not an event store (not an SQLite database: {msg})"
        if self.read_only and "unable to open" in msg:
            return f"cannot read the event store {self.path} ({msg}); check its permissions"
        if "readonly" in msg or "unable to open" in msg:
            return (f"cannot write the event store {self.path} ({msg}); check its permissions and those of its "
                    "folder, or pass another path")
        return f"{self.path}: {msg}"

    def _write(self, sql: str, args: Any, many: bool = False) -> sqlite3.Cursor:
        try:
            with self.db:
                return self.db.executemany(sql, args) if many else self.db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            raise StoreError(self._explain(exc)) from exc

    def start_session(self, source: str, bundle: str, sample_rate_hz: int) -> int:
        cur = self._write("INSERT INTO sessions (started_unix, source, bundle, sample_rate_hz) VALUES (?, ?, ?, ?)",
                          (time.time(), source, bundle, sample_rate_hz))
        return int(cur.lastrowid or 0)

    def add_events(self, session_id: int, events: list[Event]) -> None:
        if events:
            self._write("INSERT INTO events (session_id, kind, start_s, end_s, confidence) VALUES (?, ?, ?, ?, ?)",
                        [(session_id, e.kind, e.start_s, e.end_s, e.confidence) for e in events], many=True)

    def heartbeat(self, session_id: int, elapsed_s: float) -> None:
        """Record that the session was alive ``elapsed_s`` seconds of audio in: its end if it is never closed."""
        self._write("UPDATE sessions SET heartbeat_s=? WHERE id=?", (elapsed_s, session_id))

    def end_session(self, session_id: int, duration_s: float, samples_dropped: int = 0, note: str = "") -> None:
        self._write("UPDATE sessions SET ended_unix=?, duration_s=?, heartbeat_s=?, samples_dropped=?, note=? "
                    "WHERE id=?", (time.time(), duration_s, duration_s, samples_dropped, note, session_id))

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

    def summaries(self) -> list[dict[str, Any]]:
        """One row per session: ``id``, ``closed``, ``duration_s`` (recorded, or for an unclosed session the
        later of its last event end and last heartbeat; 0.0 when it has neither), ``n_events`` and
        ``events_per_hour`` (None when the duration is 0: a rate over no time is not a number to plot)."""
        rows = []
        for s in self.sessions():
            evs = self.events(s["id"])
            closed = s["ended_unix"] is not None and s["duration_s"] is not None
            if closed:
                duration_s = float(s["duration_s"])
            else:
                duration_s = max([float(s.get("heartbeat_s") or 0.0)] + [float(e["end_s"]) for e in evs])
            rate = len(evs) / duration_s * 3600 if duration_s > 0 else None
            rows.append({"id": s["id"], "closed": closed, "duration_s": duration_s, "n_events": len(evs),
                         "events_per_hour": rate})
        return rows

    def close(self) -> None:
        self.db.close()
