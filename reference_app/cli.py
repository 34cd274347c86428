"""``cobrowse-server``: the reference app under gunicorn, for demos and end-to-end tests (SPEC 10)."""

from __future__ import annotations

import argparse
import configparser
import os
import secrets
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from gunicorn.app.base import BaseApplication

from middleware import Settings

SECRET_ENV = "COBROWSE_COBROWSE_SECRET_KEY"


class _Server(BaseApplication):
    """gunicorn running :func:`reference_app.create_app` with options given in code, not argv."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__(prog="cobrowse-server")

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        # Called in each worker after the fork (no preload), so every worker opens its own store
        # connections instead of inheriting the master's.
        from reference_app import create_app

        return create_app(self._settings)


def _secret_configured(config_path: str | None) -> bool:
    """Whether the environment or the INI file sets ``[cobrowse] secret_key``."""
    if os.environ.get(SECRET_ENV):
        return True
    path = config_path or os.environ.get("COBROWSE_CONFIG")
    if not path:
        return False
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return False  # Settings.from_file reports what is wrong with the file
    return bool(parser.get("cobrowse", "secret_key", fallback="").strip())


def _base_url(host: str, port: int) -> str:
    """A URL a browser on this machine can open for the bound address."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _describe_store(settings: Settings) -> str:
    if not settings.redis_url:
        return f"embedded, in {settings.embedded_path}"
    parts = urlsplit(settings.redis_url)
    if "@" in parts.netloc:  # never print a Redis password
        parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
    return f"Redis, {parts.geturl()}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cobrowse-server",
        description="Run the co-browse reference server: the sample site behind a login, the "
        "resource-sync middleware and the agent console.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--config", metavar="PATH", help="INI file (default: $COBROWSE_CONFIG, if set)"
    )
    parser.add_argument(
        "--redis-url", metavar="URL", help="level-2 store on Redis (default: the embedded store)"
    )
    parser.add_argument(
        "--workers", type=_positive, default=2, help="worker processes (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=_positive, default=4, help="threads per worker (default: %(default)s)"
    )
    parser.add_argument(
        "--no-second-origin", action="store_true",
        help="do not start the sample site's second origin on the next port (PORT + 1)",
    )
    args = parser.parse_args(argv)

    # Tokens and login cookies are signed with the secret: every worker must hold the same one, or a
    # token issued by one worker is refused by the next. Without a configured secret, draw one
    # here, before gunicorn forks, and hand it down through the environment.
    generated_secret = not _secret_configured(args.config)
    if generated_secret:
        os.environ[SECRET_ENV] = secrets.token_urlsafe(32)

    try:
        overrides = {} if args.redis_url is None else {"redis_url": args.redis_url}
        settings = Settings.from_file(args.config, **overrides)
    except (ValueError, OSError) as error:
        parser.exit(2, f"cobrowse-server: error: {error}\n")

    site = _base_url(args.host, args.port)
    lines = [
        f"Co-browse reference server ({args.workers} workers x {args.threads} threads)",
        f"  Sample site:    {site}/   (log in as {settings.demo_user} / {settings.demo_password})",
        f"  Agent console:  {site}/agent",
        f"  Level-2 store:  {_describe_store(settings)}",
    ]
    if generated_secret:
        lines.append(
            "  Secret key:     none configured; generated one for this run, shared by its workers. "
            "Sessions and logins end when it stops: set [cobrowse] secret_key to keep them."
        )
    second_port = args.port + 1 if args.port and not args.no_second_origin else None
    if second_port:
        lines.append(
            f"  Second origin:  {_base_url(args.host, second_port)}/   (the Origins page's "
            "resources on another origin, with and without CORS)"
        )
    lines.append("Press Ctrl-C to stop.")
    banner = "\n".join(lines)
    children: list[subprocess.Popen[bytes]] = []

    def when_ready(_arbiter: Any) -> None:
        # Its own process, not a thread: gunicorn forks its workers from this one after this hook.
        if second_port:
            # A session of its own: Ctrl-C reaches gunicorn, whose exit hook then ends it.
            children.append(subprocess.Popen(
                [sys.executable, "-m", "reference_app.second_origin", "--host", args.host,
                 "--port", str(second_port), "--quiet", "--parent", str(os.getpid())],
                start_new_session=True))
        # Printed once the port is bound, so whoever reads it can connect at once.
        print(banner, flush=True)

    def on_exit(_arbiter: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()

    host = f"[{args.host}]" if ":" in args.host else args.host
    options: dict[str, Any] = {
        "bind": f"{host}:{args.port}",
        "workers": args.workers,
        "threads": args.threads,  # gunicorn picks its threaded worker when this is above 1
        "proc_name": "cobrowse-server",
        "when_ready": when_ready,
        "on_exit": on_exit,
        # Ctrl-C can reach a worker still booting, before it listens for signals; gunicorn then
        # waits this long before killing it. 30 s (its default) is far too long for a demo server.
        "graceful_timeout": 3,
    }
    server = _Server(settings, options)
    if "control_socket_disable" in server.cfg.settings:
        # Recent gunicorn opens a control socket at one fixed path per user
        # (~/.gunicorn/gunicorn.ctl): two servers would fight over it, and a demo needs none.
        server.cfg.set("control_socket_disable", True)
    server.run()
