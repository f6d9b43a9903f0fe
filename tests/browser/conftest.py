"""The console in a real browser: Debian's Chromium (/usr/bin/chromium, headless, driven
by Playwright; never a downloaded browser) against the real app served by uvicorn on a
loopback port.

Without /usr/bin/chromium these tests are skipped, with one line saying how to enable
them; with BOUNCELEDGER_TEST_BROWSER_REQUIRED=1 (CI) they fail instead. Every page a test
opens is watched: a request leaving the loopback address, a JavaScript dialog or a
Content-Security-Policy violation fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from projections import Policy
from tests.browser.helpers import (
    ARGS,
    AXE_REPORT,
    CHROMIUM,
    DESKTOP,
    ENV_REQUIRED,
    JOURNEYS,
    LOOPBACK,
    SKIP_REASON,
    TIMEOUT_MS,
    LiveServer,
    required,
)


class _State:
    skipped = False


STATE = _State()


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """Skip (or, when required, fail) every browser test without /usr/bin/chromium."""
    if CHROMIUM.exists():
        return
    if required():
        pytest.fail(
            f"{ENV_REQUIRED}=1 but /usr/bin/chromium is missing: apt-get install -y chromium",
            pytrace=False,
        )
    STATE.skipped = True
    pytest.skip(SKIP_REASON)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per test module (so no Playwright loop outlives the module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """`serve(db=None, policy=None)`: a started live server (a fresh SQLite ledger in
    tmp_path by default), stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(db: Path | str | None = None, policy: Policy | None = None) -> LiveServer:
        live = LiveServer(db if db is not None else tmp_path / "ledger.db", policy)
        started.append(live)
        return live.start()

    yield start
    for live in reversed(started):
        live.stop()


@dataclass
class Watched:
    """What the pages of one test did that they never should."""

    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # requests not to the loopback server
    csp: list[str] = field(default_factory=list)  # Content-Security-Policy violations
    errors: list[str] = field(default_factory=list)  # uncaught page errors


class Tabs:
    """Opens watched pages: `tabs.open(live, viewport=…, bypass_csp=…)`."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.seen = Watched()

    def open(
        self,
        live: LiveServer,
        *,
        viewport: dict[str, int] = DESKTOP,
        bypass_csp: bool = False,
        storage_state: Any = None,
    ) -> Any:
        context = self.browser.new_context(
            base_url=live.base,
            viewport=viewport,
            bypass_csp=bypass_csp,
            accept_downloads=True,
            storage_state=storage_state,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        seen = self.seen

        def on_dialog(dialog: Any) -> None:
            seen.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_request(request: Any) -> None:
            if not request.url.startswith(LOOPBACK):
                seen.outside.append(request.url)

        def on_console(message: Any) -> None:
            if message.type == "error" and "Content Security Policy" in message.text:
                seen.csp.append(f"{page.url}: {message.text}")

        page.on("dialog", on_dialog)
        context.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: seen.errors.append(f"{page.url}: {exc}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def tabs(browser: Any) -> Iterator[Tabs]:
    opened = Tabs(browser)
    try:
        yield opened
    finally:
        opened.close()
    seen = opened.seen
    assert not seen.outside, f"requests left the loopback server: {seen.outside}"
    assert not seen.dialogs, f"a page opened dialogs: {seen.dialogs}"
    assert not seen.csp, f"Content-Security-Policy violations: {seen.csp}"
    assert not seen.errors, f"uncaught errors in pages: {seen.errors}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line if the browser tests were skipped; else the journeys' step counts and
    what axe found on each page."""
    if STATE.skipped:
        terminalreporter.write_line(SKIP_REASON, yellow=True)
        return
    if JOURNEYS:
        terminalreporter.write_sep("-", "console journeys (steps a person takes)")
        for line in JOURNEYS:
            terminalreporter.write_line(line)
    if AXE_REPORT:
        terminalreporter.write_sep("-", "axe (serious and critical fail the test)")
        for name, found in AXE_REPORT.items():
            terminalreporter.write_line(f"{name}: {found}")
