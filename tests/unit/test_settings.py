"""Settings: defaults, value forms, precedence, and the allowedExternalDomains grammar (SPEC 3)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from datetime import timedelta

import pytest

from middleware.settings import (
    OPTIONS,
    DomainRule,
    EphemeralSecretKeyWarning,
    Settings,
    SettingsError,
    default_embedded_path,
    domain_allowed,
    env_name,
)

KEY = "k" * 32  # a valid secret, so that tests do not trigger the ephemeral-key warning


def make(**options) -> Settings:
    options.setdefault("secret_key", KEY)
    return Settings(**options)


def refused(match_option: str, value_text: str, **options) -> str:
    """Build Settings that must be refused; check the message names the option and the value."""
    with pytest.raises(SettingsError) as info:
        make(**options)
    message = str(info.value)
    assert f"invalid value for {match_option} " in message
    assert value_text in message
    assert info.value.option == match_option
    return message


def write_ini(tmp_path, text: str):
    path = tmp_path / "cobrowse.ini"
    path.write_text(text, encoding="utf-8")
    return path


# --- the option table and defaults -----------------------------------------------------------------

# SPEC 3's table, verbatim: section, key, keyword.
SPEC_TABLE = {
    "prefix": ("cobrowse", "prefix"),
    "secret_key": ("cobrowse", "secret_key"),
    "allowed_external_domains": ("cobrowse", "allowedExternalDomains"),
    "allowed_origins": ("cobrowse", "allowedOrigins"),
    "allowed_private_networks": ("cobrowse", "allowedPrivateNetworks"),
    "redis_url": ("redis", "url"),
    "cache_ttl": ("redis", "cache.ttl"),
    "local_ttl": ("cache", "local.ttl"),
    "local_max_bytes": ("cache", "local.max_bytes"),
    "embedded_path": ("cache", "embedded.path"),
    "max_size": ("resources", "max_size"),
    "session_max_bytes": ("resources", "session.max_bytes"),
    "proxy_types": ("proxy", "types"),
    "proxy_timeout": ("proxy", "timeout"),
    "proxy_max_redirects": ("proxy", "max_redirects"),
    "proxy_failure_ttl": ("proxy", "failure.ttl"),
    "proxy_outbound": ("proxy", "outbound"),
    "session_ttl": ("cobrowse", "session.ttl"),
    "trusted_proxies": ("cobrowse", "trusted_proxies"),
    "embedded_max_bytes": ("cache", "embedded.max_bytes"),
    "demo_user": ("reference", "demo.user"),
    "demo_password": ("reference", "demo.password"),
}


def test_option_table_is_spec_table_and_covers_every_field():
    assert {name: (opt.section, opt.key) for name, opt in OPTIONS.items()} == SPEC_TABLE
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(Settings)}
    for name, (section, key, default, meaning) in OPTIONS.items():
        assert default and meaning, name


@pytest.mark.parametrize(
    "keyword, variable",
    [
        ("cache_ttl", "COBROWSE_REDIS_CACHE_TTL"),
        ("redis_url", "COBROWSE_REDIS_URL"),
        ("allowed_external_domains", "COBROWSE_COBROWSE_ALLOWEDEXTERNALDOMAINS"),
        ("local_max_bytes", "COBROWSE_CACHE_LOCAL_MAX_BYTES"),
        ("secret_key", "COBROWSE_COBROWSE_SECRET_KEY"),
        ("demo_user", "COBROWSE_REFERENCE_DEMO_USER"),
        ("session_ttl", "COBROWSE_COBROWSE_SESSION_TTL"),
        ("proxy_failure_ttl", "COBROWSE_PROXY_FAILURE_TTL"),
    ],
)
def test_env_name(keyword, variable):
    assert env_name(keyword) == variable


def test_env_names_are_unique_and_do_not_collide_with_other_variables():
    names = [env_name(k) for k in OPTIONS]
    assert len(set(names)) == len(names)
    assert not {"COBROWSE_CONFIG", "COBROWSE_REQUIRE_REDIS"} & set(names)


def test_defaults():
    s = make()
    assert s.prefix == "/_cobrowse"
    assert s.secret_key == KEY.encode()
    assert s.allowed_external_domains == ()
    assert s.allowed_origins == ()
    assert s.allowed_private_networks == ()
    assert s.redis_url == ""
    assert s.cache_ttl == 3600
    assert s.local_ttl == 1800
    assert s.local_max_bytes == 256 * 1024**2
    assert s.embedded_path == default_embedded_path()
    assert s.embedded_max_bytes == 1024**3
    assert s.max_size == 10 * 1024**2
    assert s.session_max_bytes == 200 * 1024**2
    assert s.proxy_types == frozenset({"css"})
    assert s.proxy_timeout == 5
    assert s.proxy_max_redirects == 3
    assert s.proxy_failure_ttl == 60
    assert s.proxy_outbound == ""
    assert s.session_ttl == 7200
    assert s.trusted_proxies == 0
    assert (s.demo_user, s.demo_password) == ("demo", "demo")


def test_default_embedded_path_follows_xdg_then_home():
    assert default_embedded_path({"XDG_CACHE_HOME": "/xdg"}) == os.path.join("/xdg", "cobrowse")
    # a relative XDG_CACHE_HOME is to be ignored (XDG spec)
    home = {"XDG_CACHE_HOME": "rel", "HOME": "/home/u"}
    assert default_embedded_path(home) == os.path.join("/home/u", ".cache", "cobrowse")


def test_embedded_path_expands_user_and_accepts_pathlike(tmp_path):
    assert make(embedded_path=tmp_path).embedded_path == str(tmp_path)
    assert make(embedded_path="~/x").embedded_path == os.path.expanduser("~/x")
    refused("embedded_path", "''", embedded_path="")


# --- secret key ------------------------------------------------------------------------------------


def test_missing_secret_key_warns_and_uses_one_random_key_per_process():
    with pytest.warns(EphemeralSecretKeyWarning, match="restart"):
        first = Settings()
    with pytest.warns(EphemeralSecretKeyWarning):
        second = Settings()
    assert len(first.secret_key) == 32
    assert first.secret_key == second.secret_key


def test_secret_key_accepts_str_and_bytes():
    assert make(secret_key="é" * 8).secret_key == ("é" * 8).encode("utf-8")  # 16 bytes
    assert make(secret_key=b"\x00" * 16).secret_key == b"\x00" * 16


def test_short_secret_key_is_refused_without_showing_it():
    message = refused("secret_key", "6-byte key", secret_key="hunter")
    assert "hunte" not in message
    refused("secret_key", "int", secret_key=12345678901234567890)


def test_secret_key_is_not_in_repr():
    assert KEY not in repr(make())


# --- durations -------------------------------------------------------------------------------------

DURATION_OPTIONS = ["cache_ttl", "local_ttl", "proxy_timeout", "proxy_failure_ttl", "session_ttl"]


@pytest.mark.parametrize(
    "given, seconds",
    [
        (3600, 3600),
        (2.5, 2.5),
        ("3600", 3600),
        ("3600s", 3600),
        ("3600sec", 3600),
        ("30m", 1800),
        ("30min", 1800),
        ("1h", 3600),
        ("1d", 86400),
        (" 2 H ", 7200),
        ("1D", 86400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        (timedelta(minutes=5), 300),
    ],
)
def test_duration_forms(given, seconds):
    assert make(cache_ttl=given).cache_ttl == seconds


@pytest.mark.parametrize("option", DURATION_OPTIONS)
def test_every_duration_option_parses_durations(option):
    assert getattr(make(**{option: "2m"}), option) == 120.0


@pytest.mark.parametrize(
    "given", ["abc", "", "1x", "1h30m", "-5", "0", "0s", "1e3", "h", 0, -1, True, None,
              float("nan"), float("inf")],
)
def test_bad_durations_are_refused(given):
    message = refused("cache_ttl", repr(given), cache_ttl=given)
    assert "[redis] cache.ttl" in message
    assert "duration" in message


def test_duration_message_matches_documented_shape():
    with pytest.raises(SettingsError) as info:
        make(cache_ttl="abc")
    assert str(info.value) == (
        "invalid value for cache_ttl ([redis] cache.ttl): 'abc' "
        "(expected a duration such as 3600, 30m, 1h, 1d)"
    )


# --- sizes -----------------------------------------------------------------------------------------

SIZE_OPTIONS = ["local_max_bytes", "embedded_max_bytes", "max_size", "session_max_bytes"]


@pytest.mark.parametrize(
    "given, size",
    [
        (512, 512),
        (2048.0, 2048),
        ("512", 512),
        ("512B", 512),
        ("64KB", 64 * 1024),
        ("64kb", 64 * 1024),
        ("64K", 64 * 1024),
        ("64KiB", 64 * 1024),
        ("10MB", 10 * 1024**2),
        (" 10 mb ", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("1GB", 1024**3),
        ("1G", 1024**3),
        ("1.5KB", 1536),
    ],
)
def test_size_forms(given, size):
    assert make(max_size=given).max_size == size


@pytest.mark.parametrize("option", SIZE_OPTIONS)
def test_every_size_option_parses_sizes(option):
    assert getattr(make(**{option: "3MB"}), option) == 3 * 1024**2


@pytest.mark.parametrize(
    "given", ["0", 0, -1, "-1KB", "10XB", "MB", "", "ten", "0.1B", 1.5, True, None, "1e6"],
)
def test_bad_sizes_are_refused(given):
    message = refused("max_size", repr(given), max_size=given)
    assert "[resources] max_size" in message
    assert "size" in message


# --- whole numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["proxy_max_redirects", "trusted_proxies"])
@pytest.mark.parametrize("given, number", [(0, 0), ("0", 0), (5, 5), (" 2 ", 2)])
def test_counts(option, given, number):
    assert getattr(make(**{option: given}), option) == number


@pytest.mark.parametrize("option", ["proxy_max_redirects", "trusted_proxies"])
@pytest.mark.parametrize("given", [-1, "-1", "x", "", 1.5, True, None])
def test_bad_counts_are_refused(option, given):
    refused(option, repr(given), **{option: given})


# --- prefix, strings, URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["/cb", "/_cobrowse", "/a/b-c.d_e~f"])
def test_good_prefixes(given):
    assert make(prefix=given).prefix == given


@pytest.mark.parametrize(
    "given", ["", "/", "cb", "/cb/", "/c b", "/cb?x=1", "/cb#x", "/a//b", "/a/../b", "/.", 5],
)
def test_bad_prefixes_are_refused(given):
    refused("prefix", repr(given), prefix=given)


@pytest.mark.parametrize(
    "given",
    ["", "redis://localhost:6379/0", "rediss://cache.example.com:6380", "unix:///tmp/redis.sock",
     "redis://:secret@localhost"],
)
def test_good_redis_urls(given):
    assert make(redis_url=given).redis_url == given


@pytest.mark.parametrize(
    "given",
    ["http://localhost:6379", "localhost:6379", "redis://", "unix://", "redis://h:99999",
     "memcached://h"],
)
def test_bad_redis_urls_are_refused(given):
    refused("redis_url", repr(given), redis_url=given)


def test_bad_url_message_hides_the_password():
    message = refused("redis_url", "'http://user:***@host'", redis_url="http://user:pw1@host")
    assert "pw1" not in message


@pytest.mark.parametrize("given", ["", "http://proxy:3128", "https://u:p@proxy.corp/"])
def test_good_proxy_outbound(given):
    assert make(proxy_outbound=given).proxy_outbound == given


@pytest.mark.parametrize(
    "given", ["proxy:3128", "socks5://proxy:1080", "http://", "http://proxy/path", "http://p:0"]
)
def test_bad_proxy_outbound_is_refused(given):
    refused("proxy_outbound", repr(given), proxy_outbound=given)


@pytest.mark.parametrize("option", ["demo_user", "demo_password"])
def test_demo_login_must_be_non_empty(option):
    assert getattr(make(**{option: "alice"}), option) == "alice"
    refused(option, "''", **{option: ""})


# --- lists -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, types",
    [
        (["css", "font"], {"css", "font"}),
        ("css, font,image", {"css", "font", "image"}),
        ("CSS", {"css"}),
        (("image",), {"image"}),
        ("", set()),  # server-side sync off
    ],
)
def test_proxy_types(given, types):
    assert make(proxy_types=given).proxy_types == frozenset(types)


@pytest.mark.parametrize("given, bad", [("css, js", "'js'"), (["font", 3], "3"), (7, "7")])
def test_bad_proxy_types_are_refused(given, bad):
    refused("proxy_types", bad, proxy_types=given)


def test_lists_accept_newlines_and_trailing_commas():
    s = make(allowed_external_domains="a.example.com,\n  b.example.com,")
    assert [str(r) for r in s.allowed_external_domains] == ["a.example.com", "b.example.com"]


def test_private_networks():
    s = make(allowed_private_networks="10.1.2.3/8, fd00::/8, 192.168.0.1")
    assert s.allowed_private_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.0.1/32"),
    )


@pytest.mark.parametrize("bad", ["banana", "10.0.0.0/33", "300.1.1.1", "10.0.0.0/x"])
def test_bad_private_networks_are_refused(bad):
    refused("allowed_private_networks", repr(bad), allowed_private_networks=["10.0.0.0/8", bad])


@pytest.mark.parametrize(
    "given, origin",
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM:443", "https://app.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:80", "https://example.com:80"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_normalised(given, origin):
    assert make(allowed_origins=given).allowed_origins == (origin,)


@pytest.mark.parametrize(
    "bad",
    ["example.com", "ftp://example.com", "https://example.com/", "https://example.com/app",
     "https://user@example.com", "https://example.com:99999", "https://example.com?q=1", "*",
     "null", "https://a..b"],
)
def test_bad_origins_are_refused(bad):
    refused("allowed_origins", repr(bad), allowed_origins=[bad])


# --- replace and idempotence -----------------------------------------------------------------------


def full_settings() -> Settings:
    return make(
        prefix="/cb",
        allowed_external_domains="cdn.example.com, *.example.org:8443, [::1]:8081",
        allowed_origins="https://app.example.com",
        allowed_private_networks="10.0.0.0/8",
        redis_url="redis://localhost:6379/1",
        cache_ttl="2h",
        max_size="1MB",
        proxy_types="css,font",
        proxy_outbound="http://proxy:3128",
    )


def test_parsing_is_idempotent():
    s = full_settings()
    assert Settings(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)}) == s
    assert dataclasses.replace(s) == s


def test_replace_parses_and_validates():
    s = full_settings()
    t = s.replace(cache_ttl="5m", proxy_types=["image"])
    assert (t.cache_ttl, t.proxy_types) == (300, frozenset({"image"}))
    assert t.allowed_external_domains == s.allowed_external_domains
    assert s.cache_ttl == 7200  # the original is untouched
    with pytest.raises(SettingsError, match="local_ttl"):
        s.replace(local_ttl="soon")


def test_replace_refuses_unknown_names_with_a_suggestion():
    with pytest.raises(SettingsError, match=r"unknown setting 'cache_tl'; did you mean 'cache_ttl'"):
        make().replace(cache_tl="1h")


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().cache_ttl = 1  # type: ignore[misc]


# --- INI file, environment and precedence ----------------------------------------------------------

FULL_INI = """
[cobrowse]
prefix = /cb
secret_key = 0123456789abcdef0123
allowedExternalDomains = cdn.example.com, *.example.org
allowedOrigins = https://app.example.com
allowedPrivateNetworks = 10.0.0.0/8
session.ttl = 3h
trusted_proxies = 1

[redis]
url = redis://localhost:6379/2
cache.ttl = 2h

[cache]
local.ttl = 10m
local.max_bytes = 64MB
embedded.path = /var/cache/cb
embedded.max_bytes = 2GB

[resources]
max_size = 5MB
session.max_bytes = 100MB

[proxy]
types = css, image
timeout = 3s
max_redirects = 2
failure.ttl = 30s
outbound = http://proxy:3128

[reference]
demo.user = alice
demo.password = wonderland
"""


def test_every_spec_key_is_read_from_the_ini(tmp_path):
    s = Settings.from_file(write_ini(tmp_path, FULL_INI), environ={})
    assert s == Settings(
        prefix="/cb",
        secret_key="0123456789abcdef0123",
        allowed_external_domains=["cdn.example.com", "*.example.org"],
        allowed_origins=["https://app.example.com"],
        allowed_private_networks=["10.0.0.0/8"],
        session_ttl=3 * 3600,
        trusted_proxies=1,
        redis_url="redis://localhost:6379/2",
        cache_ttl=7200,
        local_ttl=600,
        local_max_bytes=64 * 1024**2,
        embedded_path="/var/cache/cb",
        embedded_max_bytes=2 * 1024**3,
        max_size=5 * 1024**2,
        session_max_bytes=100 * 1024**2,
        proxy_types={"css", "image"},
        proxy_timeout=3,
        proxy_max_redirects=2,
        proxy_failure_ttl=30,
        proxy_outbound="http://proxy:3128",
        demo_user="alice",
        demo_password="wonderland",
    )


def test_every_option_is_read_from_its_environment_variable(tmp_path):
    expected = full_settings()
    environ = {env_name(f.name): str(getattr(expected, f.name)) for f in dataclasses.fields(expected)}
    # text forms, as an operator would write them
    environ[env_name("secret_key")] = KEY
    environ[env_name("allowed_external_domains")] = "cdn.example.com,*.example.org:8443,[::1]:8081"
    environ[env_name("allowed_origins")] = "https://app.example.com"
    environ[env_name("allowed_private_networks")] = "10.0.0.0/8"
    environ[env_name("proxy_types")] = "font, css"
    assert Settings.from_file(environ=environ) == expected


def test_ini_keys_are_case_insensitive(tmp_path):
    path = write_ini(
        tmp_path,
        "[cobrowse]\nALLOWEDEXTERNALDOMAINS = a.example.com\nsecret_key = " + KEY + "\n"
        "[Redis]\nCache.TTL = 5m\n",
    )
    s = Settings.from_file(path, environ={})
    assert [str(r) for r in s.allowed_external_domains] == ["a.example.com"]
    assert s.cache_ttl == 300


def test_precedence_keyword_over_env_over_ini_over_default(tmp_path):
    path = write_ini(
        tmp_path,
        f"[cobrowse]\nsecret_key = {KEY}\n"
        "[redis]\ncache.ttl = 1m\n"
        "[cache]\nlocal.ttl = 2m\n"
        "[resources]\nmax_size = 3MB\n",
    )
    environ = {
        "COBROWSE_REDIS_CACHE_TTL": "10m",
        "COBROWSE_CACHE_LOCAL_TTL": "20m",
    }
    s = Settings.from_file(path, environ=environ).replace(cache_ttl="100m")
    assert s.cache_ttl == 6000  # keyword beats env and INI
    assert s.local_ttl == 1200  # env beats INI
    assert s.max_size == 3 * 1024**2  # INI beats default
    assert s.session_ttl == 7200  # default
    # keyword overrides given to from_file itself rank the same
    assert Settings.from_file(path, environ=environ, local_ttl=5).local_ttl == 5


def test_config_file_from_cobrowse_config(tmp_path):
    path = write_ini(tmp_path, f"[cobrowse]\nsecret_key = {KEY}\nprefix = /from-env-file\n")
    assert Settings.from_file(environ={"COBROWSE_CONFIG": str(path)}).prefix == "/from-env-file"
    other = tmp_path / "other.ini"
    other.write_text(f"[cobrowse]\nsecret_key = {KEY}\nprefix = /explicit\n")
    environ = {"COBROWSE_CONFIG": str(path)}
    assert Settings.from_file(other, environ=environ).prefix == "/explicit"


def test_no_file_and_no_environment_gives_defaults(tmp_path):
    s = Settings.from_file(environ={"COBROWSE_COBROWSE_SECRET_KEY": KEY, "HOME": str(tmp_path)})
    assert s == make(embedded_path=tmp_path / ".cache" / "cobrowse")


def test_embedded_path_default_uses_the_given_environment():
    environ = {"XDG_CACHE_HOME": "/xdg", "COBROWSE_COBROWSE_SECRET_KEY": KEY}
    assert Settings.from_file(environ=environ).embedded_path == os.path.join("/xdg", "cobrowse")


def test_other_cobrowse_variables_are_ignored():
    environ = {
        "COBROWSE_COBROWSE_SECRET_KEY": KEY,
        "COBROWSE_REQUIRE_REDIS": "1",
        "COBROWSE_SOMETHING_ELSE": "x",
        "cobrowse_redis_cache_ttl": "5m",  # environment names are upper-case
    }
    assert Settings.from_file(environ=environ).cache_ttl == 3600


def test_missing_explicit_file_is_refused(tmp_path):
    missing = tmp_path / "nope.ini"
    with pytest.raises(SettingsError, match="not found.*nope.ini"):
        Settings.from_file(missing, environ={})
    with pytest.raises(SettingsError, match="nope.ini"):
        Settings.from_file(environ={"COBROWSE_CONFIG": str(missing)})


def test_unknown_ini_key_is_refused(tmp_path):
    path = write_ini(tmp_path, "[redis]\ncache.tll = 1h\n")
    with pytest.raises(SettingsError, match=r"unknown key 'cache.tll' in \[redis\].*'cache.ttl'"):
        Settings.from_file(path, environ={})


def test_ini_key_in_the_wrong_section_is_refused_with_a_hint(tmp_path):
    path = write_ini(tmp_path, "[redis]\nlocal.ttl = 1h\n")
    with pytest.raises(SettingsError, match=r"'local.ttl' belongs in \[cache\]"):
        Settings.from_file(path, environ={})


@pytest.mark.parametrize("section", ["[cobrowze]", "[DEFAULT]"])
def test_unknown_ini_section_is_refused(tmp_path, section):
    path = write_ini(tmp_path, f"{section}\nprefix = /x\n")
    with pytest.raises(SettingsError, match=f"unknown section \\{section[:-1]}\\]"):
        Settings.from_file(path, environ={})


def test_malformed_ini_is_refused(tmp_path):
    path = write_ini(tmp_path, "prefix = /x\n")  # no section header
    with pytest.raises(SettingsError, match="cannot read config file"):
        Settings.from_file(path, environ={})


def test_ini_values_are_literal_and_allow_inline_comments(tmp_path):
    path = write_ini(
        tmp_path,
        "[cobrowse]\nsecret_key = 100%-secret-#x-value-1234\n"
        "[redis]\ncache.ttl = 2h  ; two hours\n",
    )
    s = Settings.from_file(path, environ={})
    assert s.secret_key == b"100%-secret-#x-value-1234"
    assert s.cache_ttl == 7200


def test_bad_ini_value_names_option_value_and_file(tmp_path):
    path = write_ini(tmp_path, f"[cobrowse]\nsecret_key = {KEY}\n[redis]\ncache.ttl = abc\n")
    with pytest.raises(SettingsError) as info:
        Settings.from_file(path, environ={})
    message = str(info.value)
    assert "cache_ttl ([redis] cache.ttl): 'abc'" in message
    assert str(path) in message


def test_bad_env_value_names_option_value_and_variable():
    environ = {"COBROWSE_COBROWSE_SECRET_KEY": KEY, "COBROWSE_RESOURCES_MAX_SIZE": "huge"}
    with pytest.raises(SettingsError) as info:
        Settings.from_file(environ=environ)
    message = str(info.value)
    assert "max_size ([resources] max_size): 'huge'" in message
    assert "COBROWSE_RESOURCES_MAX_SIZE" in message


def test_from_file_refuses_unknown_keyword_overrides():
    with pytest.raises(SettingsError, match="unknown setting 'max_sise'"):
        Settings.from_file(environ={}, secret_key=KEY, max_sise=5)


# --- allowedExternalDomains grammar -----------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, host, wildcard, port",
    [
        ("cdn.example.com", "cdn.example.com", False, None),
        ("*.example.org", "example.org", True, None),
        ("*.co.uk", "co.uk", True, None),
        ("Example.COM.", "example.com", False, None),
        ("static.example.com:8443", "static.example.com", False, 8443),
        ("*.example.org:8080", "example.org", True, 8080),
        ("localhost", "localhost", False, None),
        ("localhost:1", "localhost", False, 1),
        ("my_service:8080", "my_service", False, 8080),
        ("bücher.example", "xn--bcher-kva.example", False, None),
        ("*.BÜCHER.example", "xn--bcher-kva.example", True, None),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", False, None),
        ("127.0.0.1:8081", ipaddress.ip_address("127.0.0.1"), False, 8081),
        ("127.0.0.1", ipaddress.ip_address("127.0.0.1"), False, None),
        ("[::1]:8081", ipaddress.ip_address("::1"), False, 8081),
        ("[0:0::1]", ipaddress.ip_address("::1"), False, None),
        (" cdn.example.com:65535 ", "cdn.example.com", False, 65535),
    ],
)
def test_domain_entries_accepted(entry, host, wildcard, port):
    rule = DomainRule.parse(entry)
    assert rule == DomainRule(host, wildcard, port)
    assert DomainRule.parse(str(rule)) == rule  # str() gives back an equivalent entry


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "*:443",
        "*.com",
        "*.localhost",
        "a*.b.com",
        "*a.b.com",
        "*.*.x.com",
        "x.*.com",
        "https://x.com",
        "//x.com",
        "x.com/a",
        "x.com?a",
        "user@x.com",
        "user:pw@x.com",
        "a..b.com",
        ".x.com",
        "x.com..",
        "x.com:0",
        "x.com:65536",
        "x.com:http",
        "x.com:",
        "x.com:-1",
        "*.127.0.0.1",
        "*.[::1]",
        "::1",
        "[::1]:8081:1",
        "[x.com]",
        "[127.0.0.1]",
        "127.1",
        "1.2.3.256",
        "x .com",
        "ex%61mple.com",
        "xn--zz.example",
        "a" * 64 + ".com",
    ],
)
def test_domain_entries_refused(entry):
    with pytest.raises(ValueError):
        DomainRule.parse(entry)
    # through Settings: refused at start-up, naming the option and the entry
    refused("allowed_external_domains", repr(entry), allowed_external_domains=["ok.example", entry])


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("*.com", "two labels"),
        ("https://x.com", "scheme"),
        ("x.com/a", "path"),
        ("*.127.0.0.1", "IP address"),
        ("::1", "brackets"),
        ("x.com:99999", "port"),
    ],
)
def test_domain_refusals_say_why(entry, reason):
    message = refused("allowed_external_domains", repr(entry), allowed_external_domains=entry)
    assert reason in message


def test_settings_accept_domain_rule_objects_and_normalise_them():
    s = make(allowed_external_domains=[DomainRule("Example.COM"), "*.example.org"])
    assert s.allowed_external_domains == (
        DomainRule("example.com"),
        DomainRule("example.org", wildcard=True),
    )


# --- matching --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host, port, expected",
    [
        ("a.example.org", None, True),
        ("a.b.example.org", 443, True),
        ("A.Example.ORG.", None, True),
        ("example.org", None, False),  # not the apex
        ("evilexample.org", None, False),
        ("example.org.evil.com", None, False),
        ("a.example.org.", 80, True),
        ("a.example.org", 8443, False),
        ("", None, False),
        ("a..example.org", None, False),
    ],
)
def test_wildcard_matching(host, port, expected):
    assert DomainRule.parse("*.example.org").matches(host, port) is expected


@pytest.mark.parametrize(
    "entry, host, port, scheme, expected",
    [
        ("x.com", "x.com", None, "https", True),
        ("x.com", "x.com", None, "http", True),
        ("x.com", "x.com", 443, "https", True),
        ("x.com", "x.com", 80, "https", True),  # without a port, 80 and 443 match
        ("x.com", "x.com", 443, "http", True),
        ("x.com", "x.com", 8443, "https", False),
        ("x.com", "a.x.com", None, "https", False),  # a plain entry is that host only
        ("x.com:8443", "x.com", 8443, "https", True),
        ("x.com:8443", "x.com", None, "https", False),
        ("x.com:8443", "x.com", 443, "https", False),
        ("x.com:80", "x.com", None, "http", True),
        ("x.com:80", "x.com", None, "https", False),
        ("x.com", "x.com", None, "ftp", False),  # only http(s) is ever fetched
        ("x.com", "x.com", 0, "https", False),
        ("x.com", "x.com", 70000, "https", False),
    ],
)
def test_port_rules(entry, host, port, scheme, expected):
    assert DomainRule.parse(entry).matches(host, port, scheme) is expected


@pytest.mark.parametrize(
    "host, expected",
    [
        ("xn--bcher-kva.example", True),
        ("bücher.example", True),
        ("BÜCHER.EXAMPLE", True),
        ("bücher.example.", True),
        ("XN--BCHER-KVA.EXAMPLE.", True),
        ("bucher.example", False),
        ("xn--zz.example", False),  # invalid IDNA matches nothing
        ("bücher..example", False),
    ],
)
def test_idna_matching(host, expected):
    assert DomainRule.parse("bücher.example").matches(host, None) is expected


@pytest.mark.parametrize(
    "entry, host, port, expected",
    [
        ("127.0.0.1:8081", "127.0.0.1", 8081, True),
        ("127.0.0.1:8081", "127.0.0.1", 80, False),
        ("127.0.0.1:8081", "127.0.0.2", 8081, False),
        ("127.0.0.1:8081", "localhost", 8081, False),
        ("127.0.0.1:8081", "[127.0.0.1]", 8081, False),
        ("127.0.0.1:8081", "::ffff:127.0.0.1", 8081, False),  # that address exactly
        ("127.0.0.1:8081", ipaddress.ip_address("127.0.0.1"), 8081, True),
        ("127.0.0.1", "127.0.0.1", None, True),
        ("[::1]:8081", "::1", 8081, True),
        ("[::1]:8081", "[::1]", 8081, True),
        ("[::1]:8081", "[0:0::1]", 8081, True),
        ("[0:0::1]:8081", "::1", 8081, True),
        ("[::1]:8081", "::2", 8081, False),
        ("[::1]:8081", "127.0.0.1", 8081, False),
        ("localhost:8081", "127.0.0.1", 8081, False),  # a name never matches an address
    ],
)
def test_ip_literal_matching(entry, host, port, expected):
    assert DomainRule.parse(entry).matches(host, port) is expected


def test_domain_allowed_checks_every_rule():
    rules = make(allowed_external_domains="cdn.example.com, *.example.org, 127.0.0.1:8081")
    domains = rules.allowed_external_domains
    assert domain_allowed(domains, "cdn.example.com", None, "https")
    assert domain_allowed(domains, "img.example.org", 80, "http")
    assert domain_allowed(domains, "127.0.0.1", 8081, "http")
    assert not domain_allowed(domains, "example.org", None, "https")
    assert not domain_allowed(domains, "other.example.com", None, "https")
    assert not domain_allowed((), "cdn.example.com", None, "https")
