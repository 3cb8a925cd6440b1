"""Browser tests: Debian's headless Chromium, driven by Playwright, against a local stack.

One stack and one browser per session; every test gets a fresh browser context (its own
sessionStorage) through `open_app`, which also records console errors, page errors and CSP
violations and fails the test on any that the test did not declare as expected.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, expect, sync_playwright

from tests.support.stack import Stack, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ULID = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"
# Chrome logs every HTTP error answer as "Failed to load resource: ... status of 404 (Not Found)".
FAILED_RESOURCE = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")

# Record CSP violations from the first script that runs in every document.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
});
"""

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("browser-state")) as s:
        yield s


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("browser tests need Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watcher:
    """What went wrong in the page, and which HTTP errors the test expects to provoke."""

    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)

    def allow(self, status: int, path_regex: str) -> None:
        """An HTTP error answer the test provokes on purpose (Chrome logs those as console errors)."""
        self.allowed.append((status, re.compile(path_regex)))

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type not in ("error", "warning"):
            return
        failed = FAILED_RESOURCE.search(msg.text)
        if failed:
            status, url = int(failed.group(1)), msg.location.get("url", "")
            path = urlsplit(url).path
            # Polling GET /data/{id} while an item is pending answers 404 until it is stored.
            if status == 404 and re.fullmatch(rf"/data/{ULID}", path):
                return
            if any(s == status and rx.fullmatch(path) for s, rx in self.allowed):
                return
        self.problems.append(f"console {msg.type}: {msg.text} ({msg.location.get('url', '')})")


@dataclass
class App:
    page: Page
    context: BrowserContext
    watcher: Watcher
    base_url: str

    def allow(self, status: int, path_regex: str) -> None:
        self.watcher.allow(status, path_regex)

    def goto(self, path: str = "/") -> None:
        response = self.page.goto(self.base_url + path)
        if response is None:  # only the #fragment changed: the app routes it, nothing is fetched
            return
        assert response.ok, f"GET {path} -> {response.status}"
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp, f"the page is served without the expected CSP: {csp!r}"

    def sign_in(self, user: str, roles: tuple[str, ...] = ("data.read", "data.write")) -> None:
        page = self.page
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("User name").fill(user)
        if set(roles) != {"data.read", "data.write"}:
            page.get_by_text("Roles", exact=True).click()
            for role, box in (("data.read", "#role-read"), ("data.write", "#role-write")):
                page.locator(box).set_checked(role in roles)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#session-user")).to_have_text(user)

    def rows(self) -> Locator:
        return self.page.locator("#items-body tr")

    def check_clean(self) -> None:
        violations = self.page.evaluate("window.__cspViolations || []")
        assert not violations, f"CSP violations: {violations}"
        assert not self.watcher.problems, "\n".join(self.watcher.problems)
        assert self.page.evaluate("localStorage.length") == 0, "the app must not use localStorage"


@pytest.fixture
def open_app(browser: Browser, stack: Stack) -> Iterator[Callable[..., App]]:
    """open_app(viewport=...) -> App on a fresh context; checks it stayed clean at teardown."""
    apps: list[App] = []

    def _open(*, viewport: dict[str, int] | None = None, color_scheme: str = "light") -> App:
        context = browser.new_context(
            viewport=viewport or {"width": 1280, "height": 900},
            locale="en-US",
            timezone_id="UTC",
            color_scheme=color_scheme,
        )
        context.add_init_script(script=CSP_RECORDER)
        page = context.new_page()
        watcher = Watcher()
        page.on("console", watcher.on_console)
        page.on("pageerror", lambda exc: watcher.problems.append(f"uncaught: {exc}"))
        app = App(page=page, context=context, watcher=watcher, base_url=stack.api_url)
        apps.append(app)
        return app

    yield _open
    try:
        for app in apps:
            app.check_clean()
    finally:
        for app in apps:
            app.context.close()
