"""Session tokens: signed, bound to a session id and a role, with a hard expiry.

A token looks like ``<session id>.<role>.<expiry>.<signature>``; the signature is HMAC-SHA256 over
the other three parts. A token proves only who it was issued to: whether its session still lives
(not idle-expired, not ended) is the session store's question, asked on every use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

UPLOAD = "upload"
VIEW = "view"
ROLES = (UPLOAD, VIEW)


class InvalidToken(Exception):
    """Missing, malformed, forged, expired, or of the wrong role."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    session: str
    role: str
    expires: int  # Unix time


class TokenSigner:
    """Issues and verifies tokens under one secret key."""

    def __init__(self, secret_key: bytes) -> None:
        # A key of its own for tokens, so the same secret can sign other things (the reference
        # app's cookies) without a token ever being valid as anything else.
        self._key = hmac.new(secret_key, b"cobrowse-token-v1", hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self, session: str, role: str, expires: int) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        payload = f"{session}.{role}.{int(expires)}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str | None, role: str, now: float | None = None) -> TokenClaims:
        """The claims of a valid, unexpired token of ``role``; otherwise :class:`InvalidToken`."""
        if not token or len(token) > 256:
            raise InvalidToken("missing token")
        try:
            token.encode("ascii")  # compare_digest refuses non-ASCII strings
            payload, signature = token.rsplit(".", 1)
            session, token_role, expires_text = payload.split(".")
            expires = int(expires_text)
        except (ValueError, UnicodeEncodeError):
            raise InvalidToken("malformed token") from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidToken("bad token signature")
        if token_role != role:
            raise InvalidToken(f"this is not a {role} token")
        if expires <= (time.time() if now is None else now):
            raise InvalidToken("expired token")
        return TokenClaims(session, token_role, expires)
