"""Releases, end to end: an operator's release (`DELETE /v1/suppressions/{email}`)
lifts what was in the ledger when it was made and what it names — the bounces unless
more causes are named — and records both; evidence that arrives later suppresses again,
a redelivery of what was released does not, and a release retried or sent after newer
evidence arrived is refused. Provider payloads signed as each provider signs, posted to
the app with every door open, the verdict read back over HTTP.

Provenance: the first deliverability review (issue 12, H1) and the second (issue 18, N2
and N9); each docstring names its finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AUTH, settle
from tests.doors import (
    DAY,
    epoch,
    explain_effects,
    get,
    post_sendgrid,
    release,
    sendgrid_batch,
    sg_bounce,
    sg_event,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

NOW = datetime.now(UTC)


async def delete(client: Any, email: str, **kwargs: Any) -> Any:
    return await client.request("DELETE", f"/v1/suppressions/{email}", **kwargs)


async def head(client: Any) -> int:
    """The ledger's last receipt."""
    return int((await settle(client))["receipts"])


# -- a release lifts only what was in the ledger when it was made -------------------


async def test_evidence_that_reaches_the_ledger_after_a_release_suppresses_again(
    pclient: Any,
) -> None:
    """Issue 12, item 1 (review H1): a release lifts only what was in the ledger when it
    was made. A SendGrid hard bounce at T-1h, a release at T, then a retried spam report
    dated T-2min arrives: suppressed by the complaint, and `explain` does not claim the
    release lifted a complaint it never saw."""
    now = datetime.now(UTC)
    late = "late@example.org"
    original = sendgrid_batch(sg_bounce(late, epoch(now - timedelta(hours=1)), "h1"))
    await post_sendgrid(pclient, original)
    assert (await verdict(pclient, late))["reason"] == "hard_bounce"

    released = await release(pclient, late, "mailbox recreated, ticket 4711")
    assert released["suppressed"] is False
    # SendGrid redelivers the original bounce, byte for byte: the same event, no change.
    assert (await post_sendgrid(pclient, original))["duplicate"] is True
    assert (await verdict(pclient, late))["suppressed"] is False

    complaint = sg_event("spamreport", late, epoch(now - timedelta(minutes=2)), "h1-spam")
    await post_sendgrid(pclient, sendgrid_batch(complaint))
    got = await verdict(pclient, late)
    assert (got["suppressed"], got["reason"]) == (True, "complaint")

    effects = await explain_effects(pclient, late)
    (released_step,) = [effect for effect in effects if effect.startswith("released by")]
    lifted = released_step.split("lifted", 1)[1].split(";", 1)[0]
    assert "hard_bounce" in lifted
    assert "complaint" not in lifted  # it was not in the ledger when the operator acted

    # The same for a new hard bounce dated before the release: new evidence, suppresses.
    other = "other.late@example.org"
    await post_sendgrid(pclient, sendgrid_batch(sg_bounce(other, epoch(now - DAY), "h1-b1")))
    await release(pclient, other, "user says the mailbox works again")
    retried = sg_bounce(other, epoch(now - timedelta(minutes=30)), "h1-b2")
    await post_sendgrid(pclient, sendgrid_batch(retried))
    assert (await verdict(pclient, other))["reason"] == "hard_bounce"


async def test_a_redelivery_of_the_released_bounce_changes_nothing(pclient: Any) -> None:
    """Issue 12, item 1 (review H1), the other side: the very same event delivered again
    after the release (byte-identical, or the same `sg_event_id` in another batch) is
    de-duplicated and does not suppress again. Guards a behaviour kept by the fix."""
    now = datetime.now(UTC)
    late = "late@example.org"
    original = sendgrid_batch(sg_bounce(late, epoch(now - timedelta(hours=1)), "h1-orig"))
    await post_sendgrid(pclient, original)
    await settle(pclient)
    await release(pclient, late, "mailbox recreated, ticket 4711")

    again = await post_sendgrid(pclient, original)  # re-signed, same bytes
    assert again["duplicate"] is True
    rebatched = sendgrid_batch(
        sg_event("delivered", "someone.else@example.org", epoch(now), "h1-other"),
        sg_bounce(late, epoch(now - timedelta(hours=1)), "h1-orig"),
    )
    assert (await post_sendgrid(pclient, rebatched))["duplicate"] is False
    got = await verdict(pclient, late)
    assert got["suppressed"] is False
    assert got["reason"] is None


async def test_a_release_lifts_evidence_dated_after_its_own_clock(pclient: Any) -> None:
    """Issue 18, finding N9: a provider clock three minutes ahead must not defeat a
    release of the evidence already in the ledger."""
    address = "skew@example.org"
    ahead = epoch(datetime.now(UTC) + timedelta(minutes=3))
    await post_sendgrid(pclient, sendgrid_batch(sg_bounce(address, ahead, "skew-1")))
    await settle(pclient)
    response = await delete(pclient, address, params={"note": "address works"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False
    effects = await explain_effects(pclient, address)
    assert effects[-1].startswith("released by ops")
    assert "lifted hard_bounce" in effects[-1]


# -- a release lifts what the operator saw and named -------------------------------


async def test_a_release_lifts_bounces_and_names_the_opt_outs_it_leaves(pclient: Any) -> None:
    """Issue 18, finding N2 (first case): an unsubscribe hidden behind a hard bounce is
    shown by every view, and a bounce clean-up release lifts the bounce only; the
    unsubscribe is lifted when it is named."""
    address = "mixed@example.org"
    await post_sendgrid(
        pclient,
        sendgrid_batch(
            sg_event("unsubscribe", address, epoch(NOW - timedelta(days=30)), "mx-u"),
            sg_bounce(address, epoch(NOW - timedelta(hours=1)), "mx-b"),
        ),
    )
    got = await verdict(pclient, address)
    assert (got["reason"], [c["reason"] for c in got["causes"]]) == (
        "hard_bounce",
        ["hard_bounce", "unsubscribe"],
    )
    listed = await get(
        pclient, f"/v1/suppressions?reason=hard_bounce&provider=sendgrid&q={address}"
    )
    assert listed["items"][0]["reasons"] == ["hard_bounce", "unsubscribe"]
    checked = (
        await pclient.post("/v1/suppressions/check", json={"emails": [address]}, headers=AUTH)
    ).json()
    assert checked["suppressed"][0]["reasons"] == ["hard_bounce", "unsubscribe"]

    response = await delete(
        pclient, address, params={"note": "Spamhaus incident clean-up"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["suppressed"], after["reason"]) == (True, "unsubscribe")
    assert any(e.startswith("released by ops") and "lifted hard_bounce" in e
               for e in await explain_effects(pclient, address))  # fmt: skip

    response = await delete(
        pclient,
        address,
        json={"note": "re-subscribed by phone", "also": ["unsubscribe"]},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False


async def test_a_release_records_the_causes_it_lifts_and_the_evidence_it_saw(
    pclient: Any,
) -> None:
    """Issue 18, finding N2: the release's receipt names the causes it lifts (here the
    bounces, not the complaint shown as the strongest reason) and the evidence it saw;
    the fold reads both from the ledger, so the complaint stays."""
    address = "complained.and.bounced@example.org"
    await post_sendgrid(
        pclient,
        sendgrid_batch(
            sg_event("spamreport", address, epoch(NOW - timedelta(hours=2)), "cb-c"),
            sg_bounce(address, epoch(NOW - timedelta(hours=1)), "cb-b"),
        ),
    )
    assert (await verdict(pclient, address))["reason"] == "complaint"
    response = await delete(pclient, address, params={"note": "bounce clean-up"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [c["reason"] for c in response.json()["causes"]] == ["complaint"]
    receipts = (await get(pclient, "/v1/audit/receipts?source=operator"))["items"]
    body = (await get(pclient, f"/v1/audit/receipts/{receipts[-1]['seq']}"))["body_text"]
    assert '"lifts":["hard_bounce","soft_bounce_threshold"]' in body
    assert '"seen":' in body


async def test_a_release_of_unnamed_opt_outs_is_refused_and_records_nothing(pclient: Any) -> None:
    """Issue 18, finding N2: an address suppressed only by a complaint is not released
    by a plain release: 409, and nothing is appended to the ledger."""
    address = "only.complaint@example.org"
    await post_sendgrid(
        pclient, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "oc-1"))
    )
    before = await head(pclient)
    response = await delete(pclient, address, params={"note": "customer asked"}, headers=AUTH)
    assert response.status_code == 409, response.text
    body = response.json()
    assert "complaint" in body["detail"]
    assert body["current"]["reason"] == "complaint"
    assert await head(pclient) == before
    assert (await verdict(pclient, address))["reason"] == "complaint"


async def test_a_retried_release_is_not_a_second_broader_release(pclient: Any) -> None:
    """Issue 18, finding N2 (the retried DELETE): the retry carries the precondition the
    first one did; a complaint that arrived in between makes it 409, and without the
    precondition the complaint is not lifted either (it is not named)."""
    address = "retry@example.org"
    await post_sendgrid(pclient, sendgrid_batch(sg_bounce(address, epoch(NOW), "rt-b")))
    status = await verdict(pclient, address)
    etag = (await pclient.get(f"/v1/suppressions/{address}", headers=AUTH)).headers["etag"]
    assert etag == f'"{status["newest_evidence"]}"'
    first = await delete(
        pclient, address, params={"note": "ticket 42"}, headers={**AUTH, "If-Match": etag}
    )
    assert first.status_code == 200, first.text
    assert first.json()["suppressed"] is False
    await post_sendgrid(
        pclient, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "rt-c"))
    )
    await settle(pclient)
    before = await head(pclient)
    retry = await delete(
        pclient, address, params={"note": "ticket 42"}, headers={**AUTH, "If-Match": etag}
    )
    assert retry.status_code == 409, retry.text
    assert "changed since receipt" in retry.json()["detail"]
    plain = await delete(pclient, address, params={"note": "ticket 42"}, headers=AUTH)
    assert plain.status_code == 409, plain.text
    assert await head(pclient) == before
    assert (await verdict(pclient, address))["reason"] == "complaint"


async def test_a_release_with_the_evidence_the_operator_saw_is_refused_when_newer_arrived(
    pclient: Any,
) -> None:
    """Issue 18, finding N2 (a complaint arriving while the operator reads the page):
    even a release that names the complaint is refused when the evidence changed."""
    address = "reading@example.org"
    await post_sendgrid(pclient, sendgrid_batch(sg_bounce(address, epoch(NOW), "rd-b")))
    seen = (await verdict(pclient, address))["newest_evidence"]
    await post_sendgrid(
        pclient, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "rd-c"))
    )
    await settle(pclient)
    response = await delete(
        pclient,
        address,
        json={"note": "all clear", "also": ["complaint"], "expect": seen},
        headers=AUTH,
    )
    assert response.status_code == 409, response.text
    assert (await verdict(pclient, address))["reason"] == "complaint"
    bad = await delete(pclient, address, params={"note": "x"}, headers={**AUTH, "If-Match": "nope"})
    assert bad.status_code == 400, bad.text
