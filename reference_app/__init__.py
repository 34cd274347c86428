"""The reference server: the sample site behind a login, wrapped by the co-browse middleware.

It plays the customer's website of SPEC 10. Its pages and assets (``static_test_site/``) need the
login cookie, which is exactly why the agent cannot load them and the customer's browser must
upload them. ``/public/`` is outside the login, and ``/agent`` is the agent console, where a
support agent types the join code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadData
from werkzeug.http import parse_cookie
from werkzeug.security import safe_join

from middleware import ResourceSyncMiddleware, Settings

from .images import large_png

__all__ = ["SITE_DIR", "create_app"]

# The sample site, beside this package in the repository. Tests may point the app elsewhere
# through app.config["SAMPLE_SITE_DIR"].
SITE_DIR = Path(__file__).resolve().parent.parent / "static_test_site"

# What the site serves, by extension. Anything else in the folder (the asset tools, licence
# notes) is not part of the site and answers 404.
CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".txt": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
}

# A charset the file declares itself: `@charset "..."` in CSS, `<meta charset>` in HTML.
_DECLARED_CHARSET = re.compile(rb"@charset\s+\"|<meta[^>]*charset", re.IGNORECASE)


def _text_content_type(base: str, data: bytes) -> str:
    """``base`` with ``charset=utf-8`` only for a UTF-8 file that declares no charset of its own.

    A file that declares one (``@charset``, ``<meta charset>``) or is not UTF-8 gets no charset
    in the header, as from a plain static server: the browser then decides from the declaration
    or, for a stylesheet, from the page's encoding. Those are the cases the non-UTF-8 sample
    sheets exercise (SPEC 5), and a header charset would overrule them.
    """
    if _DECLARED_CHARSET.search(data[:1024]):
        return base
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return base
    return f"{base}; charset=utf-8"


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/``: logging in must not send anyone away.

    Browsers read ``//host`` and ``/\\host`` as another host, and drop tabs and newlines before
    parsing, so those and any control character or backslash are refused.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _cookie_key(secret: bytes) -> bytes:
    """The Flask session key: derived from the deployment's shared secret under a label of its own.

    Derived, so every worker that shares the secret accepts the same login cookie; under its own
    label, so the cookie key is never the key that signs co-browse tokens.
    """
    return hmac.new(secret, b"cobrowse reference_app login cookie v1", hashlib.sha256).digest()


def _send(data: bytes, content_type: str, cache_control: str) -> Response:
    response = Response(data, content_type=content_type)
    response.headers["Cache-Control"] = cache_control
    response.add_etag()
    return response.make_conditional(request)


# Stylesheets in this folder of the site are sent with an HTTP charset (and declare none
# themselves): the case where only the Content-Type header says how to decode them.
HTTP_CHARSET_FOLDERS = {"css/sjis-http/": "shift_jis"}

#: Written in the sample pages where the second origin's address goes (see second_origin.py).
SECOND_ORIGIN_PLACEHOLDER = b"__SECOND_ORIGIN__"


def _send_file(folder: Path, name: str, cache_control: str,
               second_origin: str | None = None) -> Response:
    """One file of ``folder`` by its URL path, or 404 (never a path outside ``folder``).

    ``second_origin``, when given, replaces the placeholder in HTML pages.
    """
    joined = safe_join(str(folder), name)
    if joined is None:
        abort(404)
    path = Path(joined)
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None or not path.is_file():
        abort(404)
    data = path.read_bytes()
    if content_type == "text/html" and second_origin:
        data = data.replace(SECOND_ORIGIN_PLACEHOLDER, second_origin.encode("ascii"))
    folder_charset = next((charset for prefix, charset in HTTP_CHARSET_FOLDERS.items()
                           if name.startswith(prefix)), None)
    if content_type == "text/css" and folder_charset:
        content_type = f"text/css; charset={folder_charset}"
    elif content_type.startswith("text/"):
        content_type = _text_content_type(content_type, data)
    return _send(data, content_type, cache_control)


def _default_second_origin() -> str:
    """The second origin when none is configured: this host, on the next port (as the CLI runs it)."""
    try:
        parts = urlsplit(f"//{request.host}")
        port = parts.port or (443 if request.scheme == "https" else 80)
    except ValueError:
        parts, port = urlsplit("//127.0.0.1"), 80
    host = parts.hostname or ""
    # The Host header is the client's word and this goes into HTML: only plain names and addresses.
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{request.scheme}://{host}:{port + 1}"


def create_app(settings: Settings | None = None) -> Flask:
    """The reference server as a Flask app, already wrapped by :class:`ResourceSyncMiddleware`.

    ``settings`` None reads the INI file (``$COBROWSE_CONFIG``) and the environment.
    """
    if settings is None:
        settings = Settings.from_file()

    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=_cookie_key(settings.secret_key),
        SESSION_COOKIE_SAMESITE="Lax",
        SAMPLE_SITE_DIR=SITE_DIR,
        # Where the sample pages' second-origin resources live (reference_app/second_origin.py);
        # None: this host on the next port.
        SECOND_ORIGIN=None,
    )

    def is_demo_user(data: Mapping[str, Any]) -> bool:
        # Checked against the configured user, so changing it signs out old logins.
        return data.get("user") == settings.demo_user

    def authorize_session(environ: dict[str, Any]) -> bool:
        """Only a logged-in customer may start sharing: True when ``environ`` has a valid login cookie.

        The middleware asks before Flask has seen the request, so the cookie is read and verified
        here the way Flask's own session interface would.
        """
        interface = app.session_interface
        cookie = parse_cookie(environ).get(interface.get_cookie_name(app))
        serializer = interface.get_signing_serializer(app)
        if not cookie or serializer is None:
            return False
        try:
            data = serializer.loads(
                cookie, max_age=int(app.permanent_session_lifetime.total_seconds())
            )
        except BadData:
            return False
        return isinstance(data, dict) and is_demo_user(data)

    @app.get("/login")
    def login_form() -> str:
        return render_template("login.html", next=_safe_next(request.args.get("next")), error=None)

    @app.post("/login")
    def login() -> Response | tuple[str, int]:
        username = request.form.get("username", "").encode("utf-8")
        password = request.form.get("password", "").encode("utf-8")
        # Both comparisons always run (& not `and`), so timing tells nothing about which failed.
        user_ok = hmac.compare_digest(username, settings.demo_user.encode("utf-8"))
        password_ok = hmac.compare_digest(password, settings.demo_password.encode("utf-8"))
        target = _safe_next(request.form.get("next"))
        if not (user_ok & password_ok):
            return render_template(
                "login.html", next=target, error="Wrong user name or password."
            ), 401
        session.clear()
        session["user"] = settings.demo_user
        return redirect(target)

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return redirect(url_for("login_form"))

    @app.get("/agent")
    def agent_console() -> str:
        # No login: agents are not users of the site, the join code is their credential.
        return render_template("agent.html", prefix=settings.prefix)

    @app.get("/public/<path:name>")
    def public_file(name: str) -> Response:
        cache_control = "public, max-age=3600"
        if name == "large.png":
            return _send(large_png(), "image/png", cache_control)
        return _send_file(
            Path(current_app.config["SAMPLE_SITE_DIR"]) / "public", name, cache_control
        )

    @app.get("/", defaults={"name": ""})
    @app.get("/<path:name>")
    def site_file(name: str) -> Response:
        if name == "" or name.endswith("/"):
            name += "index.html"
        if not is_demo_user(session):
            if name.endswith(".html"):
                # request.full_path always ends in "?", even without a query string.
                return redirect(url_for("login_form", next=request.full_path.removesuffix("?")))
            return Response(
                "Log in to see this resource.\n", 401, content_type="text/plain; charset=utf-8"
            )
        return _send_file(Path(current_app.config["SAMPLE_SITE_DIR"]), name, "private, no-cache",
                          current_app.config.get("SECOND_ORIGIN") or _default_second_origin())

    app.wsgi_app = ResourceSyncMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, settings=settings, authorize_session=authorize_session
    )
    return app
