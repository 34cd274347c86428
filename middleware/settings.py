"""Configuration of the middleware: its options, their defaults, parsing and validation (SPEC 3).

Values come from, lowest precedence first: the defaults, an INI file, ``COBROWSE_*`` environment
variables and keyword arguments. :data:`OPTIONS` is the one table of every option's INI name,
default and meaning, so the README and the error messages cannot drift apart. Every value is parsed
and checked when a :class:`Settings` is built, so a bad one stops start-up with a message naming the
option and the value, instead of surfacing on some later request.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import ipaddress
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple
from urllib.parse import SplitResult, urlsplit

import idna

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A configuration problem found at start-up; the message names the option and what is wrong."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option  # the keyword of the offending option, when there is one


class EphemeralSecretKeyWarning(UserWarning):
    """No ``secret_key`` was configured, so a random per-process key is used.

    A class of its own so that test suites can silence exactly this warning.
    """


# --- the option table -----------------------------------------------------------------------------


class Option(NamedTuple):
    section: str  # INI section
    key: str  # INI key, spelled as SPEC 3 spells it (matched case-insensitively)
    default: str  # the default, as documented
    meaning: str


OPTIONS: dict[str, Option] = {
    "prefix": Option("cobrowse", "prefix", "/_cobrowse", "URL prefix the middleware owns"),
    "secret_key": Option(
        "cobrowse", "secret_key", "random per process, with a warning",
        "signs session tokens; must be shared by all processes of one deployment"),
    "allowed_external_domains": Option(
        "cobrowse", "allowedExternalDomains", "empty",
        "domains the server may fetch from for server-side sync"),
    "allowed_origins": Option(
        "cobrowse", "allowedOrigins", "empty (same origin only)",
        "other origins whose pages may call the customer endpoints (CORS)"),
    "allowed_private_networks": Option(
        "cobrowse", "allowedPrivateNetworks", "empty",
        "CIDRs the server-side fetch may reach despite the private-address ban"),
    "redis_url": Option(
        "redis", "url", "empty",
        "redis://, rediss:// or unix:// URL of level 2; empty = the embedded store"),
    "cache_ttl": Option(
        "redis", "cache.ttl", "1h", "level-2 retention of a resource left untouched (sliding)"),
    "local_ttl": Option("cache", "local.ttl", "30m", "level-1 (in-process) retention"),
    "local_max_bytes": Option(
        "cache", "local.max_bytes", "256MB", "level-1 memory bound (bytes of bodies)"),
    "embedded_path": Option(
        "cache", "embedded.path", "a per-user cache folder",
        "where the embedded level-2 store lives"),
    "embedded_max_bytes": Option(
        "cache", "embedded.max_bytes", "1GB",
        "size bound of the embedded level-2 store (least recently used evicted first)"),
    "max_size": Option("resources", "max_size", "10MB", "largest single resource accepted"),
    "session_max_bytes": Option(
        "resources", "session.max_bytes", "200MB", "total bytes one session may upload"),
    "proxy_types": Option(
        "proxy", "types", "css", "what server-side sync may fetch: any of css, font, image"),
    "proxy_timeout": Option(
        "proxy", "timeout", "5s", "total time budget of one server-side fetch"),
    "proxy_max_redirects": Option(
        "proxy", "max_redirects", "3", "redirects followed (each one re-checked)"),
    "proxy_failure_ttl": Option(
        "proxy", "failure.ttl", "60s",
        "how long a failed server-side fetch is remembered (negative cache)"),
    "proxy_outbound": Option(
        "proxy", "outbound", "empty",
        "an HTTP proxy the server-side fetch goes through; the address checks still apply "
        "to the target"),
    "session_ttl": Option(
        "cobrowse", "session.ttl", "2h",
        "a session, its tokens and its join code expire this long after their last use"),
    "trusted_proxies": Option(
        "cobrowse", "trusted_proxies", "0",
        "how many reverse proxies in front set X-Forwarded-For, as Werkzeug's ProxyFix "
        "counts them"),
    "demo_user": Option("reference", "demo.user", "demo", "the reference server's demo login"),
    "demo_password": Option(
        "reference", "demo.password", "demo", "the reference server's demo password"),
}

# (section, lower-cased key) -> keyword: configparser lower-cases keys, so look them up that way.
_INI_KEYS = {(opt.section, opt.key.lower()): name for name, opt in OPTIONS.items()}
_SECTIONS = sorted({opt.section for opt in OPTIONS.values()})


def env_name(keyword: str) -> str:
    """An option's environment variable: ``COBROWSE_<SECTION>_<KEY>``, dots and dashes as ``_``."""
    opt = OPTIONS[keyword]
    return "COBROWSE_" + re.sub(r"[.-]", "_", f"{opt.section}_{opt.key}").upper()


# --- value parsers --------------------------------------------------------------------------
# Each takes what a user may give (text from INI/env, or a Python value) and returns the parsed
# value, raising _Invalid otherwise. Each also accepts its own output, so re-parsing (which
# dataclasses.replace does) changes nothing.


class _Invalid(ValueError):
    """A value a parser refused: how to show it, and what was expected instead."""

    def __init__(self, value: Any, expected: str, shown: str | None = None) -> None:
        self.shown = repr(value) if shown is None else shown
        self.expected = expected
        super().__init__(f"{self.shown}: {expected}")


_NUMBER_AND_UNIT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)

_DURATION_UNITS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "ms": 0.001,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_SIZE_UNITS = {"": 1, "b": 1} | {
    spelling: 1024 ** power
    for power, letter in enumerate("kmgt", start=1)
    for spelling in (letter, letter + "b", letter + "ib")
}


def _number_with_unit(text: str, units: Mapping[str, float]) -> float | None:
    """``text`` as a number times its unit (case-insensitive), or None if it is not one."""
    match = _NUMBER_AND_UNIT.fullmatch(text)
    if match is None or match[2].lower() not in units:
        return None
    return float(match[1]) * units[match[2].lower()]


def _duration(value: Any) -> float:
    """Seconds, from a number, a timedelta, or text such as ``3600``, ``30m``, ``1h``, ``1d``."""
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _number_with_unit(value, _DURATION_UNITS)
    if seconds is None:
        raise _Invalid(value, "expected a duration such as 3600, 30m, 1h, 1d")
    if not 0 < seconds < math.inf:
        raise _Invalid(value, "expected a duration greater than 0, such as 3600, 30m, 1h, 1d")
    return seconds


def _size(value: Any) -> int:
    """Bytes, from a whole number or text such as ``512``, ``64KB``, ``10MB``, ``1GB``.

    Units are powers of 1024, whatever their spelling (K, KB, KiB).
    """
    size: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, float) and value.is_integer():
        size = value
    elif isinstance(value, str):
        size = _number_with_unit(value, _SIZE_UNITS)
    if size is None:
        raise _Invalid(value, "expected a size such as 512, 64KB, 10MB, 1GB")
    if int(size) <= 0:
        raise _Invalid(value, "expected a size greater than 0, such as 512, 64KB, 10MB, 1GB")
    return int(size)


def _count(value: Any) -> int:
    """A whole number >= 0, given as an int or as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        number = int(value)
    else:
        raise _Invalid(value, "expected a whole number >= 0")
    if number < 0:
        raise _Invalid(value, "expected a whole number >= 0")
    return number


def _items(value: Any) -> list[Any]:
    """The items of a list option: a Python list/tuple/set, or a string separated by commas.

    Whitespace and newlines separate too (no item may contain them), so an INI value can span
    several lines; empty items, as after a trailing comma, are dropped.
    """
    if isinstance(value, str):
        return [item for item in re.split(r"[,\s]+", value) if item]
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [item.strip() if isinstance(item, str) else item for item in value]
        return [item for item in items if item != ""]
    raise _Invalid(value, "expected a list or a comma-separated string")


def _non_empty_text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(value, "expected a non-empty string")
    return value


_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def _prefix(value: Any) -> str:
    """A URL path such as ``/_cobrowse``: it is compared with request paths as is."""
    if not (isinstance(value, str) and _PREFIX.fullmatch(value)) or re.search(
        r"/\.\.?(/|$)", value
    ):
        raise _Invalid(
            value,
            "expected a path such as /_cobrowse: starting with /, without a trailing /, "
            "spaces, dot segments, query or fragment",
        )
    return value


_SECRET_HELP = (
    'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
)


def _secret_key(value: Any) -> bytes:
    """The token-signing key: str (UTF-8 encoded) or bytes, at least 16 bytes long.

    Error messages give the key's length, never the key itself: they end up in logs.
    """
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray)):
        raise _Invalid(value, "expected a str or bytes key", shown=f"a {type(value).__name__}")
    if len(value) < 16:
        raise _Invalid(
            value, f"expected at least 16 bytes; {_SECRET_HELP}",
            shown=f"a {len(value)}-byte key (not shown)",
        )
    return bytes(value)


_process_key: bytes | None = None
_process_key_lock = threading.Lock()


def _ephemeral_secret_key() -> bytes:
    """The random key used when none is configured: one per process, with a warning.

    One per process (not per Settings) so that the several Settings objects a process may build
    agree; but tokens it signs die with the process and mean nothing to its siblings.
    """
    global _process_key
    message = (
        "no secret_key configured: using a random key for this process; session tokens will not "
        "survive a restart nor work across processes. Set [cobrowse] secret_key or "
        f"{env_name('secret_key')}."
    )
    with _process_key_lock:
        if _process_key is None:
            _process_key = secrets.token_bytes(32)
            log.warning(message)  # once: the log should not repeat it for every Settings built
    # stacklevel 3: past dataclass __init__, to whoever built the Settings
    warnings.warn(message, EphemeralSecretKeyWarning, stacklevel=3)
    return _process_key


def default_embedded_path(environ: Mapping[str, str] | None = None) -> str:
    """The embedded store's folder: ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``cobrowse``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative value
        home = env.get("HOME")
        if not home:
            try:
                home = str(Path.home())
            except RuntimeError:  # no HOME and no passwd entry, as with some container uids
                home = tempfile.gettempdir()
        base = os.path.join(home, ".cache")
    return os.path.join(base, "cobrowse")


def _embedded_path(value: Any) -> str:
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(path, str) or not path:
        raise _Invalid(value, "expected a folder path")
    return os.path.expanduser(path)


PROXY_TYPES = frozenset({"css", "font", "image"})


def _proxy_types(value: Any) -> frozenset[str]:
    """A subset of css, font, image; empty turns server-side sync off."""
    types = set()
    for item in _items(value):
        kind = item.lower() if isinstance(item, str) else None
        if kind not in PROXY_TYPES:
            raise _Invalid(item, "expected any of css, font, image")
        types.add(kind)
    return frozenset(types)


def _networks(value: Any) -> tuple[IPNetwork, ...]:
    """CIDRs such as ``10.0.0.0/8``; host bits are allowed (``10.1.2.3/8`` is ``10.0.0.0/8``)."""
    networks = []
    for item in _items(value):
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(item)
            continue
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _Invalid(item, "expected a CIDR such as 10.0.0.0/8 or fd00::/8") from None
    return tuple(networks)


def _redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``: error messages end up in logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


def _split_url(value: Any, expected: str) -> SplitResult:
    """``value`` split as a URL, its port checked; _Invalid (password hidden) if it is not one."""
    if not isinstance(value, str):
        raise _Invalid(value, expected)
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise _Invalid(value, expected, shown=repr(_redacted(value))) from None
    if port == 0:
        raise _Invalid(value, expected, shown=repr(_redacted(value)))
    return parts


REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def _redis_url(value: Any) -> str:
    """Empty (the embedded store) or a redis://, rediss:// or unix:// URL, as redis-py reads it."""
    expected = "expected a redis://, rediss:// or unix:// URL, or empty for the embedded store"
    parts = _split_url(value, expected)
    if not value.strip():
        return ""
    scheme = parts.scheme.lower()
    complete = bool(parts.path) if scheme == "unix" else bool(parts.hostname)
    if scheme not in REDIS_SCHEMES or not complete:
        raise _Invalid(value, expected, shown=repr(_redacted(value)))
    return value.strip()


def _proxy_outbound(value: Any) -> str:
    """Empty (direct connections) or an ``http(s)://[user:password@]host[:port]`` proxy URL."""
    expected = "expected an http:// or https:// proxy URL such as http://proxy:3128, or empty"
    parts = _split_url(value, expected)
    if not value.strip():
        return ""
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise _Invalid(value, expected, shown=repr(_redacted(value)))
    return value.strip()


# --- host names and the allowedExternalDomains grammar --------------------------------------

_ASCII_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# The URL standard parses a host whose last label is a number as IPv4 ("127.1" is 127.0.0.1).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _canonical_name(name: str) -> str:
    """A host name as URLs carry it: IDNA A-labels (UTS #46), lower-case, one trailing dot dropped.

    Raises ValueError for a name that is not a valid host name.
    """
    if name.isascii() and "xn--" not in name.lower():
        # Plain ASCII needs only lower-casing. Checked here rather than by idna, whose IDNA2008
        # rules refuse the underscores browsers accept (e.g. Docker service names).
        name = name.lower().removesuffix(".")
        if len(name) > 253 or not all(_ASCII_LABEL.fullmatch(label) for label in name.split(".")):
            raise ValueError("not a valid host name")
    else:
        try:
            name = idna.encode(name, uts46=True).decode("ascii").removesuffix(".")
        except UnicodeError as exc:  # idna.IDNAError is one
            raise ValueError(f"not a valid host name ({exc})") from None
        if not name or name.endswith("."):
            raise ValueError("not a valid host name (empty label)")
    if _NUMERIC_LABEL.fullmatch(name.rpartition(".")[2]):
        raise ValueError("not a valid IPv4 address, nor a host name (it ends in a number)")
    return name


def _canonical_host(host: str | IPAddress) -> str | IPAddress:
    """A URL host as a canonical name or an IP address (brackets optional); else ValueError."""
    if isinstance(host, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return host
    if host.startswith("[") and host.endswith("]"):
        return ipaddress.IPv6Address(host[1:-1])
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _canonical_name(host)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _effective_port(port: int | None, scheme: str) -> int | None:
    """The port a request goes to, or None if it is not an http(s) request to a valid port."""
    if scheme.lower() not in _DEFAULT_PORTS:
        return None  # only http and https are ever fetched (SPEC 6)
    if port is None:
        return _DEFAULT_PORTS[scheme.lower()]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        return None
    return port


_ENTRY_HELP = "e.g. cdn.example.com, *.example.org, static.example.com:8443 or [::1]:8081"


@dataclass(frozen=True)
class DomainRule:
    """One ``allowedExternalDomains`` entry (SPEC 3). Build it with :meth:`parse`."""

    host: str | IPAddress  # a canonical host name (without "*."), or an IP address
    wildcard: bool = False  # "*.host": any subdomain of host at any depth, never host itself
    port: int | None = None  # None: ports 80 and 443 only

    @classmethod
    def parse(cls, entry: str) -> DomainRule:
        """Parse ``host``, ``*.host`` or an IP literal, each with an optional ``:port``.

        Raises ValueError (naming the entry and what is wrong) for anything else.
        """
        text = entry.strip()
        if "://" in text:
            raise _Invalid(entry, f"no scheme: write the host only, {_ENTRY_HELP}")
        if any(char in text for char in "/?#"):
            raise _Invalid(entry, f"no path: write the host only, {_ENTRY_HELP}")
        if "@" in text:
            raise _Invalid(entry, "no user name or password")

        bracketed = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
        if bracketed:
            host, port_text = bracketed[1], bracketed[2]
        elif text.count(":") > 1:
            raise _Invalid(entry, "write an IPv6 address in brackets, as in [::1]:8081")
        else:
            host, colon, port_text = text.partition(":")
            port_text = port_text if colon else None

        port = None
        if port_text is not None:
            if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) <= 65535:
                raise _Invalid(entry, "expected a port from 1 to 65535 after ':'")
            port = int(port_text)

        if bracketed:
            try:
                return cls(ipaddress.IPv6Address(host), port=port)
            except ValueError:
                raise _Invalid(entry, "not a valid IPv6 address in the brackets") from None

        wildcard = host.startswith("*.")
        name = host[2:] if wildcard else host
        if "*" in name:
            what = "would allow every host" if text == "*" else "is only allowed as '*.' in front"
            raise _Invalid(entry, f"'*' {what}; {_ENTRY_HELP}")
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            if wildcard:
                raise _Invalid(entry, "a wildcard cannot apply to an IP address")
            return cls(address, port=port)
        try:
            name = _canonical_name(name)
        except ValueError as exc:
            raise _Invalid(entry, str(exc)) from None
        if wildcard and "." not in name:
            # "*.com" would allow a whole top-level domain
            raise _Invalid(
                entry, "a wildcard needs at least two labels after '*.', as in *.example.com"
            )
        return cls(name, wildcard=wildcard, port=port)

    def matches(
        self, host: str | IPAddress, port: int | None = None, scheme: str = "https"
    ) -> bool:
        """Whether a URL's host and port (None: the scheme's default) fall under this rule."""
        return domain_allowed((self,), host, port, scheme)

    def _matches(self, host: str | IPAddress, port: int) -> bool:
        """The match, for a host already canonical and a port already resolved."""
        if port != self.port if self.port is not None else port not in (80, 443):
            return False
        if self.wildcard:
            return isinstance(host, str) and host.endswith("." + self.host)
        return host == self.host  # a name never equals an address, nor IPv4 an IPv6

    def __str__(self) -> str:
        """The rule as an entry, so that ``DomainRule.parse(str(rule)) == rule``."""
        host = f"[{self.host}]" if isinstance(self.host, ipaddress.IPv6Address) else str(self.host)
        port = f":{self.port}" if self.port is not None else ""
        return f"{'*.' if self.wildcard else ''}{host}{port}"


def domain_allowed(
    rules: Iterable[DomainRule],
    host: str | IPAddress,
    port: int | None = None,
    scheme: str = "https",
) -> bool:
    """Whether any rule admits the host and port (None: the scheme's default) of an http(s) URL.

    ``host`` is a name (normalised as the entries are; an invalid one matches nothing) or an IP
    literal, with or without brackets.
    """
    effective_port = _effective_port(port, scheme)
    if effective_port is None:
        return False
    try:
        canonical = _canonical_host(host)
    except ValueError:
        return False
    return any(rule._matches(canonical, effective_port) for rule in rules)


def _domain_rules(value: Any) -> tuple[DomainRule, ...]:
    rules = []
    for item in _items(value):
        if not isinstance(item, (str, DomainRule)):
            raise _Invalid(item, f"expected a domain entry, {_ENTRY_HELP}")
        # A DomainRule goes through its text too, so a hand-built one is checked and normalised.
        rules.append(DomainRule.parse(str(item)))
    return tuple(rules)


def _origins(value: Any) -> tuple[str, ...]:
    """Origins ``scheme://host[:port]``, as browsers send them in ``Origin``: lower-case,
    IDNA-encoded, default port dropped."""
    expected = (
        "expected an origin scheme://host[:port] such as https://www.example.com, "
        "with no path (not even '/') and no user name"
    )
    origins = []
    for item in _items(value):
        parts = _split_url(item, expected)
        scheme = parts.scheme.lower()
        if (
            scheme not in _DEFAULT_PORTS
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
        ):
            raise _Invalid(item, expected)
        try:
            host = _canonical_host(parts.hostname)
        except ValueError as exc:
            raise _Invalid(item, f"{exc}; {expected}") from None
        host_text = f"[{host}]" if isinstance(host, ipaddress.IPv6Address) else str(host)
        port = "" if parts.port in (None, _DEFAULT_PORTS[scheme]) else f":{parts.port}"
        origins.append(f"{scheme}://{host_text}{port}")
    return tuple(origins)


# --- Settings -------------------------------------------------------------------------------

_PARSERS = {
    "prefix": _prefix,
    "secret_key": _secret_key,
    "allowed_external_domains": _domain_rules,
    "allowed_origins": _origins,
    "allowed_private_networks": _networks,
    "redis_url": _redis_url,
    "cache_ttl": _duration,
    "local_ttl": _duration,
    "local_max_bytes": _size,
    "embedded_path": _embedded_path,
    "embedded_max_bytes": _size,
    "max_size": _size,
    "session_max_bytes": _size,
    "proxy_types": _proxy_types,
    "proxy_timeout": _duration,
    "proxy_max_redirects": _count,
    "proxy_failure_ttl": _duration,
    "proxy_outbound": _proxy_outbound,
    "session_ttl": _duration,
    "trusted_proxies": _count,
    "demo_user": _non_empty_text,
    "demo_password": _non_empty_text,
}


def _invalid(keyword: str, error: _Invalid) -> SettingsError:
    opt = OPTIONS[keyword]
    return SettingsError(
        f"invalid value for {keyword} ([{opt.section}] {opt.key}): "
        f"{error.shown} ({error.expected})",
        option=keyword,
    )


def _check_names(names: Iterable[str]) -> None:
    """Refuse keywords that name no option, suggesting the nearest one: typos must not pass."""
    for name in names:
        if name not in OPTIONS:
            close = difflib.get_close_matches(name, OPTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SettingsError(f"unknown setting {name!r}{hint}")


@dataclass(frozen=True)
class Settings:
    """Every option of the middleware, parsed and checked (SPEC 3).

    Fields accept what a user may write: durations and sizes as numbers or text ("2h", "10MB"),
    lists as Python lists or comma-separated text; they hold the parsed values (seconds as float,
    bytes as int, tuples and frozensets). An invalid value raises :class:`SettingsError`.
    """

    prefix: str = "/_cobrowse"
    secret_key: bytes = field(default_factory=_ephemeral_secret_key, repr=False)
    allowed_external_domains: tuple[DomainRule, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    allowed_private_networks: tuple[IPNetwork, ...] = ()
    redis_url: str = ""
    cache_ttl: float = 3600
    local_ttl: float = 1800
    local_max_bytes: int = 256 * 1024**2
    embedded_path: str = field(default_factory=default_embedded_path)
    embedded_max_bytes: int = 1024**3
    max_size: int = 10 * 1024**2
    session_max_bytes: int = 200 * 1024**2
    proxy_types: frozenset[str] = frozenset({"css"})
    proxy_timeout: float = 5
    proxy_max_redirects: int = 3
    proxy_failure_ttl: float = 60
    proxy_outbound: str = ""
    session_ttl: float = 7200
    trusted_proxies: int = 0
    demo_user: str = "demo"
    demo_password: str = "demo"

    def __post_init__(self) -> None:
        for name, parse in _PARSERS.items():
            try:
                value = parse(getattr(self, name))
            except _Invalid as exc:
                raise _invalid(name, exc) from None
            object.__setattr__(self, name, value)  # frozen: the only way to store the parsed value

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some options changed (parsed and checked as in the constructor)."""
        _check_names(overrides)
        return dataclasses.replace(self, **overrides)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from an INI file, then the environment, then ``overrides``, over the defaults.

        The file is ``path``, else ``$COBROWSE_CONFIG``, else none. ``environ`` defaults to
        ``os.environ``. Passing keyword overrides here rather than to :meth:`replace` afterwards
        avoids a needless warning when only the overrides give the secret key.
        """
        env = os.environ if environ is None else environ
        if path is None:
            path = env.get("COBROWSE_CONFIG") or None

        values: dict[str, Any] = {}
        sources: dict[str, str] = {}  # keyword -> where its value came from, for error messages
        if path is not None:
            values.update(_read_ini(path))
            sources.update(dict.fromkeys(values, f"config file {os.fspath(path)}"))
        for name in OPTIONS:
            variable = env_name(name)
            if variable in env:
                values[name] = env[variable]
                sources[name] = f"environment variable {variable}"
        # Read the cache folder from the same environment as the rest, not always os.environ.
        values.setdefault("embedded_path", default_embedded_path(env))
        _check_names(overrides)
        values.update(overrides)
        for name in overrides:
            sources.pop(name, None)

        try:
            return cls(**values)
        except SettingsError as exc:
            if exc.option in sources:
                raise SettingsError(f"{exc}, set by {sources[exc.option]}", exc.option) from None
            raise


def _read_ini(path: str | os.PathLike[str]) -> dict[str, str]:
    """The options an INI file sets, by keyword; unknown sections and keys are refused."""
    name = os.fspath(path)
    # No interpolation: a '%' in a password or key is literal. Inline comments need a space
    # before '#' or ';', so URLs and keys that contain those characters still read whole.
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with open(name, encoding="utf-8-sig") as file:  # -sig: tolerate an editor's BOM
            parser.read_file(file)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {name}") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise SettingsError(f"cannot read config file {name}: {exc}") from None
    if parser.defaults():
        # configparser would copy [DEFAULT] keys into every section: refuse rather than guess.
        raise SettingsError(f"unknown section [{parser.default_section}] in {name}")

    values: dict[str, str] = {}
    for section in parser.sections():
        known = section.lower()
        if known not in _SECTIONS:
            sections = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise SettingsError(
                f"unknown section [{section}] in {name}; the sections are {sections}"
            )
        for key, value in parser.items(section):
            keyword = _INI_KEYS.get((known, key))
            if keyword is None:
                hint = _key_hint(known, key)
                raise SettingsError(f"unknown key {key!r} in [{section}] of {name}{hint}")
            if keyword in values:  # e.g. both [Redis] and [redis]
                raise SettingsError(f"{key!r} is set twice in {name}")
            values[keyword] = value
    return values


def _key_hint(section: str, key: str) -> str:
    """A hint for an unknown INI key: the section it belongs to, or the nearest known key."""
    elsewhere = [s for (s, k) in _INI_KEYS if k == key]
    if elsewhere:
        return f"; {key!r} belongs in [{elsewhere[0]}]"
    keys = {k: OPTIONS[kw].key for (s, k), kw in _INI_KEYS.items() if s == section}
    close = difflib.get_close_matches(key, keys, n=1)
    return f"; did you mean {keys[close[0]]!r}?" if close else ""
