"""Real-browser end-to-end fixtures: Debian's Chromium under Playwright, real servers on loopback.

One Chromium for the whole run. Each test gets a customer (a browser context logged in to the
sample site) and an agent (another context, without the site's cookies). The reference app and
the second origin run in threads on free ports; only loopback is ever contacted.

Chromium or Playwright missing: the tests skip, unless ``COBROWSE_REQUIRE_BROWSER=1`` (CI), then
they fail. Chromium is found at ``$COBROWSE_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on the PATH; Playwright's own downloaded browsers are not needed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import require_or_skip
from tests.support.servers import serve_in_thread

# The threaded test servers log every request; the browser makes hundreds.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

REQUIRE = "COBROWSE_REQUIRE_BROWSER"
REPO_DOCS = Path(__file__).resolve().parents[2] / "docs"
SECRET = b"e2e-tests-secret-key-0123456789abcdef"
VIEWPORT = {"width": 900, "height": 700}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Same pixels whatever the machine: no LCD text antialiasing, sRGB, no smooth scrolling.
    "--disable-lcd-text",
    "--force-color-profile=srgb",
    "--disable-smooth-scrolling",
    "--font-render-hinting=none",
    # Names under .test reach the loopback servers: a plain-http page on a name that is not
    # localhost is not a secure context (no SubtleCrypto), as on a real intranet site.
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
#: Options the e2e tests give the customer script, whatever the page says (see ``customer``).
FORCE_OPTIONS_SCRIPT = """
(() => {
  const forced = %s;
  let value;
  const apply = (options) => {
    if (options && typeof options === "object") {
      options.cobrowse = Object.assign(options.cobrowse || {}, forced);
    }
    return options;
  };
  Object.defineProperty(window, "_genesys", {
    configurable: true,
    get() { return value; },
    set(v) { value = apply(v); },
  });
  window._genesys = {};
})();
"""


def chromium_executable() -> str | None:
    explicit = os.environ.get("COBROWSE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip(REQUIRE, "Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    executable = chromium_executable()
    if executable is None:
        require_or_skip(REQUIRE, "Chromium is not installed (apt-get install chromium)")
    try:
        browser = playwright_instance.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
    except Exception as error:  # noqa: BLE001 - any launch failure means "no browser here"
        require_or_skip(REQUIRE, f"Chromium at {executable} could not start: {error}")
    yield browser
    browser.close()


# --- servers --------------------------------------------------------------------------------------


@dataclass
class Site:
    """The reference app on a real socket, and what the tests need to know of it."""

    base: str
    second_origin: str
    app: Any

    def url(self, path: str) -> str:
        return self.base + path

    def named(self, host: str) -> Site:
        """The same server under another host name (``*.test`` resolves to loopback)."""
        port = urlsplit(self.base).port
        return Site(base=f"http://{host}:{port}", second_origin=self.second_origin, app=self.app)

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc


@pytest.fixture(scope="session")
def second_origin() -> Iterator[str]:
    from reference_app.second_origin import create_second_origin

    with serve_in_thread(create_second_origin()) as base:
        yield base


def _serve_site(tmp_path_factory: pytest.TempPathFactory, second: str, **overrides: Any) -> Iterator[Site]:
    try:
        from middleware import Settings
        from reference_app import create_app
    except ImportError as error:
        pytest.fail(f"the middleware or the reference app does not import: {error}", pytrace=False)
    settings = Settings(
        secret_key=SECRET, embedded_path=str(tmp_path_factory.mktemp("store")), **overrides
    )
    app = create_app(settings)
    app.config["SECOND_ORIGIN"] = second
    with serve_in_thread(app) as base:
        yield Site(base=base, second_origin=second, app=app)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, second_origin: str) -> Iterator[Site]:
    """The reference app with no allowed domains: what is not uploaded is loaded directly."""
    yield from _serve_site(tmp_path_factory, second_origin)


@pytest.fixture(scope="session")
def proxying_site(tmp_path_factory: pytest.TempPathFactory, second_origin: str) -> Iterator[Site]:
    """The reference app allowed to fetch from the second origin (server-side sync, every kind)."""
    yield from _serve_site(
        tmp_path_factory,
        second_origin,
        allowed_external_domains=[urlsplit(second_origin).netloc],
        allowed_private_networks=["127.0.0.1/32"],
        proxy_types=["css", "font", "image"],
    )


# --- the two people -----------------------------------------------------------------------------


@dataclass
class Customer:
    """A logged-in customer's browser context and page."""

    site: Site
    context: Any
    page: Any
    console: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        response = self.page.goto(self.site.url(path), wait_until="load")
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        assert urlsplit(self.page.url).path != "/login", "the customer is not logged in"
        settle(self.page)

    def share(self) -> dict[str, Any]:
        """cobrowse.share() on the current page; its answer ({session, code, view_token, ...})."""
        return self.page.evaluate("() => window.cobrowse.share()")

    def status(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.cobrowse.status()")


@dataclass
class Agent:
    """The agent's browser context (no site cookies) and a log of every response it got."""

    site: Site
    context: Any
    page: Any
    responses: list[tuple[str, int]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def join_by_console(self, code: str) -> str:
        """Types the code in the agent console at /agent; returns the view token from the viewer URL."""
        self.page.goto(self.site.url("/agent"))
        self.page.fill("#code", code)
        with self.page.expect_navigation(url=lambda url: "/_cobrowse/agent" in url):
            self.page.click("button[type=submit]")
        query = dict(part.split("=", 1) for part in urlsplit(self.page.url).query.split("&"))
        return requests.utils.unquote(query["token"])

    def open_snapshot(self, view_token: str) -> None:
        self.page.goto(self.site.url(f"/_cobrowse/snapshot?token={view_token}"), wait_until="load")
        settle(self.page)

    def site_401s(self) -> list[str]:
        """URLs of the site that answered 401 to the agent."""
        return [url for url, status in self.responses if status == 401 and url.startswith(self.site.base)]


def settle(page: Any) -> None:
    """Waits until the page's fonts and images are in, and two frames have been painted."""
    page.wait_for_load_state("load")
    page.evaluate(
        """async () => {
          await document.fonts.ready;
          await Promise.all(Array.from(document.images, (img) =>
            img.complete ? null : new Promise((r) => { img.onload = img.onerror = r; })));
        }"""
    )
    # Sandboxed (script-less) documents have no requestAnimationFrame callbacks: wait a little.
    page.wait_for_timeout(50)


def log_in(page: Any, site: Site) -> None:
    """Logs in through the site's login form, as the customer would."""
    # Back to an asset behind the login: answered 200 only once logged in.
    page.goto(site.url("/login?next=/img/favicon.png"))
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    with page.expect_navigation() as navigation:
        page.click("[type=submit]")
    response = navigation.value
    assert urlsplit(page.url).path == "/img/favicon.png" and response and response.status == 200, \
        f"login failed: at {page.url}"


def make_customer(browser: Any, site: Site, **options: Any) -> Customer:
    """A logged-in customer whose pages run the customer script with ``ui: false`` + ``options``."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    forced = {"ui": False, **options}
    context.add_init_script(FORCE_OPTIONS_SCRIPT % json.dumps(forced))
    page = context.new_page()
    log_in(page, site)
    customer = Customer(site, context, page)
    page.on("console", lambda message: customer.console.append(f"{message.type}: {message.text}"))
    return customer


def make_agent(browser: Any, site: Site) -> Agent:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    agent = Agent(site, context, page)
    context.on("response", lambda response: agent.responses.append((response.url, response.status)))
    context.on("console", lambda message: agent.console.append(f"{message.type}: {message.text}"))

    def on_dialog(dialog: Any) -> None:
        agent.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return agent


@pytest.fixture
def people(browser: Any, site: Site) -> Iterator[Any]:
    """A factory of customers and agents for ``site`` (or another site); all closed afterwards."""
    contexts: list[Any] = []

    class People:
        def customer(self, on: Site = site, host: str | None = None, **options: Any) -> Customer:
            made = make_customer(browser, on.named(host) if host else on, **options)
            contexts.append(made.context)
            return made

        def agent(self, on: Site = site) -> Agent:
            made = make_agent(browser, on)
            contexts.append(made.context)
            return made

    yield People()
    for context in contexts:
        context.close()


# --- comparing screenshots ----------------------------------------------------------------------


def decode(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGBA")


def differing_pixels(first: bytes, second: bytes) -> tuple[int, Any]:
    """How many pixels differ between two PNG screenshots (decoded RGBA), and a diff image."""
    from PIL import ImageChops

    a, b = decode(first), decode(second)
    if a.size != b.size:
        return max(a.size[0] * a.size[1], b.size[0] * b.size[1]), None
    diff = ImageChops.difference(a, b)
    if diff.getbbox(alpha_only=False) is None:
        return 0, None
    # A pixel differs when any of its channels does: the largest channel difference, per pixel.
    largest = diff.getchannel(0)
    for band in range(1, len(diff.getbands())):
        largest = ImageChops.lighter(largest, diff.getchannel(band))
    count = largest.size[0] * largest.size[1] - largest.histogram()[0]
    return count, diff


@pytest.fixture
def compare(request: pytest.FixtureRequest, tmp_path: Path):
    """compare(customer_png, agent_png) -> number of differing pixels; keeps both (and the diff)
    under the test's tmp_path, and under $COBROWSE_E2E_ARTIFACTS if set, for a look afterwards."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        require_or_skip(REQUIRE, "Pillow is not installed (pip install pillow)")

    def run(customer_png: bytes, agent_png: bytes, label: str = "page") -> int:
        count, diff = differing_pixels(customer_png, agent_png)
        folders = [tmp_path]
        if os.environ.get("COBROWSE_E2E_ARTIFACTS"):
            name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
            folders.append(Path(os.environ["COBROWSE_E2E_ARTIFACTS"]) / name)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{label}-customer.png").write_bytes(customer_png)
            (folder / f"{label}-agent.png").write_bytes(agent_png)
            if diff is not None and count:
                diff.convert("RGB").point(lambda value: 255 if value else 0).save(folder / f"{label}-diff.png")
        return count

    return run


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1, message: str = "condition",
             page: Any = None):
    """Polls ``predicate`` until it returns something truthy; returns that.

    Give ``page`` when the predicate reads Playwright state that events update (``page.frames``,
    frame URLs): the wait then lets Playwright's event loop run, which ``time.sleep`` does not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def current(site: Site, view_token: str) -> dict[str, Any]:
    """GET /_cobrowse/sessions/current for the agent's token."""
    response = requests.get(site.url("/_cobrowse/sessions/current"), params={"token": view_token}, timeout=10)
    response.raise_for_status()
    return response.json()


def served(site: Site, view_token: str) -> dict[str, dict[str, Any]]:
    """url -> what the agent's browser got for it (source, tier, status), per the server."""
    return {entry["url"]: entry for entry in current(site, view_token).get("served", [])}
