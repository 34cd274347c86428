"""The reference server (SPEC 10): the sample site behind its login, the public large image, the
agent console, who may start a co-browse session, and ``cobrowse-server`` as a real process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

try:
    from middleware import Settings
except ImportError as error:  # the middleware is written in parallel; nothing here runs without it
    pytest.skip(f"the middleware package is not importable: {error}", allow_module_level=True)

from reference_app import SITE_DIR, create_app
from reference_app.cli import SECRET_ENV, main

REPO = Path(__file__).resolve().parents[2]
SECRET = b"reference-app-tests-secret-0123456789"
CUSTOMER_SCRIPT = [
    "<script>var _genesys = { cobrowse: { enableStaticResourceService: true, css: { server: true } } };</script>",
    '<script src="/_cobrowse/cobrowse.js"></script>',
]


@pytest.fixture
def app(tmp_path):
    return create_app(Settings(secret_key=SECRET, embedded_path=str(tmp_path / "store")))


@pytest.fixture
def client(app):
    return app.test_client()


def log_in(client, **extra: str):
    return client.post("/login", data={"username": "demo", "password": "demo", **extra})


@pytest.fixture
def logged_in(client):
    assert log_in(client).status_code == 302
    return client


# --- without the login --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/index.html", "/images.html", "/styles.html?tab=2", "/nope.html"]
)
def test_pages_redirect_to_login_without_cookie(client, path):
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize(
    "path",
    [
        "/css/site.css",
        "/css/theme.css",
        "/img/photo.png",
        "/fonts/sample-mono.woff2",
        "/img/missing.png",
    ],
)
def test_assets_answer_401_without_cookie(client, path):
    # A missing asset answers 401 too: without the login, the site tells nothing about what exists.
    response = client.get(path)
    assert response.status_code == 401
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "username, password", [("demo", "wrong"), ("someone", "demo"), ("", ""), ("demo", "demo ")]
)
def test_wrong_credentials_answer_401_with_the_form(client, username, password):
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "Wrong user name or password." in page and 'name="password"' in page
    assert client.get("/css/site.css").status_code == 401  # and no login cookie was set


def test_login_page_is_a_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'method="post"' in page and 'name="username"' in page and 'name="password"' in page


def test_configured_demo_user_replaces_the_default(tmp_path):
    settings = Settings(
        secret_key=SECRET, embedded_path=str(tmp_path), demo_user="ann", demo_password="s3cret"
    )
    client = create_app(settings).test_client()
    assert log_in(client).status_code == 401
    response = client.post("/login", data={"username": "ann", "password": "s3cret"})
    assert response.status_code == 302
    assert client.get("/css/site.css").status_code == 200


# --- with the login -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, file, content_type",
    [
        ("/", "index.html", "text/html"),
        ("/images.html", "images.html", "text/html"),
        ("/css/site.css", "css/site.css", "text/css; charset=utf-8"),
        ("/css/theme.css", "css/theme.css", "text/css; charset=utf-8"),
        ("/img/photo.png", "img/photo.png", "image/png"),
        ("/img/icon.svg", "img/icon.svg", "image/svg+xml"),
        ("/img/dots.gif", "img/dots.gif", "image/gif"),
        ("/fonts/sample-mono.woff2", "fonts/sample-mono.woff2", "font/woff2"),
    ],
)
def test_logged_in_customer_gets_pages_and_assets(logged_in, path, file, content_type):
    response = logged_in.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.data == (SITE_DIR / file).read_bytes()
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_assets_answer_304_to_a_matching_etag(logged_in):
    etag = logged_in.get("/img/photo.png").headers["ETag"]
    assert logged_in.get("/img/photo.png", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize(
    "path", ["/tools/make_assets.py", "/../setup.cfg", "/%2e%2e/setup.cfg", "/img/missing.png"]
)
def test_only_site_files_are_served(logged_in, path):
    assert logged_in.get(path).status_code == 404


def test_login_redirects_to_a_local_next(client):
    response = log_in(client, next="/styles.html?tab=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/styles.html?tab=2"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "//evil.com/path",
        "https://evil.com/",
        "/\\evil.com",
        "/\t/evil.com",
        "evil.com",
        "javascript:alert(1)",
    ],
)
def test_login_refuses_an_open_redirect(client, target):
    response = log_in(client, next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    # The form does not carry it forward either.
    assert 'name="next" value="/"' in client.get("/login", query_string={"next": target}).get_data(
        as_text=True
    )


def test_logout_ends_the_login(logged_in):
    response = logged_in.post("/logout")
    assert response.status_code == 302
    assert logged_in.get("/css/site.css").status_code == 401


def test_every_sample_page_includes_the_customer_script():
    pages = sorted(SITE_DIR.rglob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text("utf-8")
        assert all(tag in html for tag in CUSTOMER_SCRIPT), page


def test_stylesheet_charset_is_left_to_the_sheet_when_it_declares_one_or_is_not_utf8(
    app, logged_in, tmp_path
):
    site = tmp_path / "site"
    site.mkdir()
    (site / "plain.css").write_text("p::before { content: 'caf\u00e9' }", "utf-8")
    (site / "declared.css").write_bytes(
        '@charset "Shift_JIS";\np::before { content: "\u65e5" }'.encode("shift_jis")
    )
    (site / "legacy.css").write_bytes('p::before { content: "\u65e5\u672c" }'.encode("shift_jis"))
    app.config["SAMPLE_SITE_DIR"] = site
    assert logged_in.get("/plain.css").headers["Content-Type"] == "text/css; charset=utf-8"
    # A header charset would overrule @charset and the page's encoding (CSS Syntax 3): none here.
    assert logged_in.get("/declared.css").headers["Content-Type"] == "text/css"
    assert logged_in.get("/legacy.css").headers["Content-Type"] == "text/css"


# --- who may start co-browsing ------------------------------------------------------------------


def test_only_a_logged_in_customer_may_create_a_cobrowse_session(client):
    assert client.post("/_cobrowse/sessions", json={}).status_code == 403
    log_in(client)
    response = client.post("/_cobrowse/sessions", json={})
    assert response.status_code == 201
    assert len(response.get_json()["code"]) == 9


def test_a_login_cookie_signed_with_another_secret_is_refused(tmp_path):
    other = create_app(
        Settings(secret_key=b"another-secret-key-0123456789", embedded_path=str(tmp_path / "a"))
    )
    other_client = other.test_client()
    log_in(other_client)
    forged = other_client.get_cookie("session").value

    client = create_app(
        Settings(secret_key=SECRET, embedded_path=str(tmp_path / "b"))
    ).test_client()
    client.set_cookie("session", forged)
    assert client.get("/css/site.css").status_code == 401
    assert client.post("/_cobrowse/sessions", json={}).status_code == 403


def test_the_login_cookie_works_in_every_worker_that_shares_the_secret(tmp_path):
    # Two apps stand for two gunicorn workers: a cookie issued by one must be honoured by the other.
    first = create_app(Settings(secret_key=SECRET, embedded_path=str(tmp_path))).test_client()
    log_in(first)
    second = create_app(Settings(secret_key=SECRET, embedded_path=str(tmp_path))).test_client()
    second.set_cookie("session", first.get_cookie("session").value)
    assert second.get("/css/site.css").status_code == 200
    assert second.post("/_cobrowse/sessions", json={}).status_code == 201


# --- public pieces: the large image, the agent console --------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC."""
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_large_public_image_is_a_valid_png_over_max_size_without_login(client):
    response = client.get("/public/large.png")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    data = response.data
    assert len(data) > Settings(secret_key=SECRET).max_size == 10 * 1024 * 1024

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour_type) == (8, 2)  # 8-bit RGB
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)


def test_public_folder_needs_no_login(client):
    response = client.get("/public/logo.svg")
    assert response.status_code == 200
    assert response.data == (SITE_DIR / "public" / "logo.svg").read_bytes()


def test_agent_console_needs_no_login_and_joins_under_the_prefix(tmp_path):
    client = create_app(
        Settings(secret_key=SECRET, embedded_path=str(tmp_path), prefix="/cb")
    ).test_client()
    response = client.get("/agent")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'var prefix = "/cb";' in page
    assert '"/sessions/join"' in page and '"/agent?token="' in page


# --- the command line ---------------------------------------------------------------------------


def test_cli_refuses_an_invalid_setting_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(
        SECRET_ENV, SECRET.decode()
    )  # a configured secret: main() leaves the environment alone
    config = tmp_path / "cobrowse.ini"
    config.write_text("[resources]\nmax_size = lots\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "--port", "0"])
    assert exit_info.value.code == 2
    assert "max_size" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"cobrowse-server exited early with code {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"cobrowse-server did not answer at {url} within {timeout} s")


def test_cobrowse_server_serves_the_site_and_stops_cleanly_on_ctrl_c(tmp_path):
    executable = shutil.which("cobrowse-server")
    command = [executable] if executable else [sys.executable, "-m", "reference_app"]
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("COBROWSE_")}
    env["COBROWSE_CACHE_EMBEDDED_PATH"] = str(tmp_path / "store")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"

    with log.open("wb") as sink:
        # A session of its own, so the SIGINT below reaches the master and its workers together, as
        # Ctrl-C in a terminal does.
        process = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "2", "--threads", "2"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_up(f"{base}/login", process)
            browser = requests.Session()
            assert 'name="password"' in browser.get(f"{base}/login", timeout=5).text
            assert browser.get(f"{base}/img/photo.png", timeout=5).status_code == 401

            response = browser.post(
                f"{base}/login",
                data={"username": "demo", "password": "demo"},
                allow_redirects=False,
                timeout=5,
            )
            assert response.status_code == 302
            # Several requests, so both workers are likely asked: the login holds in each.
            for _ in range(6):
                asset = browser.get(f"{base}/img/photo.png", timeout=5)
                assert asset.status_code == 200
                assert asset.content == (SITE_DIR / "img" / "photo.png").read_bytes()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            try:
                code = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None

    output = log.read_text("utf-8", errors="replace")
    assert code == 0, f"exit code {code}:\n{output}"
    assert "Traceback" not in output, output
    assert f"{base}/agent" in output and "demo / demo" in output
    assert "generated one for this run" in output
