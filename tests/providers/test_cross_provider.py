"""One ledger, one suppression list, whatever the provider: an address's history posted
through several providers folds into one state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from projections.policy import parse_policy
from projections.providers import PROVIDERS
from tests.conftest import SECRET, settle
from tests.providers.helpers import state, webhook
from tests.providers.signing import (
    POSTMARK_PASSWORD,
    basic,
    dumps,
    fixture_json,
    mailgun_body,
    sendgrid_headers,
    sns_headers,
    sns_notification,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

ADDRESS = "Pat.Doe@Example.org"


async def post_sendgrid(client: Any, event: dict[str, Any]) -> None:
    body = json.dumps([event]).encode()
    response = await client.post(webhook("sendgrid"), content=body, headers=sendgrid_headers(body))
    assert response.status_code == 200, response.text


async def post_smtp2go(client: Any, event: dict[str, Any]) -> None:
    response = await client.post(
        webhook("smtp2go"), content=json.dumps(event).encode(), params={"token": SECRET}
    )
    assert response.status_code == 200, response.text


async def post_ses(client: Any, message: dict[str, Any], message_id: str) -> None:
    envelope = sns_notification(message, message_id=message_id)
    response = await client.post(
        webhook("ses"), content=dumps(envelope), headers=sns_headers(envelope)
    )
    assert response.status_code == 200, response.text


async def post_postmark(client: Any, record: dict[str, Any]) -> None:
    response = await client.post(
        webhook("postmark"),
        content=json.dumps(record).encode(),
        headers=basic("postmark", POSTMARK_PASSWORD),
    )
    assert response.status_code == 200, response.text


def ses_message(kind: str, address: str, at: str) -> dict[str, Any]:
    message = fixture_json("ses", "soft_bounce.json" if kind == "soft" else "delivery.json")
    if kind == "soft":
        message["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
        message["bounce"]["timestamp"] = at
    else:
        message["delivery"]["recipients"] = [address]
        message["delivery"]["timestamp"] = at
    return dict(message)


def postmark_soft(address: str, at: str) -> dict[str, Any]:
    record = fixture_json("postmark", "soft_bounce.json")
    record.update(Email=address, BouncedAt=at, ID=777)
    return dict(record)


def smtp2go_event(kind: str, address: str, at: str, event_id: str) -> dict[str, Any]:
    return {"event": kind, "id": event_id, "email_id": f"m-{event_id}", "time": at, "rcpt": address}


async def test_a_sendgrid_hard_bounce_last_year_suppresses_mail_now_sent_through_smtp2go(
    pclient: Any,
) -> None:
    await post_sendgrid(
        pclient,
        {
            "event": "bounce",
            "type": "bounce",
            "email": ADDRESS.upper(),
            "timestamp": 1746352502,  # 2025-05-04: a year before the rest
            "sg_event_id": "hard-last-year",
            "reason": "550 5.1.1 no such user",
        },
    )
    await post_smtp2go(pclient, smtp2go_event("delivered", ADDRESS, "2026-05-04T10:00:00Z", "d1"))
    await post_ses(
        pclient, ses_message("delivery", ADDRESS.lower(), "2026-05-05T10:00:00.000Z"), "s1"
    )
    await settle(pclient)
    got = await state(pclient, ADDRESS)
    assert got["suppressed"] is True
    assert got["reason"] == "hard_bounce"
    assert got["receipt"] == 1  # the SendGrid receipt is the evidence
    assert got["since"].startswith("2025-05-04")
    assert got["events"] == 3  # one history across three providers


async def test_soft_bounces_from_several_providers_count_toward_one_threshold(
    pclient: Any,
) -> None:
    await post_postmark(pclient, postmark_soft(ADDRESS, "2026-05-01T10:00:00Z"))
    await post_ses(pclient, ses_message("soft", ADDRESS, "2026-05-02T10:00:00.000Z"), "s-soft")
    await settle(pclient)
    two = await state(pclient, ADDRESS)
    assert two["suppressed"] is False
    assert two["soft_bounces"] == 2
    await post_smtp2go(
        pclient,
        {**smtp2go_event("bounce", ADDRESS, "2026-05-03T10:00:00Z", "b3"), "bounce": "soft"},
    )
    await settle(pclient)
    three = await state(pclient, ADDRESS)
    assert three["suppressed"] is True
    assert three["reason"] == "soft_bounce_threshold"
    assert three["soft_bounces"] == 3


async def test_a_delivery_through_one_provider_heals_soft_bounces_seen_through_others(
    pclient: Any,
) -> None:
    await post_postmark(pclient, postmark_soft(ADDRESS, "2026-05-01T10:00:00Z"))
    await post_ses(pclient, ses_message("soft", ADDRESS, "2026-05-02T10:00:00.000Z"), "s-soft")
    # Posted last, but it happened in between: history is read in event-time order.
    await post_smtp2go(pclient, smtp2go_event("delivered", ADDRESS, "2026-05-01T12:00:00Z", "d"))
    await settle(pclient)
    assert (await state(pclient, ADDRESS))["soft_bounces"] == 1


async def test_a_mailgun_retry_and_a_sendgrid_retry_count_once(
    make_pclient: Callable[..., Any],
) -> None:
    policy = parse_policy(b"soft_bounce_threshold = 2\n", known_sources=frozenset(PROVIDERS))
    data = dict(fixture_json("mailgun", "retries_exhausted.json")["event-data"])
    data["recipient"] = ADDRESS
    # `expired` (SendGrid gave up retrying) is soft; a `blocked` would be ignored by default.
    event = {"event": "bounce", "type": "expired", "email": ADDRESS, "timestamp": 1777906960}
    async with make_pclient(policy=policy) as client:
        for attempt in range(2):  # each retry is signed anew: different bytes, same event
            response = await client.post(webhook("mailgun"), content=mailgun_body(data))
            assert response.status_code == 200
            await post_sendgrid(client, {**event, "sg_event_id": "expired-1", "attempt": attempt})
        await settle(client)
        got = await state(client, ADDRESS)
        assert got["soft_bounces"] == 2  # one from each provider, not four
        assert got["reason"] == "soft_bounce_threshold"
