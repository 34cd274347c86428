"""Level 2 without Redis: one SQLite database on local disk, shared by every process on the machine.

gunicorn forks its workers, so this store must be shared between processes and survive a restart;
SQLite in WAL mode gives both with the standard library alone. The tables mirror the Redis key
layout of :mod:`middleware.store.base` (see the comments on each table). Expiries are absolute wall
clock times, enforced on read (expired means absent) and purged lazily. Blob bytes are bounded by
``max_bytes``: after an insert that crosses it, the least recently accessed blobs go first.

Every operation that writes runs in one ``BEGIN IMMEDIATE`` transaction, so other processes never
see half of it and a read never has to upgrade its lock (which SQLite may refuse under contention).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Mapping

from .base import ResourceMeta

FILENAME = "level2.sqlite3"
SCHEMA_VERSION = 1
PURGE_EVERY = 60.0  # seconds between sweeps of expired rows, per process
SETUP_TIMEOUT = 10.0  # first connection of a process: creating the schema may wait for others

_SCHEMA = """
-- cb:b:<sha256>. body is the last column so that reading the others never touches its pages.
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    expires  REAL NOT NULL,
    accessed REAL NOT NULL,
    body     BLOB NOT NULL
);
CREATE INDEX blobs_lru ON blobs (accessed, size);
-- The lifetime of cb:i:<sid> and cb:h:<sid>, which are always set and refreshed together.
CREATE TABLE resource_sets (sid TEXT PRIMARY KEY, expires REAL NOT NULL);
-- cb:i:<sid>: url -> meta (sha256 kept apart to join on it).
CREATE TABLE resource_index (
    sid TEXT NOT NULL, url TEXT NOT NULL, sha256 TEXT NOT NULL, meta TEXT NOT NULL,
    PRIMARY KEY (sid, url)
);
-- cb:h:<sid>: sha256 -> meta of what the session uploaded itself.
CREATE TABLE uploads (
    sid TEXT NOT NULL, sha256 TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (sid, sha256)
);
-- cb:s:<sid>: the record's lifetime, and its plain fields one row each.
CREATE TABLE sessions (sid TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE session_fields (
    sid TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (sid, field)
);
-- cb:c:<code>
CREATE TABLE codes (code TEXT PRIMARY KEY, sid TEXT NOT NULL, expires REAL NOT NULL);
CREATE INDEX codes_sid ON codes (sid);
-- cb:r:<key>
CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL);
"""


class EmbeddedLevel2:
    """The level-2 contract on a SQLite file in the folder ``path``."""

    name = "embedded"

    def __init__(self, path: str, max_bytes: int, timeout: float = 0.25) -> None:
        os.makedirs(path, mode=0o700, exist_ok=True)  # bodies may be private: owner only
        self.path = os.path.join(path, FILENAME)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._local = threading.local()
        self._inherited: list[sqlite3.Connection] = []
        self._next_purge = 0.0
        self._db()  # fail now, at start-up, if the folder is unusable

    # --- connections and transactions -----------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """This thread's connection in this process. A connection must never cross a fork."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "db", None) is not None:
                # Inherited from the parent: closing it here could disturb the parent's locks
                # (SQLite's documented fork hazard), so keep it referenced and never use it.
                self._inherited.append(local.db)
            local.db = self._connect()
            local.pid = os.getpid()
        return local.db

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        db = sqlite3.connect(self.path, timeout=SETUP_TIMEOUT, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        # A cache: survives a process crash; no fsync on every commit.
        db.execute("PRAGMA synchronous = NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # lost a race?
                # Statement by statement: executescript() would commit our transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        return db

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction: all of it is committed, or none."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            self._purge_expired(db, time.time())
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _purge_expired(self, db: sqlite3.Connection, now: float) -> None:
        """Reads already ignore expired rows; this only reclaims their space, now and then."""
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        for table in ("blobs", "codes", "counters"):
            db.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))
        for owner, tables in (("resource_sets", ("resource_index", "uploads")),
                              ("sessions", ("session_fields",))):
            for table in tables:
                expired = f"SELECT sid FROM {owner} WHERE expires <= ?"
                db.execute(f"DELETE FROM {table} WHERE sid IN ({expired})", (now,))
            db.execute(f"DELETE FROM {owner} WHERE expires <= ?", (now,))

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()

    def stored_bytes(self) -> int:
        """Bytes of live blobs (for health and metrics)."""
        row = self._db().execute("SELECT total(size) FROM blobs WHERE expires > ?", (time.time(),))
        return int(row.fetchone()[0])

    # --- sessions -------------------------------------------------------------------------

    @staticmethod
    def _session_alive(db: sqlite3.Connection, sid: str, now: float) -> bool:
        row = db.execute("SELECT expires FROM sessions WHERE sid = ?", (sid,)).fetchone()
        return row is not None and row[0] > now

    def create_session(self, sid: str, fields: Mapping[str, str], code: str, ttl: float) -> bool:
        """See :class:`~middleware.store.base.Level2`. The record's field ``code`` is set to
        ``code``, as in the Redis backend."""
        now = time.time()
        with self._writing() as db:
            taken = db.execute("SELECT 1 FROM codes WHERE code = ? AND expires > ?", (code, now))
            if taken.fetchone():
                return False
            db.execute("INSERT OR REPLACE INTO codes VALUES (?, ?, ?)", (code, sid, now + ttl))
            db.execute("DELETE FROM session_fields WHERE sid = ?", (sid,))
            db.executemany(
                "INSERT INTO session_fields VALUES (?, ?, ?)",
                [(sid, field, value) for field, value in {**fields, "code": code}.items()],
            )
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?)", (sid, now + ttl))
        return True

    def get_session(self, sid: str, ttl: float) -> dict[str, str] | None:
        now = time.time()
        with self._writing() as db:
            if not self._session_alive(db, sid, now):
                return None
            rows = db.execute("SELECT field, value FROM session_fields WHERE sid = ?", (sid,))
            fields = dict(rows.fetchall())
            # Slide the record and its code, but never keep an ended tombstone alive longer.
            if fields.get("ended") != "1":
                db.execute("UPDATE sessions SET expires = ? WHERE sid = ?", (now + ttl, sid))
                db.execute(
                    "UPDATE codes SET expires = ? WHERE sid = ? AND expires > ?",
                    (now + ttl, sid, now),
                )
            return fields

    def get_session_and_resource(
        self, sid: str, url: str, session_ttl: float, cache_ttl: float
    ) -> tuple[dict[str, str] | None, tuple[ResourceMeta, bytes] | None]:
        # No round trips to save on a local file: the two reads as they are.
        return self.get_session(sid, session_ttl), self.get_resource(sid, url, cache_ttl)

    def update_session(self, sid: str, fields: Mapping[str, str]) -> None:
        with self._writing() as db:
            if self._session_alive(db, sid, time.time()):
                db.executemany(
                    "INSERT OR REPLACE INTO session_fields VALUES (?, ?, ?)",
                    [(sid, field, value) for field, value in fields.items()],
                )

    def end_session(self, sid: str, tombstone_ttl: float) -> None:
        now = time.time()
        with self._writing() as db:
            if not self._session_alive(db, sid, now):
                db.execute("DELETE FROM session_fields WHERE sid = ?", (sid,))  # expired leftovers
            # The tombstone is written even for a record gone here, as in the Redis backend.
            db.execute("INSERT OR REPLACE INTO session_fields VALUES (?, 'ended', '1')", (sid,))
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?)", (sid, now + tombstone_ttl))
            db.execute("DELETE FROM codes WHERE sid = ?", (sid,))
            self._drop_resources(db, sid)

    def session_for_code(self, code: str) -> str | None:
        row = self._db().execute(
            "SELECT sid FROM codes WHERE code = ? AND expires > ?", (code, time.time())
        ).fetchone()
        return None if row is None else row[0]

    def count_attempt(self, key: str, window: float) -> int:
        now = time.time()
        with self._writing() as db:
            row = db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
            value, expires = (row[0] + 1, row[1]) if row and row[1] > now else (1, now + window)
            db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (key, value, expires))
        return value

    def reserve_bytes(self, sid: str, amount: int, limit: int) -> bool:
        """See :class:`~middleware.store.base.Level2`. As in the Redis backend, a missing record
        counts as 0 used and is not created (it would be a record that never expires)."""
        with self._writing() as db:
            if not self._session_alive(db, sid, time.time()):
                return amount <= limit
            row = db.execute(
                "SELECT value FROM session_fields WHERE sid = ? AND field = 'bytes'", (sid,)
            ).fetchone()
            used = int(row[0]) if row else 0
            if used + amount > limit:
                return False
            db.execute(
                "INSERT OR REPLACE INTO session_fields VALUES (?, 'bytes', ?)",
                (sid, str(used + amount)),
            )
            return True

    # --- resources ------------------------------------------------------------------------

    @staticmethod
    def _drop_resources(db: sqlite3.Connection, sid: str) -> None:
        for table in ("resource_index", "uploads", "resource_sets"):
            db.execute(f"DELETE FROM {table} WHERE sid = ?", (sid,))

    @staticmethod
    def _refresh(db: sqlite3.Connection, sid: str, sha256: str, now: float, ttl: float) -> None:
        """Slide the session's index and hash set and the blob, and mark the blob used."""
        db.execute("UPDATE resource_sets SET expires = ? WHERE sid = ?", (now + ttl, sid))
        db.execute(
            "UPDATE blobs SET expires = ?, accessed = ? WHERE sha256 = ?", (now + ttl, now, sha256)
        )

    def put_resource(self, sid: str, url: str, meta: ResourceMeta, body: bytes, ttl: float) -> None:
        now, encoded = time.time(), meta.encode()
        with self._writing() as db:
            row = db.execute("SELECT expires FROM resource_sets WHERE sid = ?", (sid,)).fetchone()
            if row is not None and row[0] <= now:
                self._drop_resources(db, sid)  # expired: start afresh, as a new Redis key would
            db.execute("INSERT OR REPLACE INTO resource_sets VALUES (?, ?)", (sid, now + ttl))
            # Same hash, same bytes: an existing blob only needs its times updated.
            db.execute(
                "INSERT INTO blobs VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE "
                "SET expires = excluded.expires, accessed = excluded.accessed",
                (meta.sha256, len(body), now + ttl, now, body),
            )
            db.execute(
                "INSERT OR REPLACE INTO resource_index VALUES (?, ?, ?, ?)",
                (sid, url, meta.sha256, encoded),
            )
            db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?)", (sid, meta.sha256, encoded)
            )
            self._evict(db, now)

    def _evict(self, db: sqlite3.Connection, now: float) -> None:
        """Bring blob bytes back under ``max_bytes``: expired blobs first, then least recent."""
        total = db.execute("SELECT total(size) FROM blobs").fetchone()[0]
        if total <= self.max_bytes:
            return
        db.execute("DELETE FROM blobs WHERE expires <= ?", (now,))
        excess = db.execute("SELECT total(size) FROM blobs").fetchone()[0] - self.max_bytes
        victims = []
        for sha256, size in db.execute("SELECT sha256, size FROM blobs ORDER BY accessed"):
            if excess <= 0:
                break
            victims.append((sha256,))
            excess -= size
        db.executemany("DELETE FROM blobs WHERE sha256 = ?", victims)

    def get_resource(self, sid: str, url: str, ttl: float) -> tuple[ResourceMeta, bytes] | None:
        now = time.time()
        with self._writing() as db:
            row = db.execute(
                "SELECT i.meta, i.sha256, b.body FROM resource_index i"
                " JOIN resource_sets s ON s.sid = i.sid AND s.expires > :now"
                " JOIN blobs b ON b.sha256 = i.sha256 AND b.expires > :now"
                " WHERE i.sid = :sid AND i.url = :url",
                {"now": now, "sid": sid, "url": url},
            ).fetchone()
            if row is None:
                return None
            meta, sha256, body = row
            self._refresh(db, sid, sha256, now, ttl)
        return ResourceMeta.decode(meta), bytes(body)

    def touch_resource(self, sid: str, sha256: str, ttl: float) -> None:
        with self._writing() as db:
            self._refresh(db, sid, sha256, time.time(), ttl)

    def link_resource(self, sid: str, url: str, sha256: str, ttl: float) -> ResourceMeta | None:
        now = time.time()
        with self._writing() as db:
            row = db.execute(
                "SELECT u.meta FROM uploads u"
                " JOIN resource_sets s ON s.sid = u.sid AND s.expires > :now"
                " JOIN blobs b ON b.sha256 = u.sha256 AND b.expires > :now"
                " WHERE u.sid = :sid AND u.sha256 = :sha256",
                {"now": now, "sid": sid, "sha256": sha256},
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "INSERT OR REPLACE INTO resource_index VALUES (?, ?, ?, ?)",
                (sid, url, sha256, row[0]),
            )
            self._refresh(db, sid, sha256, now, ttl)
        return ResourceMeta.decode(row[0])

    def list_resources(self, sid: str) -> dict[str, ResourceMeta]:
        rows = self._db().execute(
            "SELECT i.url, i.meta FROM resource_index i"
            " JOIN resource_sets s ON s.sid = i.sid AND s.expires > ? WHERE i.sid = ?",
            (time.time(), sid),
        )
        return {url: ResourceMeta.decode(meta) for url, meta in rows}
