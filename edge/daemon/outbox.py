"""Durable event outbox in SQLite.

Every event is INSERTed (and committed) before any publish is attempted, and DELETEd
only after the broker acknowledged it (QoS 1 PUBACK). Rows are delivered in ``seq``
order (AUTOINCREMENT, never reused), so order survives restarts.

Trade-offs:
* WAL + ``synchronous=FULL`` (default): each commit is fsynced, so a power cut right after
  a decision still keeps the event. Events are rare (a few per minute at most), so the
  fsync cost (~ms on an SD card) is irrelevant. ``NORMAL`` in WAL mode may lose the last
  transactions on power loss (never corrupts) and is offered for worn SD cards.
* Bounded: beyond ``max_rows`` the oldest rows are dropped and counted (``dropped``),
  because an unbounded queue on a Pi's SD card is worse than losing week-old events.
* Disk full / I/O errors: the event is kept in a bounded in-memory queue and retried on
  the next flush, counted in ``write_errors``; it is never silently lost while the
  process lives.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class Outbox:
    def __init__(
        self,
        path: str | Path,
        max_rows: int = 10000,
        memory_max: int = 1000,
        synchronous: str = "FULL",
    ) -> None:
        self.path = str(path)
        self.max_rows = max_rows
        self.memory_max = memory_max
        self.dropped = 0
        self.write_errors = 0
        self._pending: collections.deque[tuple[str, str, str]] = collections.deque()
        self._mem_seq = 0
        self._lock = threading.RLock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " event_id TEXT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        if self.path != ":memory:":
            with contextlib.suppress(OSError):
                Path(self.path).chmod(0o600)

    def _insert(self, event_id: str, topic: str, payload: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO outbox(event_id, topic, payload) VALUES (?,?,?)",
                    (event_id, topic, payload),
                )
                (n,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
                if n > self.max_rows:
                    excess = n - self.max_rows
                    self._db.execute(
                        "DELETE FROM outbox WHERE seq IN "
                        "(SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                        (excess,),
                    )
                    self.dropped += excess
                    log.warning("outbox full (%d rows): dropped %d oldest", self.max_rows, excess)
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite already rolled back on SQLITE_FULL; don't mask the real error.
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def _flush_pending(self) -> None:
        while self._pending:
            self._insert(*self._pending[0])
            self._pending.popleft()

    def put(self, event_id: str, topic: str, payload: str) -> bool:
        """Store an event durably; returns False when it is only held in memory (disk error)."""
        with self._lock:
            self._pending.append((event_id, topic, payload))
            try:
                self._flush_pending()
                return True
            except sqlite3.Error as e:
                self.write_errors += 1
                while len(self._pending) > self.memory_max:
                    self._pending.popleft()
                    self.dropped += 1
                log.error(
                    "outbox write failed (%s); %d event(s) held in memory", e, len(self._pending)
                )
                return False

    def peek(self, limit: int = 1) -> list[tuple[int, str, str, str]]:
        """Oldest rows (seq, event_id, topic, payload); retries any memory-held events first."""
        with self._lock:
            if self._pending:
                try:
                    self._flush_pending()
                except sqlite3.Error as e:
                    self.write_errors += 1
                    log.error("outbox write still failing: %s", e)
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            if not rows and self._pending:
                # Disk still failing: deliver from memory (negative seq marks memory rows).
                return [(-1, *self._pending[0])]
            return rows

    def ack(self, seq: int) -> None:
        """Remove a delivered row."""
        with self._lock:
            if seq < 0:
                if self._pending:
                    self._pending.popleft()
                return
            try:
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            except sqlite3.Error as e:
                # Not deleting means a duplicate after restart; consumers dedupe by event id.
                self.write_errors += 1
                log.error("outbox delete failed: %s", e)

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            return int(n) + len(self._pending)

    def close(self) -> None:
        with self._lock:
            self._db.close()
