"""Co-browse sessions: create, join by code, authenticate tokens, end; and the upload quota.

A session lives while its record is held by level 1 or level 2 and it has neither idled out
(``session_ttl`` after its last use) nor been ended (SPEC 6). Level 1 keeps a copy of each record it
has seen and asks level 2 again at most every ``REVALIDATE_AFTER`` seconds, so an ending recorded by
another process is seen within that time, and level 2's sliding TTL is refreshed without a round
trip on every request.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from .responses import HttpError
from .store.base import NOT_FETCHED, UNAVAILABLE, Level2Unavailable
from .store.breaker import CircuitBreaker
from .tokens import InvalidToken, TokenClaims, TokenSigner

#: Tokens carry a hard expiry: however busy, a session ends this long after it was created.
MAX_SESSION_LIFETIME = 24 * 3600
#: How stale this process's view of a session record may be (another process may have ended it).
REVALIDATE_AFTER = 1.0
#: Wrong join codes allowed per client address per window before it gets 429.
JOIN_FAILURES_ALLOWED = 10
JOIN_FAILURE_WINDOW = 600
MAX_LOCAL_SESSIONS = 100_000


@dataclass(slots=True, eq=False)
class Session:
    """This process's copy of a session record."""

    sid: str
    code: str
    created: float
    static_resources: bool = True  # enableStaticResourceService
    css_server: bool = True  # css.server
    page: str = ""
    charset: str = ""
    ended: bool = False
    bytes_used: int = 0
    last_used: float = field(default_factory=time.time)
    checked_at: float = field(default_factory=time.monotonic)
    # What the agent's browser got for each URL in this process: (source, tier, status).
    served: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)

    @property
    def expires(self) -> int:
        return int(self.created + MAX_SESSION_LIFETIME)

    def to_fields(self) -> dict[str, str]:
        """The plain fields level 2 stores (``bytes`` is kept by ``reserve_bytes``)."""
        return {
            "sid": self.sid, "code": self.code, "created": repr(self.created),
            "options": json.dumps({"enableStaticResourceService": self.static_resources,
                                   "css": {"server": self.css_server}}),
            "page": self.page, "charset": self.charset, "ended": "1" if self.ended else "0",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> "Session":
        options = json.loads(fields.get("options") or "{}")
        return cls(
            sid=fields["sid"], code=fields.get("code", ""), created=float(fields["created"]),
            static_resources=bool(options.get("enableStaticResourceService", True)),
            css_server=bool(options.get("css", {}).get("server", True)),
            page=fields.get("page", ""), charset=fields.get("charset", ""),
            ended=fields.get("ended") == "1", bytes_used=int(fields.get("bytes") or 0),
        )

    def public_settings(self) -> dict[str, Any]:
        return {"enableStaticResourceService": self.static_resources, "css": {"server": self.css_server}}


class SessionManager:
    def __init__(self, level2: CircuitBreaker | None, signer: TokenSigner, session_ttl: float,
                 session_max_bytes: int) -> None:
        self.level2 = level2
        self.signer = signer
        self.session_ttl = session_ttl
        self.session_max_bytes = session_max_bytes
        self._sessions: TTLCache[str, Session] = TTLCache(MAX_LOCAL_SESSIONS, session_ttl)
        self._codes: TTLCache[str, str] = TTLCache(MAX_LOCAL_SESSIONS, session_ttl)
        # Verifying a token is an HMAC; a hit on the hot path should not pay it every time.
        self._verified: TTLCache[tuple[str, str], TokenClaims] = TTLCache(65_536, 60)
        self._join_failures: TTLCache[str, list[int]] = TTLCache(65_536, JOIN_FAILURE_WINDOW)
        # cachetools caches are not thread-safe; every access to the four above goes under it.
        self._lock = threading.Lock()

    def _level2(self, method: str, *args: Any) -> Any:
        if self.level2 is None:
            raise Level2Unavailable("no level 2 configured")
        return self.level2.call(method, *args)

    # --- create, join, end --------------------------------------------------------------------

    def create(self, static_resources: bool, css_server: bool, page: str, charset: str) -> tuple[Session, dict[str, Any]]:
        """A new session and the JSON answer of ``POST /sessions``."""
        for _ in range(20):
            session = Session(sid=secrets.token_hex(16), code=f"{secrets.randbelow(10**9):09d}",
                              created=time.time(), static_resources=static_resources,
                              css_server=css_server, page=page, charset=charset)
            with self._lock:
                if session.code in self._codes:
                    continue
            try:
                if not self._level2("create_session", session.sid, session.to_fields(),
                                    session.code, self.session_ttl):
                    continue  # the code is taken by a live session elsewhere; draw again
            except Level2Unavailable:
                pass  # level 1 alone holds it; it lives there until level 2 is back
            with self._lock:
                self._sessions[session.sid] = session
                self._codes[session.code] = session.sid
            return session, {
                "session": session.sid,
                "code": session.code,
                "upload_token": self.signer.issue(session.sid, "upload", session.expires),
                "view_token": self.signer.issue(session.sid, "view", session.expires),
                "expires_in": int(self.session_ttl),
            }
        raise HttpError(500, "internal", "could not allocate a join code")

    def join(self, code: str, client: str) -> dict[str, str]:
        """The answer of ``POST /sessions/join``; wrong codes are rate-limited per address."""
        with self._lock:
            failures = self._join_failures.get(client)
        if failures is not None and failures[0] >= JOIN_FAILURES_ALLOWED:
            raise HttpError(429, "rate_limited", "too many wrong join codes; try again later",
                            [("Retry-After", str(JOIN_FAILURE_WINDOW))])
        with self._lock:
            sid = self._codes.get(code)
        if sid is None:
            try:
                sid = self._level2("session_for_code", code)
            except Level2Unavailable:
                sid = None
        session = self.live(sid) if sid else None
        if session is None or session.code != code:
            self._count_join_failure(client)
            raise HttpError(404, "not_found", "unknown or expired join code")
        return {"session": session.sid, "view_token": self.signer.issue(session.sid, "view", session.expires)}

    def _count_join_failure(self, client: str) -> None:
        try:
            count = int(self._level2("count_attempt", f"join:{client}", JOIN_FAILURE_WINDOW))
        except Level2Unavailable:
            count = 0
        with self._lock:
            failures = self._join_failures.get(client)
            if failures is None:
                failures = self._join_failures[client] = [0]
            # Level 2 counts across processes; level 1 alone still counts when level 2 is down.
            failures[0] = max(failures[0] + 1, count)

    def end(self, session: Session) -> None:
        session.ended = True
        with self._lock:
            self._codes.pop(session.code, None)
        try:
            self._level2("end_session", session.sid, self.session_ttl)
        except Level2Unavailable:
            pass

    # --- using a session -----------------------------------------------------------------------

    def verify(self, token: str | None, role: str) -> TokenClaims:
        """The claims of a genuine, unexpired token of ``role``; otherwise ``403``."""
        with self._lock:
            claims = self._verified.get((token or "", role))
        try:
            if claims is None:
                claims = self.signer.verify(token, role)
                with self._lock:
                    self._verified[(token or "", role)] = claims
            elif claims.expires <= time.time():
                raise InvalidToken("expired token")
        except InvalidToken as exc:
            raise HttpError(403, "forbidden", str(exc)) from None
        return claims

    def authenticate(self, token: str | None, role: str) -> Session:
        """The live session a token of ``role`` opens; otherwise ``403``."""
        return self.require_live(self.verify(token, role).session)

    def require_live(self, sid: str, record: Any = NOT_FETCHED) -> Session:
        session = self.live(sid, record)
        if session is None:
            raise HttpError(403, "forbidden", "this session has expired or ended")
        return session

    def is_fresh(self, sid: str) -> bool:
        """Whether this process's copy of the session may be used without asking level 2."""
        with self._lock:
            session = self._sessions.get(sid)
        return session is not None and time.monotonic() - session.checked_at < REVALIDATE_AFTER

    def live(self, sid: str, record: Any = NOT_FETCHED) -> Session | None:
        """The session if it lives, refreshing its idle timer; None otherwise.

        ``record`` is level 2's answer when the caller already fetched it (None: level 2 has no
        such record; ``UNAVAILABLE``: level 2 could not be asked).
        """
        with self._lock:
            session = self._sessions.get(sid)
        if record is not NOT_FETCHED or session is None or time.monotonic() - session.checked_at >= REVALIDATE_AFTER:
            session = self._revalidate(sid, session, record)
        if session is None or session.ended:
            return None
        now = time.time()
        if now - session.last_used > self.session_ttl or now >= session.expires:
            return None
        session.last_used = now
        return session

    def _revalidate(self, sid: str, session: Session | None, record: Any = NOT_FETCHED) -> Session | None:
        fields = record
        if record is NOT_FETCHED:
            try:
                fields = self._level2("get_session", sid, self.session_ttl)
            except Level2Unavailable:
                fields = UNAVAILABLE
        if fields is UNAVAILABLE:
            if session is not None:  # level 1's copy is all we have; ask again in a while
                session.checked_at = time.monotonic()
            return session
        if fields is not None and fields.get("ended") == "1":
            # An ended session may be a bare tombstone (level 2 lost the record before the end).
            if session is None:
                return None
            session.ended = True
        elif fields is None:
            if session is not None and not session.ended:
                # Level 2 lost it (restarted empty, or it was down at creation): put it back so
                # other processes can see it again.
                try:
                    self._level2("create_session", sid, session.to_fields(), session.code, self.session_ttl)
                except Level2Unavailable:
                    pass
        else:
            stored = Session.from_fields(fields)
            if session is None:
                session = stored
            else:
                session.ended = session.ended or stored.ended
                session.page, session.charset = stored.page, stored.charset
                session.bytes_used = max(session.bytes_used, stored.bytes_used)
            session.last_used = time.time()  # level 2 still holds it, so it was used recently
        if session is not None:
            session.checked_at = time.monotonic()
            with self._lock:
                self._sessions[sid] = session
        return session

    def set_page(self, session: Session, page: str, charset: str) -> None:
        session.page, session.charset = page, charset
        try:
            self._level2("update_session", session.sid, {"page": page, "charset": charset})
        except Level2Unavailable:
            pass

    # --- the upload quota ----------------------------------------------------------------------

    def remaining_quota(self, session: Session) -> int:
        return max(0, self.session_max_bytes - session.bytes_used)

    def reserve_bytes(self, session: Session, amount: int) -> bool:
        """Count ``amount`` against the session's quota if it fits (atomic across processes)."""
        try:
            if not self._level2("reserve_bytes", session.sid, amount, self.session_max_bytes):
                return False
        except Level2Unavailable:
            if session.bytes_used + amount > self.session_max_bytes:
                return False
        with self._lock:
            session.bytes_used += amount
        return True
