"""The level-2 contract: what a shared store (Redis or the embedded one) must do.

Level 2 holds only raw bytes and plain string fields, never pickles. Content is stored once per
SHA-256 (``blob``); each session keeps its own index from URL to hash, and the set of hashes it has
uploaded itself, so dedupe can never hand a session bytes it did not upload (SPEC 6).

Every method may raise any exception when the backend is unreachable or slow; the circuit breaker
in front of it (``breaker.py``) turns those into :class:`Level2Unavailable` and the tiered store
degrades to level 1. Methods must not block for longer than the backend's own short timeout.

Logical layout (the Redis backend uses these key names; the embedded store mirrors them in tables):

- ``cb:b:<sha256>``   the bytes; TTL ``cache_ttl``, refreshed when read.
- ``cb:i:<sid>``      hash url -> ``ResourceMeta.encode()``; TTL ``cache_ttl``, refreshed when read.
- ``cb:h:<sid>``      hash sha256 -> ``ResourceMeta.encode()`` of what the session uploaded.
- ``cb:s:<sid>``      hash of the session record's plain fields; TTL ``session_ttl``, sliding.
- ``cb:c:<code>``     the session id a join code opens; TTL ``session_ttl``, sliding.
- ``cb:r:<key>``      a counter for rate limits; TTL = its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol


#: Markers for a level-2 answer handed from one layer to another: "not asked yet", and "could not
#: be asked" (as opposed to None: asked, and there is nothing).
NOT_FETCHED = object()
UNAVAILABLE = object()


class Level2Unavailable(Exception):
    """Level 2 failed, timed out, or its circuit breaker is open."""


@dataclass(frozen=True, slots=True)
class ResourceMeta:
    """What is known of one stored resource besides its bytes."""

    sha256: str
    size: int
    content_type: str

    def encode(self) -> str:
        return f"{self.sha256} {self.size} {self.content_type}"

    @classmethod
    def decode(cls, raw: str | bytes) -> "ResourceMeta":
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        sha256, size, content_type = raw.split(" ", 2)
        return cls(sha256, int(size), content_type)


class Level2(Protocol):
    """A level-2 backend. Durations are in seconds (floats allowed)."""

    name: str  # "redis" or "embedded"; shown in /health and /metrics

    def ping(self) -> None:
        """Raise if the backend cannot answer right now."""

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, sid: str, fields: Mapping[str, str], code: str, ttl: float) -> bool:
        """Store a new session record and its join code, both expiring after ``ttl``.

        Returns False, writing nothing, when ``code`` is already taken by a live session.
        """

    def get_session(self, sid: str, ttl: float) -> dict[str, str] | None:
        """The session's fields, or None. Refreshes the TTL of the record and of its code."""

    def update_session(self, sid: str, fields: Mapping[str, str]) -> None:
        """Set some fields of an existing record (no-op if the record is gone)."""

    def end_session(self, sid: str, tombstone_ttl: float) -> None:
        """Mark the session ended (field ``ended`` = ``"1"``, kept ``tombstone_ttl`` so other
        processes learn of it), delete its join code, its URL index and its hash set."""

    def session_for_code(self, code: str) -> str | None:
        """The session id a join code opens, or None."""

    def count_attempt(self, key: str, window: float) -> int:
        """Add one to the counter ``key`` (created with a lifetime of ``window``); return it."""

    def reserve_bytes(self, sid: str, amount: int, limit: int) -> bool:
        """Atomically add ``amount`` to the session's field ``bytes`` if the total stays within
        ``limit``; return whether it did. A missing record counts as 0 used."""

    # --- resources ------------------------------------------------------------------------

    def put_resource(self, sid: str, url: str, meta: ResourceMeta, body: bytes, ttl: float) -> None:
        """Store ``body`` under its hash and point the session's ``url`` at it, in one round trip."""

    def get_resource(self, sid: str, url: str, ttl: float) -> tuple[ResourceMeta, bytes] | None:
        """The session's copy of ``url`` in one round trip, refreshing its TTLs; None if absent
        (including when the index names a blob that has expired)."""

    def get_session_and_resource(
        self, sid: str, url: str, session_ttl: float, cache_ttl: float
    ) -> tuple[dict[str, str] | None, tuple[ResourceMeta, bytes] | None]:
        """``get_session`` and ``get_resource`` together, in one round trip: what a process that
        has not seen the session yet needs for an agent's first request."""

    def touch_resource(self, sid: str, sha256: str, ttl: float) -> None:
        """Slide the TTLs of the session's index and of the blob, without reading the bytes
        (level 1 served them; level 2 must not forget them meanwhile)."""

    def link_resource(self, sid: str, url: str, sha256: str, ttl: float) -> ResourceMeta | None:
        """If this session itself uploaded ``sha256`` and the blob still exists, point ``url`` at
        it and return its meta; otherwise None and nothing changes."""

    def list_resources(self, sid: str) -> dict[str, ResourceMeta]:
        """Every URL the session has, with its meta."""
