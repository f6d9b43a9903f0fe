"""A provider refusing to send because the address is on its own suppression list is
`provider_suppressed`, whichever provider says so — Resend (`email.suppressed`,
`suppression.added`, a bounce with subType OnAccountSuppressionList), SES
(OnAccountSuppressionList) and SMTP2GO (`reject`) — end to end.

Provenance: the first deliverability review (issue 12, M4 and L3) and the second (issue
18, N5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.doors import (
    post_resend,
    post_ses,
    post_smtp2go,
    resend,
    ses_bounce,
    smtp2go,
    suppressed_for,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL


@pytest.mark.parametrize(
    "case",
    ["resend-email.suppressed", "resend-suppression.added", "resend-bounce", "ses-bounce"],
)
async def test_provider_side_suppressions_are_kept_as_provider_suppressed(
    pclient: Any, case: str
) -> None:
    """Issue 12, items 12 and 16 (review M4, L3): "the provider refused: the address is
    on its list" is `provider_suppressed`, the same for Resend (`email.suppressed`,
    `suppression.added`, a bounce with subType OnAccountSuppressionList) and SES
    (OnAccountSuppressionList, no longer named `hard_bounce`)."""
    address = "listed@example.org"
    at = "2026-05-04T10:15:02.481Z"
    if case == "resend-email.suppressed":
        suppressed = {
            "type": "OnAccountSuppressionList",
            "message": "The address is on the suppression list.",
        }
        document = resend("email.suppressed", [address], at, "m4-s", suppressed=suppressed)
        await post_resend(pclient, document, "msg_m4_suppressed")
    elif case == "resend-suppression.added":
        document = {
            "type": "suppression.added",
            "created_at": at,
            "data": {"id": "sup_2xL1c8NqT4pWm6Rb0YsKd3HvF9e", "email": address, "created_at": at},
        }
        await post_resend(pclient, document, "msg_m4_added")
    elif case == "resend-bounce":
        bounce = {
            "type": "Permanent",
            "subType": "OnAccountSuppressionList",
            "message": "The address is on the suppression list.",
        }
        document = resend("email.bounced", [address], at, "m4-b", bounce=bounce)
        await post_resend(pclient, document, "msg_m4_bounce")
    else:
        await post_ses(
            pclient, ses_bounce(address, at, sub_type="OnAccountSuppressionList"), "m4-ses"
        )
    got = await verdict(pclient, address)
    assert (got["suppressed"], got["reason"]) == (True, "provider_suppressed")


async def test_an_smtp2go_reject_is_a_provider_side_suppression(pclient: Any) -> None:
    """Issue 18, finding N5: SMTP2GO `reject` ("you attempted to send to a recipient that
    has previously hard-bounced, made a spam complaint, or unsubscribed") is SMTP2GO's
    own suppression list refusing the send: `provider_suppressed` by default, like SES and
    Resend `OnAccountSuppressionList`."""
    at = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rejected = smtp2go(
        "reject", "rejected@example.org", at, "1rJ-rej", message="Recipient address suppressed"
    )
    await post_smtp2go(pclient, rejected)
    assert suppressed_for(await verdict(pclient, "rejected@example.org")) == (
        True,
        "provider_suppressed",
    )
    (entry,) = await timeline(pclient, "rejected@example.org")
    assert (entry["raw_kind"], entry["kind"]) == ("reject", "provider_suppressed")
