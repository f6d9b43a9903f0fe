"""The second review's address cases (issue 18, findings N1 and N12), end to end: signed
provider webhooks posted to the running app, the verdict read back over HTTP, on SQLite
and on PostgreSQL alike."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AUTH, settle
from tests.integration.doors import (
    accepted,
    epoch,
    post_sendgrid,
    post_smtp2go,
    sendgrid_batch,
    sg_bounce,
    sg_event,
    smtp2go_hard,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL


async def check(client: Any, emails: list[str]) -> dict[str, str]:
    """`POST /v1/suppressions/check`: the reason for each address given that is suppressed."""
    await settle(client)
    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    return {hit["email"]: hit["reason"] for hit in (await accepted(response))["suppressed"]}


@pytest.mark.parametrize(
    "bad",
    [
        "nul\x00user@example.org",
        "nul\x01user@example.org",
        "nul\x1fuser@example.org",
        "nul\x7fuser@example.org",
        "a" * 3000 + "@example.org",  # longer than PostgreSQL's btree takes as a key
    ],
    ids=["nul", "soh", "us", "del", "long"],
)
async def test_a_recipient_no_backend_can_store_does_not_stop_the_list(app: Any, bad: str) -> None:
    """Issue 18, finding N1: a SendGrid bounce for `nul\\u0000user@example.org` (or with
    another control character inside the address, or 3,000 characters long) names no
    recipient: acknowledged as one unattributed event, and the projection goes on, so a
    later spam report for another address is applied, on PostgreSQL as on SQLite;
    /readyz stays 200."""
    now = datetime.now(UTC)
    answer = await post_sendgrid(
        app, sendgrid_batch(sg_bounce(bad, epoch(now - timedelta(minutes=2)), "n1-bad"))
    )
    assert (answer["events"], answer["unattributed"]) == (0, 1)

    after = "after-nul@example.org"
    complaint = sg_event("spamreport", after, epoch(now - timedelta(minutes=1)), "n1-after")
    answer = await post_sendgrid(app, sendgrid_batch(complaint))
    assert answer["events"] == 1
    got = await verdict(app, after)
    assert (got["suppressed"], got["reason"]) == (True, "complaint")

    assert await check(app, [bad, after]) == {after: "complaint"}
    ready = await app.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_a_needlessly_quoted_local_part_is_the_same_mailbox(app: Any) -> None:
    """Issue 18, finding N12: an SMTP2GO hard bounce for `"bob"@example.org` is found
    when `bob@example.org` is asked (RFC 5321: the same mailbox)."""
    await post_smtp2go(app, smtp2go_hard('"bob"@example.org', "2026-05-04T10:15:02Z", "n12-q"))
    got = await verdict(app, "bob@example.org")
    assert (got["email"], got["suppressed"], got["reason"]) == (
        "bob@example.org",
        True,
        "hard_bounce",
    )
    assert await check(app, ['"bob"@example.org', "BOB@example.org"]) == {
        '"bob"@example.org': "hard_bounce",
        "BOB@example.org": "hard_bounce",
    }


async def test_nfc_and_nfd_spellings_are_one_address(app: Any) -> None:
    """Issue 18, finding N12: a SendGrid complaint for the NFD spelling of
    josé@example.org is found by the NFC spelling (and the reverse)."""
    nfc = unicodedata.normalize("NFC", "josé@example.org")
    nfd = unicodedata.normalize("NFD", "josé@example.org")
    assert nfc != nfd
    now = epoch(datetime.now(UTC))
    await post_sendgrid(app, sendgrid_batch(sg_event("spamreport", nfd, now, "n12-nfd")))
    assert await check(app, [nfc, nfd]) == {nfc: "complaint", nfd: "complaint"}


async def test_an_emoji_domain_is_found_by_its_a_label_and_its_u_label(app: Any) -> None:
    """Issue 18, finding N12: IDNA 2008 refuses `i❤.ws`; a complaint a provider reports
    for `bob@xn--i-7iq.ws` is found for `bob@i❤.ws`, and one reported for `ann@i❤.ws`
    is found for `ann@xn--i-7iq.ws`."""
    now = epoch(datetime.now(UTC))
    await post_sendgrid(
        app,
        sendgrid_batch(
            sg_event("spamreport", "bob@xn--i-7iq.ws", now, "n12-a"),
            sg_event("spamreport", "ann@i❤.ws", now, "n12-u"),
        ),
    )
    assert await check(app, ["bob@i❤.ws", "ann@xn--i-7iq.ws", "BOB@I❤.WS."]) == {
        "bob@i❤.ws": "complaint",
        "ann@xn--i-7iq.ws": "complaint",
        "BOB@I❤.WS.": "complaint",
    }
