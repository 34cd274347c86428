"""ResourceSyncMiddleware: the thin WSGI layer.

It owns every path under the prefix, routes each to a handler that returns a
:class:`~middleware.responses.Response`, and turns errors into the spec's JSON shape. Everything
outside the prefix goes to the wrapped application untouched, at the cost of one string compare.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import parse_qsl

from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_options_header

from .fetch.sync import ServerSideSync
from .metrics import Metrics
from .responses import STATUS_LINES, HttpError, PreparedResource, Response, empty_response, json_response
from .serving import ResourceServer
from .sessions import Session, SessionManager
from .settings import Settings
from .snapshots import Snapshots
from .store.breaker import CircuitBreaker
from .store.embedded import EmbeddedLevel2
from .store.redis import RedisLevel2
from .store.tiered import TieredStore
from .tokens import TokenSigner
from .uploads import MAX_CONTENT_TYPE_LENGTH, Uploader, read_json

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("cobrowse")

Handler = Callable[["WSGIEnvironment"], Response]

#: Headers a customer page on another allowed origin may send (CORS preflight).
CORS_ALLOW_HEADERS = "Content-Type, X-Cobrowse-Token, X-Cobrowse-Url"

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Our own files, their content types, and the CSP each is served with. The viewer may run its own
#: script and frame the snapshot; the snapshot itself (see snapshots.py) may run none.
STATIC_FILES = {
    "cobrowse.js": ("application/javascript; charset=utf-8", "default-src 'none'"),
    "agent.html": ("text/html; charset=utf-8",
                   "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                   "img-src 'self' data:; frame-src 'self'; connect-src 'self'; base-uri 'none'; "
                   "form-action 'none'; frame-ancestors 'none'"),
    "agent.js": ("application/javascript; charset=utf-8", "default-src 'none'"),
    "agent.css": ("text/css; charset=utf-8", "default-src 'none'"),
}


def load_static_files() -> dict[str, PreparedResource]:
    """Read our own static files once, at start-up, into ready responses."""
    files = {}
    for name, (content_type, csp) in STATIC_FILES.items():
        path = STATIC_DIR / name
        if path.is_file():
            body = path.read_bytes()
            files[name] = PreparedResource.build_page(
                body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"', csp)
    return files


class ResourceSyncMiddleware:
    """Wraps a WSGI app and serves static resource synchronization under ``settings.prefix``."""

    def __init__(
        self,
        app: WSGIApplication,
        settings: Settings | None = None,
        authorize_session: Callable[[WSGIEnvironment], bool] | None = None,
        **overrides: Any,
    ) -> None:
        settings = settings if settings is not None else Settings.from_file()
        self.settings = settings = settings.replace(**overrides) if overrides else settings
        self.app = app
        self.prefix = settings.prefix
        self.authorize_session = authorize_session
        self.metrics = Metrics()

        backend = (RedisLevel2(settings.redis_url) if settings.redis_url
                   else EmbeddedLevel2(settings.embedded_path, settings.embedded_max_bytes))
        self.level2 = CircuitBreaker(backend, on_failure=self.metrics.level2_errors.inc)
        self.store = TieredStore(self.level2, settings.local_max_bytes, settings.local_ttl,
                                 settings.cache_ttl, settings.session_ttl)
        self.sessions = SessionManager(self.level2, TokenSigner(settings.secret_key),
                                       settings.session_ttl, settings.session_max_bytes)
        self.uploader = Uploader(self.store, self.sessions, settings.max_size, self.metrics)
        fetcher = ServerSideSync(settings, self.store) if settings.allowed_external_domains else None
        self.resources = ResourceServer(self.prefix, self.store, self.sessions, self.metrics,
                                        settings.proxy_types, fetcher)
        self.snapshots = Snapshots(self.prefix, self.store, self.sessions, settings.max_size)
        self.static_files = load_static_files()
        self.metrics.watch(lambda: not self.level2.is_open, lambda: self.store.local.size)

        # path -> (metrics endpoint, {method: handler}, whether customer pages call it cross-origin)
        p = self.prefix
        self.routes: dict[str, tuple[str, dict[str, Handler], bool]] = {
            f"{p}/sessions": ("sessions", {"POST": self.create_session}, True),
            f"{p}/sessions/join": ("join", {"POST": self.join_session}, False),
            f"{p}/sessions/current": ("current", {"GET": self.current_session, "DELETE": self.end_session}, True),
            f"{p}/resources/check": ("check", {"POST": self.check_resources}, True),
            f"{p}/resources": ("resources", {"GET": self.get_resource, "HEAD": self.get_resource,
                                             "POST": self.upload_resources}, True),
            f"{p}/snapshot": ("snapshot", {"GET": self.get_snapshot, "HEAD": self.get_snapshot,
                                           "POST": self.post_snapshot}, True),
            f"{p}/cobrowse.js": ("script", {"GET": self.static("cobrowse.js")}, False),
            f"{p}/agent": ("agent", {"GET": self.static("agent.html")}, False),
            f"{p}/static/agent.js": ("agent", {"GET": self.static("agent.js")}, False),
            f"{p}/static/agent.css": ("agent", {"GET": self.static("agent.css")}, False),
            f"{p}/health": ("health", {"GET": self.health}, False),
            f"{p}/metrics": ("metrics", {"GET": self.metrics_page}, False),
        }
        self._prefix_slash = p + "/"
        self._resources_path = f"{p}/resources"
        self._count_resources = self.metrics.requests["resources"].inc
        self._count_l1_hit = self.metrics.hits["L1"].inc

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not (path.startswith(self._prefix_slash) or path == self.prefix):
            return self.app(environ, start_response)
        if path == self._resources_path and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            # The fast path: the same agent URL answered from level 1 within the last second.
            hot = self.resources.hot_answer(environ.get("QUERY_STRING", ""))
            if hot is not None:
                self._count_resources()
                self._count_l1_hit()
                response = hot.prepared.answer(environ.get("HTTP_IF_NONE_MATCH"),
                                               environ.get("HTTP_ACCEPT_ENCODING"))
                start_response(response.status, response.headers)
                return [] if environ["REQUEST_METHOD"] == "HEAD" else [response.body]
        response = self.dispatch(environ, path)
        start_response(response.status, response.headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            return []
        return [response.body]

    def dispatch(self, environ: WSGIEnvironment, path: str) -> Response:
        method = environ["REQUEST_METHOD"]
        route = self.routes.get(path)
        cors: list[tuple[str, str]] = []
        try:
            if route is None:
                self.metrics.requests["other"].inc()
                raise HttpError(404, "not_found", "no such endpoint")
            endpoint, handlers, cross_origin = route
            self.metrics.requests[endpoint].inc()
            if cross_origin:
                cors = self._cors_headers(environ)
                if method == "OPTIONS" and cors:
                    return empty_response(204, [*cors,
                        ("Access-Control-Allow-Methods", ", ".join(handlers)),
                        ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                        ("Access-Control-Max-Age", "600")])
            handler = handlers.get(method)
            if handler is None:
                raise HttpError(405, "method_not_allowed", f"{method} is not allowed here",
                                [("Allow", ", ".join(handlers))])
            response = handler(environ)
        except HttpError as exc:
            self.metrics.reject(exc.code)
            response = exc.response()
        except HTTPException as exc:  # werkzeug's own refusals (e.g. a malformed request body)
            status = exc.code if exc.code in STATUS_LINES else 400
            error = HttpError(status, "bad_request" if status < 500 else "internal", exc.description or exc.name)
            self.metrics.reject(error.code)
            response = error.response()
        except Exception:  # never a traceback in a response; the log keeps it
            log.exception("error handling %s %s", method, path)
            self.metrics.reject("internal")
            response = HttpError(500, "internal", "internal error").response()
        if cors and not any(name == "Access-Control-Allow-Origin" for name, _ in response.headers):
            # (a served resource already says "*": two such headers would make browsers refuse it)
            response = Response(response.status, [*response.headers, *cors], response.body)
        return response

    def _cors_headers(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin.lower() in self.settings.allowed_origins:
            return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
                    ("Vary", "Origin")]
        return []

    def _client_address(self, environ: WSGIEnvironment) -> str:
        """The client's address, trusting ``trusted_proxies`` hops of X-Forwarded-For (as ProxyFix)."""
        trusted = self.settings.trusted_proxies
        if trusted:
            forwarded = [a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
            if len(forwarded) >= trusted:
                return forwarded[-trusted]
        return environ.get("REMOTE_ADDR", "")

    def _customer(self, environ: WSGIEnvironment) -> Session:
        return self.sessions.authenticate(environ.get("HTTP_X_COBROWSE_TOKEN"), "upload")

    # --- sessions ------------------------------------------------------------------------------

    def create_session(self, environ: WSGIEnvironment) -> Response:
        if self.authorize_session is not None and not self.authorize_session(environ):
            raise HttpError(403, "forbidden", "you may not start a co-browse session")
        options = read_json(environ, required=False) or {}
        if not isinstance(options, dict):
            raise HttpError(400, "bad_request", "the body must be a JSON object")
        static = options.get("enableStaticResourceService", True)
        css = options.get("css", {})
        css_server = css.get("server", True) if isinstance(css, dict) else None
        page, charset = options.get("page", ""), options.get("charset", "")
        if not isinstance(static, bool) or not isinstance(css_server, bool):
            raise HttpError(400, "bad_request", "enableStaticResourceService and css.server must be booleans")
        if not isinstance(page, str) or not isinstance(charset, str) or len(page) > 8192 or len(charset) > 64:
            raise HttpError(400, "bad_request", "page and charset must be short strings")
        _, answer = self.sessions.create(static, css_server, page, charset.strip().lower())
        return json_response(201, answer)

    def join_session(self, environ: WSGIEnvironment) -> Response:
        payload = read_json(environ)
        code = payload.get("code") if isinstance(payload, dict) else None
        if not isinstance(code, str) or not (len(code) == 9 and code.isdigit()):
            raise HttpError(400, "bad_request", 'the body must be {"code": "<9 digits>"}')
        return json_response(200, self.sessions.join(code, self._client_address(environ)))

    def current_session(self, environ: WSGIEnvironment) -> Response:
        token = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("token") or environ.get("HTTP_X_COBROWSE_TOKEN")
        session = self.sessions.authenticate(token, "view")
        resources = [
            {"url": url, "sha256": meta.sha256, "size": meta.size, "type": meta.content_type,
             "tier": "L1" if self.store.in_level1(session.sid, url) else "L2"}
            for url, meta in sorted(self.store.stored(session.sid).items())
            if not url.startswith("~")  # the snapshot and other internal entries
        ]
        served = [{"url": url, "source": source, "tier": tier, "status": status}
                  for url, (source, tier, status) in list(session.served.items())]
        return json_response(200, {
            "session": session.sid, "settings": session.public_settings(), "page": session.page,
            "charset": session.charset, "expires_in": int(self.settings.session_ttl),
            **self.snapshots.info(session), "resources": resources, "served": served,
        })

    def end_session(self, environ: WSGIEnvironment) -> Response:
        session = self._customer(environ)
        self.sessions.end(session)
        self.store.drop_session(session.sid)
        return empty_response(204)

    # --- resources -----------------------------------------------------------------------------

    def check_resources(self, environ: WSGIEnvironment) -> Response:
        return json_response(200, self.uploader.check(environ, self._customer(environ)))

    def upload_resources(self, environ: WSGIEnvironment) -> Response:
        session = self._customer(environ)
        content_type = environ.get("CONTENT_TYPE", "")
        if len(content_type) > MAX_CONTENT_TYPE_LENGTH:  # and the header parser is slow on such
            raise HttpError(400, "bad_request", f"Content-Type is limited to {MAX_CONTENT_TYPE_LENGTH} characters")
        mimetype, options = parse_options_header(content_type)
        if mimetype == "multipart/form-data":
            if not options.get("boundary"):
                raise HttpError(400, "bad_request", "multipart body without a boundary")
            status, answer = self.uploader.upload_batch(environ, session, options["boundary"])
            return json_response(status, answer)
        return json_response(201, self.uploader.upload_raw(environ, session))

    def post_snapshot(self, environ: WSGIEnvironment) -> Response:
        return json_response(201, self.snapshots.post(environ, self._customer(environ)))

    def get_snapshot(self, environ: WSGIEnvironment) -> Response:
        return self.snapshots.get(environ.get("QUERY_STRING", ""), environ.get("HTTP_IF_NONE_MATCH"),
                                  environ.get("HTTP_ACCEPT_ENCODING"))

    def static(self, name: str) -> Handler:
        """A handler serving one of our own files (404 when the package lacks it)."""
        def handler(environ: WSGIEnvironment) -> Response:
            prepared = self.static_files.get(name)
            if prepared is None:
                raise HttpError(404, "not_found", f"{name} is not installed")
            return prepared.answer(environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_ACCEPT_ENCODING"))
        return handler

    def get_resource(self, environ: WSGIEnvironment) -> Response:
        return self.resources.serve(environ.get("QUERY_STRING", ""), environ.get("HTTP_IF_NONE_MATCH"),
                                    environ.get("HTTP_ACCEPT_ENCODING"))

    # --- operations ----------------------------------------------------------------------------

    def health(self, environ: WSGIEnvironment) -> Response:
        level2_state = self.level2.state
        if level2_state != "open":
            try:
                self.level2.call("ping")
                level2_state = "ok"
            except Exception:
                level2_state = self.level2.state
        level2: dict[str, Any] = {"backend": self.level2.backend.name,
                                  "status": "ok" if level2_state == "ok" else "down"}
        if level2_state != "ok":
            level2["circuit"] = level2_state
            level2["error"] = self.level2.last_error
        return json_response(200, {
            "status": "ok" if level2_state == "ok" else "degraded",
            "tiers": {
                "L1": {"status": "ok", "bytes": self.store.local.size, "max_bytes": self.store.local.max_bytes,
                       "entries": len(self.store.local)},
                "L2": level2,
            },
        })

    def metrics_page(self, environ: WSGIEnvironment) -> Response:
        body = self.metrics.render()
        return Response("200 OK", [("Content-Type", self.metrics.content_type),
                                   ("Content-Length", str(len(body))), ("Cache-Control", "no-store")], body)
