"""Sender-side refusals through the doors, end to end: a provider refusing the *sender*
(IP reputation, a block list, content, volume: SendGrid `blocked` and Reputation-class
bounces, Mailgun `espblock`, "5.7.1 ... rejected due to local policy") says nothing about
the address: kept but ignored, never hard, shown as a sender-side refusal in the timeline
and `explain` — whichever provider reports it; `sender_side_bounces = "soft"` counts them
as soft bounces. The mapping cases are in each provider's file and tests/unit/test_policy.py.

Provenance: the first deliverability review (issue 12, M1) and the second (issue 18,
N8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.doors import (
    DAY,
    epoch,
    explain_effects,
    iso,
    mailgun_failed,
    policy,
    post_mailgun,
    post_postmark,
    post_sendgrid,
    sendgrid_batch,
    sg_bounce,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

SENDER_SIDE = "sender-side refusal"


@pytest.mark.parametrize(
    ("bounce_type", "classification"),
    [
        pytest.param("blocked", "Reputation", id="blocked-reputation"),
        pytest.param("bounce", "Reputation", id="bounce-reputation"),
        pytest.param("bounce", "Content", id="bounce-content"),
        pytest.param("bounce", "Frequency or Volume Too High", id="bounce-frequency"),
    ],
)
async def test_sendgrid_blocks_and_sender_side_bounces_do_not_count(
    pclient: Any, bounce_type: str, classification: str
) -> None:
    """Issue 12, item 8 (review M1): three SendGrid blocks (IP reputation, Spamhaus) or
    bounces classified as the sender's problem are kept but ignored by default."""
    good = "good.user@example.org"
    start = datetime.now(UTC) - 10 * DAY
    events = [
        sg_bounce(
            good,
            epoch(start + n * DAY),
            f"m1-{n}",
            type=bounce_type,
            bounce_classification=classification,
            reason="550 5.7.1 Service unavailable; client host [192.0.2.80] blocked using Spamhaus",
            status="5.7.1",
        )
        for n in range(3)
    ]
    await post_sendgrid(pclient, sendgrid_batch(*events))
    got = await verdict(pclient, good)
    assert (got["suppressed"], got["soft_bounces"], got["events"]) == (False, 0, 3)
    assert [e["ignored"] for e in await timeline(pclient, good)] == [True, True, True]


APPLE = (
    "5.7.1 [CS01] Message rejected due to local policy. "
    "Please visit https://support.apple.com/en-us/HT204137"
)


def espblock(recipient: str, at: datetime, event_id: str) -> dict[str, Any]:
    """The review's Mailgun permanent failure: Apple refusing the sender."""
    return mailgun_failed(
        recipient,
        at.timestamp() + 0.25,
        event_id,
        reason="espblock",
        **{"delivery-status": {"code": 554, "message": APPLE}},
    )


def sendgrid_reputation(recipient: str, at: datetime, event_id: str) -> dict[str, Any]:
    return sg_bounce(
        recipient,
        epoch(at),
        event_id,
        bounce_classification="Reputation",
        reason=f"554 {APPLE}",
        status="5.7.1",
    )


async def test_a_sender_side_refusal_is_not_a_dead_address_whatever_the_provider(
    pclient: Any,
) -> None:
    """Issue 18, finding N8: a Mailgun `failed`, `severity: permanent`, `reason:
    espblock`, "5.7.1 [CS01] Message rejected due to local policy" (Apple refusing the
    sender) is not suppressed — not even after three — and the timeline and `explain`
    show it as a sender-side refusal; the same refusal through SendGrid (classification
    Reputation) gets the same answer, for the same reason."""
    start = datetime.now(UTC) - 5 * DAY
    mailgun_user, sendgrid_user = "icloud.user@icloud.com", "icloud.user2@icloud.com"
    for n in range(3):
        await post_mailgun(pclient, espblock(mailgun_user, start + n * DAY, f"mg-esp-{n}"))
    delivered = {
        "RecordType": "Delivery",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": mailgun_user,
        "DeliveredAt": iso(start + 3 * DAY),
        "Details": "Test delivery webhook details",
        "MessageStream": "outbound",
        "ServerID": 23,
    }
    await post_postmark(pclient, delivered)
    events = [sendgrid_reputation(sendgrid_user, start + n * DAY, f"sg-rep-{n}") for n in range(3)]
    await post_sendgrid(pclient, sendgrid_batch(*events))

    for address in (mailgun_user, sendgrid_user):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (False, None, 0)
        refusals = [e for e in await timeline(pclient, address) if e["raw_kind"] != "delivery"]
        assert len(refusals) == 3
        for entry in refusals:
            assert entry["ignored"] is True
            assert entry["ignored_reason"].startswith(SENDER_SIDE), entry
        effects = await explain_effects(pclient, address)
        assert all(f"ignored: {SENDER_SIDE}" in e for e in effects if "delivered" not in e)
    assert {e["raw_kind"] for e in await timeline(pclient, mailgun_user)} == {
        "espblock",
        "delivery",
    }
    assert {e["raw_kind"] for e in await timeline(pclient, sendgrid_user)} == {"bounce_reputation"}


async def test_a_policy_can_count_sender_side_refusals_as_soft_bounces(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 18, finding N8: with `sender_side_bounces = "soft"` the same Mailgun espblock
    and SendGrid Reputation refusals count as soft bounces (never hard): one is counted,
    three reach the default threshold."""
    start = datetime.now(UTC) - 5 * DAY
    mailgun_user, sendgrid_user = "icloud.user@icloud.com", "icloud.user2@icloud.com"
    async with make_pclient(policy=policy('sender_side_bounces = "soft"\n')) as client:
        await post_mailgun(client, espblock(mailgun_user, start, "mg-soft-0"))
        await post_sendgrid(client, sendgrid_batch(sendgrid_reputation(sendgrid_user, start, "s0")))
        for address in (mailgun_user, sendgrid_user):
            got = await verdict(client, address)
            assert (got["suppressed"], got["soft_bounces"]) == (False, 1), address
            (entry,) = await timeline(client, address)
            assert (entry["kind"], entry["bounce_class"]) == ("bounce", "soft")
        for n in (1, 2):
            await post_mailgun(client, espblock(mailgun_user, start + n * DAY, f"mg-soft-{n}"))
            await post_sendgrid(
                client,
                sendgrid_batch(sendgrid_reputation(sendgrid_user, start + n * DAY, f"s{n}")),
            )
        for address in (mailgun_user, sendgrid_user):
            got = await verdict(client, address)
            assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
                True,
                "soft_bounce_threshold",
                3,
            )
