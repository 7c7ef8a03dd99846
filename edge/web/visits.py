"""The visits the daemon decided, with their decisive face crops: one SQLite file, purged.

One row per visit (``visit_id``): an upgrade (``unknown`` then ``recognized``, see
docs/MQTT.md) replaces the row, so the page shows what the visit finally was. A row keeps the
decisive face as the aligned crop the model embedded (PNG: lossless, since naming an unknown
face enrols exactly these pixels) and its embedding (to group unknown faces without
re-embedding; tagged with the model that made it). What a person did with it is kept too:
``named`` (enrolled as this person) and ``not_person`` (marked "not <person>").

Privacy: rows older than ``retention_days`` are never read, and are deleted (at most once a
minute on any use, and by the recorder when idle) with SQLite's ``secure_delete`` so deleted crops are
overwritten in the file rather than left in free pages. The file is created with mode 0600.
One connection behind a lock: the recorder thread writes, the web threads read.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ConfigError

PURGE_EVERY_S = 60.0
MAX_LIST = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    visit_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    person TEXT,
    score REAL NOT NULL,
    confidence REAL,
    camera TEXT NOT NULL,
    model_id TEXT NOT NULL,
    crop BLOB NOT NULL,
    embedding BLOB NOT NULL,
    named TEXT,
    not_person TEXT
);
CREATE INDEX IF NOT EXISTS visits_ts ON visits (ts);
"""
_COLUMNS = (
    "visit_id, event_id, ts, type, person, score, confidence, camera, model_id, named, not_person"
)


@dataclass(frozen=True)
class Visit:
    visit_id: str
    event_id: str
    ts: float  # when the visit's latest decision was made (epoch seconds)
    type: str  # "recognized" | "unknown"
    person: str | None
    score: float
    confidence: float | None
    camera: str
    model_id: str
    named: str | None  # enrolled as this person from the web app
    not_person: str | None  # marked "not <person>"

    def to_json(self) -> dict:
        return {
            "visit_id": self.visit_id,
            "event_id": self.event_id,
            "time": self.ts,
            "type": self.type,
            "person": self.person,
            "score": round(self.score, 4),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "camera": self.camera,
            "named": self.named,
            "not_person": self.not_person,
        }


@dataclass(frozen=True)
class Face:
    """A visit's decisive face: the crop the model embedded (PNG) and its embedding."""

    visit_id: str
    png: bytes
    embedding: np.ndarray
    model_id: str


class VisitStore:
    def __init__(self, path: str | Path, retention_days: float) -> None:
        self.path = Path(path)
        self.retention_s = retention_days * 86400.0
        self._lock = threading.Lock()
        self._purged = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"web.visits: cannot open {self.path}: {exc}") from None
        self.purge()

    # -- writing ---------------------------------------------------------------------------
    def record(self, ev: dict, confidence: float | None, png: bytes, embedding: np.ndarray) -> None:
        """Store (or, for an upgrade, replace) the visit of event ``ev`` (docs/MQTT.md)."""
        row = (
            ev["visit_id"],
            ev["id"],
            _epoch(ev["timestamp"]),
            ev["type"],
            ev["person"],
            float(ev["score"]),
            confidence,
            ev.get("camera", ""),
            ev.get("model_id", ""),
            png,
            np.asarray(embedding, np.float32).tobytes(),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO visits (visit_id, event_id, ts, type, person, score, confidence, "
                "camera, model_id, crop, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (visit_id) DO UPDATE SET event_id=excluded.event_id, "
                "ts=excluded.ts, type=excluded.type, person=excluded.person, "
                "score=excluded.score, confidence=excluded.confidence, crop=excluded.crop, "
                "embedding=excluded.embedding, model_id=excluded.model_id",
                row,
            )
            self._db.commit()
        self.maybe_purge()

    def mark_named(self, visit_ids: list[str], name: str) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE visits SET named = ? WHERE visit_id = ?", [(name, v) for v in visit_ids]
            )
            self._db.commit()

    def mark_not(self, visit_id: str, name: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE visits SET not_person = ? WHERE visit_id = ?", (name, visit_id)
            )
            self._db.commit()

    def purge(self, now: float | None = None) -> int:
        """Delete visits past the retention; returns how many went."""
        now = time.time() if now is None else now
        with self._lock:
            cur = self._db.execute("DELETE FROM visits WHERE ts < ?", (now - self.retention_s,))
            self._db.commit()
            self._purged = time.monotonic()
            return cur.rowcount

    def maybe_purge(self) -> None:
        if time.monotonic() - self._purged >= PURGE_EVERY_S:
            self.purge()

    # -- reading ---------------------------------------------------------------------------
    def recent(
        self, person: str | None = None, unknown: bool = False, limit: int = 100
    ) -> list[Visit]:
        """Newest first; only ``person``'s visits, or only unknown ones, when asked."""
        self.maybe_purge()
        where, args = "ts >= ?", [self._cutoff()]
        if unknown:
            where += " AND type = 'unknown'"
        elif person is not None:
            where, args = where + " AND person = ?", [*args, person]
        sql = f"SELECT {_COLUMNS} FROM visits WHERE {where} ORDER BY ts DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, max(1, min(limit, MAX_LIST))]).fetchall()
        return [Visit(*row) for row in rows]

    def get(self, visit_id: str) -> Visit | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM visits WHERE visit_id = ? AND ts >= ?",
                (visit_id, self._cutoff()),
            ).fetchone()
        return Visit(*row) if row else None

    def crop_png(self, visit_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT crop FROM visits WHERE visit_id = ? AND ts >= ?",
                (visit_id, self._cutoff()),
            ).fetchone()
        return bytes(row[0]) if row else None

    def faces(self, visit_ids: list[str]) -> list[Face]:
        """The decisive faces of these visits (unknown ids are left out)."""
        with self._lock:
            rows = [
                self._db.execute(
                    "SELECT visit_id, crop, embedding, model_id FROM visits "
                    "WHERE visit_id = ? AND ts >= ?",
                    (v, self._cutoff()),
                ).fetchone()
                for v in dict.fromkeys(visit_ids)
            ]
        return [Face(r[0], bytes(r[1]), np.frombuffer(r[2], np.float32), r[3]) for r in rows if r]

    def unnamed_unknown(self, model_id: str, limit: int = MAX_LIST) -> list[Face]:
        """Unknown visits nobody has named yet, newest first, with embeddings of ``model_id``."""
        self.maybe_purge()
        with self._lock:
            rows = self._db.execute(
                "SELECT visit_id, crop, embedding, model_id FROM visits WHERE type = 'unknown' "
                "AND named IS NULL AND model_id = ? AND ts >= ? ORDER BY ts DESC LIMIT ?",
                (model_id, self._cutoff(), limit),
            ).fetchall()
        return [Face(r[0], bytes(r[1]), np.frombuffer(r[2], np.float32), r[3]) for r in rows]

    def _cutoff(self) -> float:
        return time.time() - self.retention_s

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()
