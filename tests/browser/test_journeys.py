"""What people do in the console, in a real browser, click by click."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.api.test_streams import HISTORY as STREAM_HISTORY
from tests.api.test_streams import POLICY as STREAM_POLICY
from tests.browser.conftest import Tabs
from tests.browser.helpers import (
    API_KEY,
    OPERATOR,
    PHONE,
    LiveServer,
    Steps,
    axe_check,
    complaint,
    event,
    hard_bounce,
    sign_in,
    soft_bounce,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

Serve = Callable[..., LiveServer]
SUPPRESSIONS_CSV = ["email", "reason", "provider", "since", "receipt", "last_event", "reasons"]
POLICY_CSV = ["email", "before", "after"]


def _downloaded(download: Any) -> list[dict[str, str]]:
    """The rows of a downloaded CSV file, checked to have a header."""
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    return [{"__header__": ",".join(reader.fieldnames or [])}, *reader]


def _set(steps: Steps, field: Any, value: str, what: str) -> None:
    """Fill a text input, or choose in a select (the contract names the field only)."""
    if field.evaluate("element => element.tagName") == "SELECT":
        field.select_option(value)
        steps.done += [("click", f"open the list: {what}"), ("click", f"pick {value}")]
    else:
        steps.type(field, value, what)


# (a) --------------------------------------------------------------------------------

CUSTOMER = "jane.doe@example.org"
RELEASE_NOTE = "customer fixed the mailbox, ticket 4711"


@pytest.mark.both_backends
def test_a_support_person_releases_an_address(
    serve: Serve, tabs: Tabs, db_path: Path, backend: str
) -> None:
    """Sign in, look up, open the evidence, back, release with a note, see it in the
    timeline (on SQLite and on PostgreSQL)."""
    live = serve(db_path)
    evidence = live.webhook(hard_bounce(CUSTOMER, "hb-jane"))["seq"]
    live.webhook(event("delivered", "someone.else@example.com", "dl-1"))
    live.settle()
    page = tabs.open(live)
    steps = Steps(f"(a) support, {backend}: sign in, look up, evidence, back, release with a note")

    steps.visit(page, "/console", "the console's address (bookmark)")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    steps.type(page.get_by_label("API key"), API_KEY, "the API key")
    steps.click(page.get_by_role("button", name="Sign in"), "Sign in")
    expect(page.get_by_text(f"signed in as {OPERATOR}")).to_be_visible()

    steps.type(page.get_by_label("Address", exact=True), CUSTOMER, "the customer's address")
    steps.click(page.get_by_role("button", name="Look up"), "Look up")
    verdict = page.get_by_role("region", name=CUSTOMER)
    expect(verdict).to_contain_text("suppressed · hard_bounce")

    steps.click(verdict.get_by_role("link", name=f"#{evidence}"), f"the evidence, #{evidence}")
    expect(page.get_by_role("heading", name=f"Receipt #{evidence}")).to_be_visible()
    expect(page.locator("pre.body")).to_contain_text("Recipient address rejected: User unknown")
    steps.back(page)
    expect(verdict).to_contain_text("suppressed · hard_bounce")

    steps.click(page.get_by_role("link", name="Every event and what it did"), "the address")
    expect(page.get_by_role("heading", name=CUSTOMER, level=1)).to_be_visible()
    note = page.get_by_label("Release: why? (recorded with your name)")
    steps.type(note, RELEASE_NOTE, "why (the note)")
    steps.click(page.get_by_role("button", name="Release"), "Release")

    expect(page.get_by_role("status")).to_contain_text(f"released by {OPERATOR}")
    expect(page.get_by_text("may be mailed").first).to_be_visible()
    timeline = page.locator("table").filter(
        has=page.get_by_role("columnheader", name="What it did")
    )
    release = timeline.locator("tbody tr").filter(has_text=RELEASE_NOTE)
    expect(release).to_have_count(1)
    expect(release).to_contain_text(f"released by {OPERATOR} ({RELEASE_NOTE})")
    assert live.status(CUSTOMER)["suppressed"] is False

    steps.report()
    assert steps.count("click") <= 6, steps.done


# (b) --------------------------------------------------------------------------------

FULL_BOX = "full.box@example.net"
CANDIDATE = """\
# Two soft bounces within a week are enough.
soft_bounce_threshold = 2
soft_bounce_window = "7d"
"""
POLICY_NOTE = "two soft bounces a week are enough, per the deliverability review"


def test_b_policy_preview_and_apply(serve: Serve, tabs: Tabs) -> None:
    """Paste a TOML, preview, see (and download) the diff, apply with a note, see it in
    the policy's history."""
    live = serve()
    live.webhook(soft_bounce(FULL_BOX, "sb-1", time="2026-05-01T09:00:00Z"))
    live.webhook(soft_bounce(FULL_BOX, "sb-2", time="2026-05-03T09:00:00Z"))
    live.webhook(hard_bounce("gone@example.com", "hb-gone"))
    live.settle()
    assert live.status(FULL_BOX)["suppressed"] is False
    page = tabs.open(live)
    sign_in(page)
    steps = Steps("(b) policy: paste, preview, download the diff, apply with a note")

    steps.click(page.get_by_role("link", name="Policy", exact=True), "Policy")
    steps.type(page.get_by_label("Candidate policy (TOML)"), CANDIDATE, "the candidate TOML")
    steps.click(page.get_by_role("button", name="Preview"), "Preview")
    expect(page.get_by_text(re.compile(r"\b1 address(\(es\)|es)? would change"))).to_be_visible()
    expect(page.get_by_text(FULL_BOX).first).to_be_visible()
    expect(page.get_by_text("gone@example.com")).to_have_count(0)  # unchanged: not listed

    with page.expect_download() as downloading:
        steps.click(page.get_by_role("button", name="Download the changes as CSV"), "CSV")
    header, *rows = _downloaded(downloading.value)
    assert header["__header__"] == ",".join(POLICY_CSV)
    assert [row["email"] for row in rows] == [FULL_BOX]
    assert "soft_bounce" in rows[0]["after"], rows

    steps.type(page.get_by_label("Why? (recorded with your name)"), POLICY_NOTE, "the note")
    steps.click(page.get_by_role("button", name="Apply to all of history"), "Apply")
    live.settle()
    assert live.status(FULL_BOX)["reason"] == "soft_bounce_threshold"

    page.goto("/console/policy")
    entry = page.locator("tr, li").filter(has_text=POLICY_NOTE)
    expect(entry.first).to_be_visible()
    expect(entry.first).to_contain_text(OPERATOR)
    steps.report()


# (c) --------------------------------------------------------------------------------

HARD = ["amy@example.org", "bob@example.com", "cyd@example.net"]
COMPLAINED = ["dan@example.org", "eve@example.com"]


def _suppression_list(live: LiveServer) -> dict[str, int]:
    """Three hard bounces, two complaints, a soft bounce: their receipts by address."""
    seqs = {}
    for number, email in enumerate(HARD):
        seqs[email] = live.webhook(
            hard_bounce(email, f"hb-{number}", time=f"2026-05-0{number + 1}T10:00:00Z")
        )["seq"]
    for number, email in enumerate(COMPLAINED):
        seqs[email] = live.webhook(complaint(email, f"sp-{number}"))["seq"]
    live.webhook(soft_bounce("fay@example.org", "sb-fay"))
    live.settle()
    return seqs


def test_c_export_the_filtered_suppressions_as_csv(serve: Serve, tabs: Tabs) -> None:
    """Filter the list by reason, export it, and find exactly the filtered rows."""
    live = serve()
    seqs = _suppression_list(live)
    page = tabs.open(live)
    sign_in(page)
    steps = Steps("(c) CSV export: filter by reason, export, open the file")

    steps.click(page.get_by_role("link", name="Suppressions", exact=True), "Suppressions")
    _set(steps, page.locator("[name=reason]"), "hard_bounce", "the reason: hard_bounce")
    steps.click(page.get_by_role("button", name="Filter"), "Filter")
    for email in HARD:
        expect(page.locator(f'input[name="email"][value="{email}"]')).to_have_count(1)
    for email in COMPLAINED:
        expect(page.locator(f'input[name="email"][value="{email}"]')).to_have_count(0)

    with page.expect_download() as downloading:
        steps.click(page.get_by_role("link", name="Export CSV"), "Export CSV")
    download = downloading.value
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename
    header, *rows = _downloaded(download)
    assert header["__header__"] == ",".join(SUPPRESSIONS_CSV)
    assert sorted(row["email"] for row in rows) == sorted(HARD)
    for row in rows:
        assert row["reason"] == "hard_bounce", row
        assert row["provider"] == "smtp2go", row
        assert row["receipt"] == str(seqs[row["email"]]), row
        assert row["since"].startswith("2026-05-0"), row
    steps.report()


def test_c_release_selected_addresses_with_a_note(serve: Serve, tabs: Tabs) -> None:
    """Tick two rows, Release selected, see every cause, tick the complaint to lift it
    too (issue 18: an opt-out is lifted only when named), confirm with a note: both are
    released."""
    live = serve()
    _suppression_list(live)
    page = tabs.open(live)
    sign_in(page)
    steps = Steps("(c) bulk release: tick two, Release selected, name the cause, confirm")

    steps.click(page.get_by_role("link", name="Suppressions", exact=True), "Suppressions")
    for email in COMPLAINED:
        steps.click(page.locator(f'input[name="email"][value="{email}"]'), f"tick {email}")
    steps.click(page.get_by_role("button", name="Release selected"), "Release selected")
    expect(page.get_by_role("heading", name="Release 2 address(es)?")).to_be_visible()
    for email in COMPLAINED:
        expect(page.get_by_text(email).first).to_be_visible()
    steps.click(page.get_by_label("also lift complaint"), "tick: also lift complaint")
    steps.type(page.get_by_label("Why? (recorded with your name)"), "confirmed opt-in", "note")
    steps.click(page.get_by_role("button", name="Release 2 address(es)"), "confirm")
    live.settle()
    for email in COMPLAINED:
        assert live.status(email)["suppressed"] is False, email
    for email in HARD:
        assert live.status(email)["suppressed"] is True, email
    steps.report()


# (d) --------------------------------------------------------------------------------

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
EVIL = "mallory@example.com"


def _harmless(page: Any) -> None:
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0


@pytest.mark.parametrize("csp", ["csp", "no-csp"])
def test_d_a_hostile_body_is_shown_as_text(serve: Serve, tabs: Tabs, csp: str) -> None:
    """Markup in a webhook never runs: on the receipt and the address pages it is text.
    Also with the Content-Security-Policy bypassed, so escaping alone is what is tested."""
    live = serve()
    seq = live.webhook(
        hard_bounce(EVIL, "hb-evil", subject=f"Hi {SCRIPT} {IMG}", message=f"550 {SCRIPT} {IMG}")
    )["seq"]
    live.settle()
    page = tabs.open(live, bypass_csp=csp == "no-csp")
    sign_in(page)

    response = page.goto(f"/console/receipts/{seq}")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    body = page.locator("pre.body")
    expect(body).to_be_visible()
    expect(body).to_contain_text(SCRIPT)
    expect(body).to_contain_text(IMG.replace('"', '\\"'))  # as the JSON body spells it
    _harmless(page)

    page.goto(f"/console/address/{EVIL}")
    detail = page.locator("tbody tr").filter(has_text=SCRIPT)
    expect(detail).to_have_count(1)
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(f"550 {SCRIPT} {IMG}")
    _harmless(page)

    page.goto(f"/console?q={EVIL}")
    expect(page.get_by_role("region", name=EVIL)).to_contain_text("suppressed")
    _harmless(page)
    assert tabs.seen.dialogs == []


# (e) --------------------------------------------------------------------------------


def _tab_to(page: Any, steps: Steps, selector: str, what: str, most: int = 25) -> None:
    """Press Tab until the focused element matches `selector` (each press counted)."""
    for _ in range(most):
        steps.press(page, "Tab", what)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"{selector} has no visible focus"
            return
    raise AssertionError(f"{most} Tabs did not reach {selector}")


def test_e_sign_in_and_look_up_with_the_keyboard_only(serve: Serve, tabs: Tabs) -> None:
    live = serve()
    live.webhook(hard_bounce(CUSTOMER, "hb-jane"))
    live.settle()
    page = tabs.open(live)
    steps = Steps("(e) keyboard only: sign in, look up, open the address")

    page.goto("/console/login")
    expect(page.get_by_label("API key")).to_be_focused()  # autofocus: type at once
    steps.keys(page, API_KEY, "the API key")
    steps.press(page, "Enter", "sign in")
    expect(page.get_by_text(f"signed in as {OPERATOR}")).to_be_visible()

    _tab_to(page, steps, "a.skip", "to Skip to content")
    steps.press(page, "Enter", "skip to content")
    _tab_to(page, steps, "#q", "to the Address field")
    steps.keys(page, CUSTOMER, "the address")
    steps.press(page, "Enter", "look up")
    expect(page.get_by_role("region", name=CUSTOMER)).to_contain_text("suppressed")

    _tab_to(page, steps, 'main a[href^="/console/address/"]', "to the address's link")
    steps.press(page, "Enter", "open the address")
    expect(page.get_by_role("heading", name=CUSTOMER, level=1)).to_be_visible()
    steps.report()
    assert steps.count("click") == 0


# (f) --------------------------------------------------------------------------------


def _no_horizontal_overflow(page: Any) -> None:
    widths = page.evaluate(
        "() => ({inner: window.innerWidth, doc: document.documentElement.scrollWidth,"
        " body: document.body.scrollWidth})"
    )
    assert widths["doc"] <= widths["inner"], widths
    assert widths["body"] <= widths["inner"], widths


def _within_viewport(page: Any, locator: Any) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["width"], box


def test_f_the_lookup_page_on_a_phone(serve: Serve, tabs: Tabs) -> None:
    live = serve()
    live.webhook(hard_bounce(CUSTOMER, "hb-jane"))
    live.settle()
    page = tabs.open(live, viewport=PHONE)
    sign_in(page)
    _no_horizontal_overflow(page)

    field, button = (
        page.get_by_label("Address", exact=True),
        page.get_by_role("button", name="Look up"),
    )
    _within_viewport(page, field)
    _within_viewport(page, button)
    field.fill(CUSTOMER)
    button.click()
    result = page.get_by_role("region", name=CUSTOMER)
    expect(result).to_contain_text("suppressed · hard_bounce")
    _no_horizontal_overflow(page)
    _within_viewport(page, result.get_by_role("link", name="Every event and what it did"))

    page.get_by_text("Check a list").click()
    _within_viewport(page, page.get_by_label(re.compile("^Addresses, one per line")))
    _no_horizontal_overflow(page)


# (g) --------------------------------------------------------------------------------

NEWSLETTER_ONLY = "alice@example.org"  # unsubscribed from the newsletter (X-Stream header)


def test_g_choose_a_stream_on_the_lookup_page(serve: Serve, tabs: Tabs) -> None:
    """Look up an address unsubscribed from the newsletter: suppressed for every stream;
    choose the transactional stream: it may be mailed, and the unsubscribe is listed as
    not blocking it; choose the newsletter: suppressed again."""
    live = serve(policy=STREAM_POLICY)
    for body in STREAM_HISTORY:
        live.webhook(body)
    live.settle()
    page = tabs.open(live)
    sign_in(page)
    steps = Steps("(g) streams: look up, choose a stream, see the verdict for it")

    search = page.get_by_role("search")
    steps.type(search.get_by_label("Address"), NEWSLETTER_ONLY, "the address")
    steps.click(search.get_by_role("button", name="Look up"), "Look up")
    verdict = page.get_by_role("region", name=NEWSLETTER_ONLY)
    expect(verdict).to_contain_text("suppressed · unsubscribe")

    _set(steps, search.get_by_label("Stream"), "transactional", "the stream: transactional")
    steps.click(search.get_by_role("button", name="Look up"), "Look up")
    expect(verdict).to_contain_text("For the transactional stream: may be mailed")
    # not blocking this stream
    expect(verdict).to_contain_text("unsubscribe (smtp2go) [newsletter]")
    expect(search.get_by_label("Stream")).to_have_value("transactional")  # kept
    axe_check(page, "lookup-stream")

    _set(steps, search.get_by_label("Stream"), "newsletter", "the stream: newsletter")
    steps.click(search.get_by_role("button", name="Look up"), "Look up")
    expect(verdict).to_contain_text("For the newsletter stream: suppressed · unsubscribe")
    steps.click(verdict.get_by_role("link", name="Every event and what it did"), "the address")
    expect(page.get_by_role("heading", name=NEWSLETTER_ONLY, level=1)).to_be_visible()
    expect(page.get_by_label("Stream", exact=True)).to_have_value("newsletter")  # kept here too
    expect(page.get_by_text("For the newsletter stream")).to_be_visible()
    steps.report()
