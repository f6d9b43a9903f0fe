"""One canonical address, end to end: however a provider, an API client or an operator
spells it — a display name, upper case, a trailing dot, an IDN domain as U-label or
A-label (an emoji one too), a needlessly quoted local part, NFD — it is stored, looked
up, checked and released under one key; and a recipient no backend can store (a control
character, 3,000 characters) names no recipient and does not stop the projection, on
SQLite and on PostgreSQL alike. The properties are in tests/properties/test_addresses.py,
the cases of `normalize_recipient` in tests/unit/test_recipients.py.

Provenance: the first deliverability review (issue 12, H6) and the second (issue 18, N1
and N12)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AUTH, settle
from tests.doors import (
    accepted,
    epoch,
    post_resend,
    post_sendgrid,
    post_ses,
    post_smtp2go,
    release,
    resend,
    sendgrid_batch,
    ses_bounce,
    sg_bounce,
    sg_event,
    smtp2go_hard,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

MAY_4 = epoch(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))


async def check(client: Any, emails: list[str]) -> dict[str, str]:
    """`POST /v1/suppressions/check`: the reason for each address given that is suppressed."""
    await settle(client)
    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    return {hit["email"]: hit["reason"] for hit in (await accepted(response))["suppressed"]}


async def client_check(client: Any, emails: list[str]) -> dict[str, Any]:
    await settle(client)
    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    return await accepted(response)


# -- a display name, case, a trailing dot, IDN ------------------------------------


@pytest.mark.parametrize(
    ("provider", "address"),
    [
        pytest.param("smtp2go", "bob.dn@example.org", id="smtp2go-rcpt"),
        pytest.param("ses", "bob.ses@example.org", id="ses-emailAddress"),
        pytest.param("resend", "bob.rs@example.org", id="resend-to"),
    ],
)
async def test_a_display_name_address_is_suppressed_under_its_addr_spec(
    pclient: Any, provider: str, address: str
) -> None:
    """Issue 12, item 6 (review H6): `"Bob" <bob@…>` as the provider sends it is stored
    and found under the addr-spec alone."""
    named = f'"Bob Smith" <{address.upper()}>'
    if provider == "smtp2go":
        await post_smtp2go(pclient, smtp2go_hard(named, "2026-05-04T10:15:02Z", "h6-dn"))
    elif provider == "ses":
        await post_ses(pclient, ses_bounce(named, "2026-05-04T10:15:02.481Z"), "h6-ses")
    else:
        bounce = {"type": "Permanent", "subType": "General", "message": "hard bounce"}
        document = resend("email.bounced", [named], "2026-05-04T10:15:02.481Z", "h6", bounce=bounce)
        await post_resend(pclient, document, "msg_h6")
    got = await verdict(pclient, address)
    assert (got["email"], got["suppressed"], got["reason"]) == (address, True, "hard_bounce")
    assert (await verdict(pclient, address + "."))["suppressed"] is True  # trailing dot


async def test_one_canonical_address_at_ingest_status_check_and_operator_actions(
    pclient: Any,
) -> None:
    """Issue 12, item 6 (review H6): the exact SMTP2GO case (`rcpt: "Bob" <…>`), an IDN
    domain in both directions (A-label in, U-label asked, and the reverse), the check
    endpoint with display-name and unicode spellings, and operator actions."""
    await post_smtp2go(
        pclient, smtp2go_hard('"Bob" <bob.dn@example.org>', "2026-05-04T10:15:02Z", "h6-bob")
    )
    await post_smtp2go(
        pclient, smtp2go_hard("jose@xn--bcher-kva.example", "2026-05-04T10:16:00Z", "h6-jose")
    )
    await post_sendgrid(
        pclient, sendgrid_batch(sg_bounce("Maria@Bücher.example", MAY_4, "h6-maria"))
    )
    for asked, canonical in [
        ("bob.dn@example.org", "bob.dn@example.org"),
        ("jose@bücher.example", "jose@xn--bcher-kva.example"),
        ("maria@xn--bcher-kva.example", "maria@xn--bcher-kva.example"),
        ("MARIA@BÜCHER.EXAMPLE.", "maria@xn--bcher-kva.example"),
    ]:
        got = await verdict(pclient, asked)
        assert (got["email"], got["suppressed"], got["reason"]) == (
            canonical,
            True,
            "hard_bounce",
        ), asked

    given = [
        '"Bob" <bob.dn@example.org>',
        "jose@bücher.example",
        "José <JOSE@XN--BCHER-KVA.EXAMPLE.>",
        "maria@xn--bcher-kva.example",
        "nobody.else@bücher.example",
    ]
    response = await client_check(pclient, given)
    assert response["checked"] == 5
    assert sorted(hit["email"] for hit in response["suppressed"]) == sorted(given[:4])
    assert {hit["reason"] for hit in response["suppressed"]} == {"hard_bounce"}

    response = await pclient.put(
        "/v1/suppressions/ana@bücher.example", json={"note": "asked by phone"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    got = await verdict(pclient, "ana@xn--bcher-kva.example")
    assert (got["email"], got["reason"]) == ("ana@xn--bcher-kva.example", "manual")
    released = await release(pclient, "ANA@XN--BCHER-KVA.EXAMPLE.", "wrong address", ("manual",))
    assert released["suppressed"] is False
    assert (await verdict(pclient, "ana@bücher.example"))["suppressed"] is False


async def test_a_needlessly_quoted_local_part_is_the_same_mailbox(pclient: Any) -> None:
    """Issue 18, finding N12: an SMTP2GO hard bounce for `"bob"@example.org` is found
    when `bob@example.org` is asked (RFC 5321: the same mailbox)."""
    await post_smtp2go(pclient, smtp2go_hard('"bob"@example.org', "2026-05-04T10:15:02Z", "n12-q"))
    got = await verdict(pclient, "bob@example.org")
    assert (got["email"], got["suppressed"], got["reason"]) == (
        "bob@example.org",
        True,
        "hard_bounce",
    )
    assert await check(pclient, ['"bob"@example.org', "BOB@example.org"]) == {
        '"bob"@example.org': "hard_bounce",
        "BOB@example.org": "hard_bounce",
    }


async def test_nfc_and_nfd_spellings_are_one_address(pclient: Any) -> None:
    """Issue 18, finding N12: a SendGrid complaint for the NFD spelling of
    josé@example.org is found by the NFC spelling (and the reverse)."""
    nfc = unicodedata.normalize("NFC", "josé@example.org")
    nfd = unicodedata.normalize("NFD", "josé@example.org")
    assert nfc != nfd
    now = epoch(datetime.now(UTC))
    await post_sendgrid(pclient, sendgrid_batch(sg_event("spamreport", nfd, now, "n12-nfd")))
    assert await check(pclient, [nfc, nfd]) == {nfc: "complaint", nfd: "complaint"}


async def test_an_emoji_domain_is_found_by_its_a_label_and_its_u_label(pclient: Any) -> None:
    """Issue 18, finding N12: IDNA 2008 refuses `i❤.ws`; a complaint a provider reports
    for `bob@xn--i-7iq.ws` is found for `bob@i❤.ws`, and one reported for `ann@i❤.ws`
    is found for `ann@xn--i-7iq.ws`."""
    now = epoch(datetime.now(UTC))
    await post_sendgrid(
        pclient,
        sendgrid_batch(
            sg_event("spamreport", "bob@xn--i-7iq.ws", now, "n12-a"),
            sg_event("spamreport", "ann@i❤.ws", now, "n12-u"),
        ),
    )
    assert await check(pclient, ["bob@i❤.ws", "ann@xn--i-7iq.ws", "BOB@I❤.WS."]) == {
        "bob@i❤.ws": "complaint",
        "ann@xn--i-7iq.ws": "complaint",
        "BOB@I❤.WS.": "complaint",
    }


# -- a recipient no backend can store ---------------------------------------------


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
async def test_a_recipient_no_backend_can_store_does_not_stop_the_list(
    pclient: Any, bad: str
) -> None:
    """Issue 18, finding N1: a SendGrid bounce for `nul\\u0000user@example.org` (or with
    another control character inside the address, or 3,000 characters long) names no
    recipient: acknowledged as one unattributed event, and the projection goes on, so a
    later spam report for another address is applied, on PostgreSQL as on SQLite;
    /readyz stays 200."""
    now = datetime.now(UTC)
    answer = await post_sendgrid(
        pclient, sendgrid_batch(sg_bounce(bad, epoch(now - timedelta(minutes=2)), "n1-bad"))
    )
    assert (answer["events"], answer["unattributed"]) == (0, 1)

    after = "after-nul@example.org"
    complaint = sg_event("spamreport", after, epoch(now - timedelta(minutes=1)), "n1-after")
    answer = await post_sendgrid(pclient, sendgrid_batch(complaint))
    assert answer["events"] == 1
    got = await verdict(pclient, after)
    assert (got["suppressed"], got["reason"]) == (True, "complaint")

    assert await check(pclient, [bad, after]) == {after: "complaint"}
    ready = await pclient.get("/readyz")
    assert ready.status_code == 200, ready.text
