"""axe-core on every console page, as a signed-in operator sees it on a seeded ledger: no
violation of impact "serious" or "critical" (the others are printed, and listed at the
end of the run). With BOUNCELEDGER_SCREENSHOTS=1, the main pages are also saved to
docs/console/*.png at 1280x800 (the README's pictures)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Tabs
from tests.browser.helpers import (
    OPERATOR,
    LiveServer,
    axe_check,
    complaint,
    event,
    hard_bounce,
    screenshot,
    sign_in,
    soft_bounce,
)
from tests.conftest import fixture_bytes

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

CANDIDATE = (Path(__file__).resolve().parents[2] / "docs" / "strict.toml").read_text()
EVIDENCE = "nobody@example.org"  # SMTP2GO's sample hard bounce (tests/fixtures/smtp2go)


class Showcase:
    """A ledger with a bit of everything: bounces of each kind, a complaint, soft bounces
    a stricter policy would suppress, operator actions, a quarantined delivery."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        live.webhook(event("delivered", EVIDENCE, "dl-0", time="2026-04-20T08:00:00Z"))
        live.webhook(soft_bounce(EVIDENCE, "sb-0", time="2026-05-01T08:00:00Z"))
        self.evidence = live.webhook(fixture_bytes("smtp2go", "hard_bounce.json"))["seq"]
        live.webhook(fixture_bytes("smtp2go", "spam.json"))
        live.webhook(fixture_bytes("smtp2go", "delivered.json"))
        live.webhook(fixture_bytes("smtp2go", "soft_bounce.json"))
        live.webhook(soft_bounce("full.box@example.net", "sb-2", time="2026-05-06T08:30:00Z"))
        for number, email in enumerate(("gone@example.com", "old.account@example.net")):
            live.webhook(
                hard_bounce(email, f"hb-{number}", time=f"2026-05-0{number + 2}T09:12:00Z")
            )
        live.webhook(complaint("grumpy@example.org", "sp-2", time="2026-05-07T17:45:10Z"))
        live.webhook(event("delivered", "alice@example.com", "dl-2", time="2026-05-08T07:00:00Z"))
        live.webhook(b'{"event": "bounce", "rcpt": "cut@example.org", ', expect=400)  # quarantined
        for method, email, note in (
            ("PUT", "ceo@example.com", "asked us not to mail him, ticket 812"),
            ("DELETE", "old.account@example.net", "mailbox restored, ticket 815"),
        ):
            response = live.http.request(method, f"/v1/suppressions/{email}", json={"note": note})
            assert response.status_code == 200, response.text
        live.settle()


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Showcase]:
    live = LiveServer(tmp_path_factory.mktemp("showcase") / "ledger.db").start()
    try:
        yield Showcase(live)
    finally:
        live.stop()


@pytest.fixture(scope="module")
def signed_in(showcase: Showcase, browser: Any) -> Any:
    """The cookies of a signed-in operator (each test opens its own page with them)."""
    context = browser.new_context(base_url=showcase.live.base)
    try:
        page = context.new_page()
        sign_in(page)
        return context.storage_state()
    finally:
        context.close()


# The pages, each reached as a person would (URL, or a form submitted); the name is
# also the screenshot's file name for those in SCREENSHOTS.
def _login(page: Any, _: Showcase) -> None:
    page.goto("/console/login")


def _login_refused(page: Any, _: Showcase) -> None:
    page.goto("/console/login")
    page.get_by_label("API key").fill("not-the-key-at-all-0000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()


def _lookup(page: Any, _: Showcase) -> None:
    page.goto("/console")
    page.get_by_label("Address", exact=True).fill(EVIDENCE)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("region", name=EVIDENCE)).to_be_visible()


def _lookup_list(page: Any, _: Showcase) -> None:
    page.goto("/console")
    page.get_by_text("Check a list").click()
    page.get_by_label("Addresses, one per line", exact=False).fill(
        "nobody@example.org\nalice@example.com\nannoyed@example.com\nnew@example.org"
    )
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text("2 of 4 suppressed")).to_be_visible()


def _address(page: Any, _: Showcase) -> None:
    page.goto(f"/console/address/{EVIDENCE}")
    expect(
        page.get_by_role("heading", name="Timeline: every event and what it did")
    ).to_be_visible()


def _address_released(page: Any, _: Showcase) -> None:
    page.goto("/console/address/old.account@example.net")
    expect(page.get_by_label("Suppress: why? (recorded with your name)")).to_be_visible()


def _receipt(page: Any, showcase: Showcase) -> None:
    page.goto(f"/console/receipts/{showcase.evidence}")
    expect(page.locator("pre.body")).to_be_visible()


def _suppressions(page: Any, _: Showcase) -> None:
    page.goto("/console/suppressions")
    expect(page.get_by_role("button", name="Filter")).to_be_visible()


def _release_confirm(page: Any, _: Showcase) -> None:
    page.goto("/console/suppressions")
    for email in ("gone@example.com", "grumpy@example.org"):
        page.locator(f'input[name="email"][value="{email}"]').check()
    page.get_by_role("button", name="Release selected").click()
    expect(page.get_by_role("heading", name="Release 2 address(es)?")).to_be_visible()


def _policy(page: Any, _: Showcase) -> None:
    page.goto("/console/policy")
    expect(page.get_by_label("Candidate policy (TOML)")).to_be_visible()


def _policy_preview(page: Any, _: Showcase) -> None:
    page.goto("/console/policy")
    page.get_by_label("Candidate policy (TOML)").fill(CANDIDATE)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("button", name="Apply to all of history")).to_be_visible()


def _ledger(page: Any, _: Showcase) -> None:
    page.goto("/console/ledger")
    expect(page.get_by_role("button", name="Verify the chain")).to_be_visible()
    expect(page.get_by_role("button", name="Replay")).to_have_count(1)  # the quarantined one


def _ledger_verified(page: Any, _: Showcase) -> None:
    page.goto("/console/ledger")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_text("intact", exact=True)).to_be_visible()


PAGES: dict[str, Callable[[Any, Showcase], None]] = {
    "login": _login,
    "login-refused": _login_refused,
    "lookup": _lookup,
    "lookup-list": _lookup_list,
    "address": _address,
    "address-released": _address_released,
    "receipt": _receipt,
    "suppressions": _suppressions,
    "release-confirm": _release_confirm,
    "policy": _policy,
    "policy-preview": _policy_preview,
    "ledger": _ledger,
    "ledger-verified": _ledger_verified,
}
SCREENSHOTS = {"lookup", "address", "receipt", "suppressions", "policy-preview", "ledger"}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_serious_accessibility_violation(
    name: str, showcase: Showcase, signed_in: Any, tabs: Tabs
) -> None:
    page = tabs.open(showcase.live, storage_state=None if name.startswith("login") else signed_in)
    PAGES[name](page, showcase)
    if not name.startswith("login"):
        expect(page.get_by_text(f"signed in as {OPERATOR}")).to_be_visible()
    if name in SCREENSHOTS:
        screenshot(page, name)
    axe_check(page, name)
