"""CORS for a customer page on another allowed origin, and never two Allow-Origin headers."""

from werkzeug.test import Client

from middleware import ResourceSyncMiddleware, Settings
from tests.support.resources import png
from tests.support.servers import plain_app

ORIGIN = "https://shop.example"


def make_client(tmp_path) -> Client:
    settings = Settings(secret_key="cors-test-secret-0123456789", embedded_path=str(tmp_path / "l2"),
                        allowed_origins=[ORIGIN])
    return Client(ResourceSyncMiddleware(plain_app, settings))


def test_allowed_origin_gets_credentials_cors_and_preflight(tmp_path):
    client = make_client(tmp_path)
    preflight = client.options("/_cobrowse/resources", headers={"Origin": ORIGIN})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Cobrowse-Token" in preflight.headers["Access-Control-Allow-Headers"]
    created = client.post("/_cobrowse/sessions", headers={"Origin": ORIGIN})
    assert created.headers.getlist("Access-Control-Allow-Origin") == [ORIGIN]
    assert created.headers["Access-Control-Allow-Credentials"] == "true"
    other = client.post("/_cobrowse/sessions", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_a_served_resource_has_exactly_one_allow_origin(tmp_path):
    client = make_client(tmp_path)
    session = client.post("/_cobrowse/sessions").json
    client.post("/_cobrowse/resources", data=png(), headers={
        "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": "https://shop.example/a.png",
        "Content-Type": "image/png"})
    for _ in range(2):  # the slow path, then the fast path
        got = client.get("/_cobrowse/resources", headers={"Origin": ORIGIN},
                         query_string={"url": "https://shop.example/a.png", "token": session["view_token"]})
        assert got.status_code == 200
        assert got.headers.getlist("Access-Control-Allow-Origin") == ["*"]
