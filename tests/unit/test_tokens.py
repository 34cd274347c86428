"""Tokens: forged, expired, wrong role, other session, malformed."""

import time

import pytest

from middleware.tokens import InvalidToken, TokenSigner

SIGNER = TokenSigner(b"k" * 32)
LATER = int(time.time()) + 3600


def test_a_token_verifies_for_its_own_role_and_session():
    token = SIGNER.issue("s1", "view", LATER)
    claims = SIGNER.verify(token, "view")
    assert (claims.session, claims.role, claims.expires) == ("s1", "view", LATER)


def test_wrong_role_is_refused():
    with pytest.raises(InvalidToken, match="not a upload token"):
        SIGNER.verify(SIGNER.issue("s1", "view", LATER), "upload")
    with pytest.raises(InvalidToken):
        SIGNER.verify(SIGNER.issue("s1", "upload", LATER), "view")


def test_expired_token_is_refused():
    token = SIGNER.issue("s1", "view", int(time.time()) - 1)
    with pytest.raises(InvalidToken, match="expired"):
        SIGNER.verify(token, "view")


def test_a_token_of_another_key_is_forged():
    other = TokenSigner(b"o" * 32).issue("s1", "view", LATER)
    with pytest.raises(InvalidToken, match="signature"):
        SIGNER.verify(other, "view")


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace("s1.", "s2.", 1),            # another session, same signature
    lambda t: t.replace(".view.", ".upload.", 1),   # role swapped
    lambda t: t.replace(str(LATER), str(LATER + 10**6), 1),  # expiry extended
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),       # signature altered
])
def test_tampering_with_any_part_breaks_the_signature(tamper):
    token = SIGNER.issue("s1", "view", LATER)
    with pytest.raises(InvalidToken):
        SIGNER.verify(tamper(token), "view" if ".upload." not in tamper(token) else "upload")


@pytest.mark.parametrize("bad", ["", None, "abc", "a.b.c", "a.view.notanumber.sig", "x" * 300,
                                 "s1.view.99999999999.é"])
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(InvalidToken):
        SIGNER.verify(bad, "view")


def test_sessions_get_distinct_signatures():
    assert SIGNER.issue("s1", "view", LATER).rsplit(".", 1)[1] != SIGNER.issue("s2", "view", LATER).rsplit(".", 1)[1]
