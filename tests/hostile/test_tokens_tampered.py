"""Token tampering of every kind, on every endpoint that takes a token (SPEC 4, 6): each forgery is
a 403 with the spec's JSON, opens nothing, changes nothing, and does not end the session."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from middleware.tokens import TokenSigner
from tests.hostile.conftest import PNG, SITE, assert_consistent, assert_error
from tests.integration.conftest import SECRET

URL = f"{SITE}/guarded.png"


def forgeries(mine: dict, other: dict) -> dict[str, str | bytes]:
    """Tampered forms of ``mine``'s upload token (view-token forms are derived the same way)."""
    token = mine["upload_token"]
    sid, role, expires, signature = token.split(".")
    o_sid, _, _, o_signature = other["upload_token"].split(".")
    real = TokenSigner(SECRET.encode())
    return {
        "empty": "",
        "truncated by one": token[:-1],
        "truncated to the payload": f"{sid}.{role}.{expires}",
        "truncated to half": token[: len(token) // 2],
        "extended by one": token + "A",
        "extended with padding": token + "==",
        "extended with a part": token + ".extra",
        "other session's signature": f"{sid}.{role}.{expires}.{o_signature}",
        "other session's id": f"{o_sid}.{role}.{expires}.{signature}",
        "role swapped, same signature": f"{sid}.view.{expires}.{signature}",
        "role invented": f"{sid}.admin.{expires}.{signature}",
        "expiry extended, same signature": f"{sid}.{role}.{int(expires) + 3600}.{signature}",
        "expiry shortened, same signature": f"{sid}.{role}.{int(expires) - 1}.{signature}",
        "expiry with a leading zero": f"{sid}.{role}.0{expires}.{signature}",
        "expired, correctly signed": real.issue(sid, role, int(time.time()) - 1),
        "signed with another secret": TokenSigner(b"not-the-secret").issue(sid, role, int(expires)),
        "signature upper-cased": f"{sid}.{role}.{expires}.{signature.upper()}",
        "signature of zeros": f"{sid}.{role}.{expires}.{'A' * len(signature)}",
        "non-ASCII in the id": f"{sid[:-1]}é.{role}.{expires}.{signature}",
        "full-width digits": f"{sid}.{role}.{''.join(chr(0xFF10 + int(d)) for d in expires)}.{signature}",
        "NUL inside": token[:10] + "\x00" + token[11:],
        "huge": token * 400,
        "dots only": "...",
        "spaces": f"{sid} {role} {expires} {signature}",
        "a JSON object": f'{{"session": "{sid}", "role": "upload"}}',
    }


@pytest.fixture
def pair(cb) -> tuple[dict, dict]:
    mine, other = cb.new_session(), cb.new_session()
    assert cb.upload(mine, URL, PNG, "image/png").status_code == 201
    return mine, other


def as_view(token: str | bytes, mine: dict) -> str | bytes:
    """The same forgery applied to the view token (role words swapped)."""
    if isinstance(token, bytes):
        return token
    return token.replace(mine["upload_token"], mine["view_token"]).replace(".upload.", ".view.")


def header_value(token: str) -> bytes:
    """Header values travel as bytes: non-ASCII as UTF-8, as a hostile client would send it."""
    return token.encode("utf-8")


def customer_calls(cb, token: str) -> dict[str, Callable[[], requests.Response]]:
    h = {"X-Cobrowse-Token": header_value(token)}
    return {
        "upload": lambda: requests.post(f"{cb.api}/resources", data=PNG, timeout=10, headers={
            **h, "X-Cobrowse-Url": f"{SITE}/forged.png", "Content-Type": "image/png"}),
        "batch": lambda: requests.post(f"{cb.api}/resources", timeout=10, files={f"{SITE}/forged.png": (
            "f", PNG, "image/png")}, headers=h),
        "check": lambda: requests.post(f"{cb.api}/resources/check", json={"resources": []}, timeout=10, headers=h),
        "snapshot": lambda: requests.post(f"{cb.api}/snapshot", timeout=10, headers=h, json={
            "url": f"{SITE}/", "html": "<p>forged</p>"}),
        "end": lambda: requests.delete(f"{cb.api}/sessions/current", timeout=10, headers=h),
    }


def agent_calls(cb, token: str) -> dict[str, Callable[[], requests.Response]]:
    return {
        "resource": lambda: requests.get(f"{cb.api}/resources", params={"url": URL, "token": token},
                                         timeout=10, allow_redirects=False),
        "status (query)": lambda: requests.get(f"{cb.api}/sessions/current", params={"token": token}, timeout=10),
        "status (header)": lambda: requests.get(f"{cb.api}/sessions/current", timeout=10,
                                                headers={"X-Cobrowse-Token": header_value(token)}),
        "snapshot": lambda: requests.get(f"{cb.api}/snapshot", params={"token": token}, timeout=10),
        "viewer": lambda: requests.get(f"{cb.api}/agent", params={"token": token}, timeout=10),
    }


def test_every_forged_token_is_refused_everywhere_and_changes_nothing(cb, pair):
    mine, other = pair
    tried = 0
    for name, forged in forgeries(mine, other).items():
        for endpoint, call in customer_calls(cb, forged).items():
            answer = call()
            assert answer.status_code == 403, (name, endpoint, answer.text[:200])
            assert_error(answer, 403, "forbidden")
            tried += 1
        for endpoint, call in agent_calls(cb, as_view(forged, mine)).items():
            if endpoint == "viewer":
                continue  # the viewer page is static: its script asks the API, which checks
            answer = call()
            assert answer.status_code == 403, (name, endpoint, answer.text[:200])
            assert_error(answer, 403, "forbidden")
            tried += 1
    assert tried > 200
    # Nothing was stored, nothing was ended, nothing was posted.
    assert_consistent(cb, mine, {URL: PNG})
    assert_consistent(cb, other, {})
    snapshot = requests.get(f"{cb.api}/snapshot", params={"token": mine["view_token"]}, timeout=10)
    assert snapshot.status_code == 404 or "forged" not in snapshot.text


def test_each_role_opens_only_its_own_endpoints(cb, pair):
    mine, _ = pair
    # A view token cannot upload, check, post a snapshot or end the session ...
    for endpoint, call in customer_calls(cb, mine["view_token"]).items():
        assert_error(call(), 403, "forbidden")
    # ... and an upload token cannot read.
    for endpoint, call in agent_calls(cb, mine["upload_token"]).items():
        if endpoint != "viewer":
            assert_error(call(), 403, "forbidden")
    assert_consistent(cb, mine, {URL: PNG})


def test_where_a_token_travels_is_fixed(cb, pair):
    """Customers send theirs in ``X-Cobrowse-Token`` (a query ``token`` is ignored there); agents'
    resource URLs carry theirs in the query (a header is ignored there, since the browser that
    loads an <img> cannot add one); the status endpoint takes either."""
    mine, _ = pair
    upload = requests.post(f"{cb.api}/resources", params={"token": mine["upload_token"]}, data=PNG,
                           timeout=10, headers={"X-Cobrowse-Url": f"{SITE}/q.png", "Content-Type": "image/png"})
    assert_error(upload, 403, "forbidden")
    read = requests.get(f"{cb.api}/resources", params={"url": URL}, timeout=10,
                        headers={"X-Cobrowse-Token": mine["view_token"]})
    assert_error(read, 403, "forbidden")
    for how in ({"params": {"token": mine["view_token"]}}, {"headers": {"X-Cobrowse-Token": mine["view_token"]}}):
        assert requests.get(f"{cb.api}/sessions/current", timeout=10, **how).status_code == 200
    assert_consistent(cb, mine, {URL: PNG})


def test_another_sessions_valid_view_token_gets_the_fallback_not_the_bytes(cb, pair):
    _, other = pair
    got = cb.fetch(other["view_token"], URL)
    assert got.status_code == 302 and got.headers["Location"] == URL and got.content == b""


def test_an_ended_sessions_tokens_are_dead_at_once(cb):
    session = cb.new_session()
    assert cb.upload(session, URL, PNG, "image/png").status_code == 201
    assert requests.delete(f"{cb.api}/sessions/current", timeout=10,
                           headers={"X-Cobrowse-Token": session["upload_token"]}).status_code == 204
    for endpoint, call in customer_calls(cb, session["upload_token"]).items():
        assert_error(call(), 403, "forbidden")
    for endpoint, call in agent_calls(cb, session["view_token"]).items():
        if endpoint != "viewer":
            assert_error(call(), 403, "forbidden")
    assert cb.middleware.store.get(session["session"], URL) is None
