"""What lifts an opt-out, end to end: only the resubscribe that answers it — the same
source and the same list or message stream, and from the recipient (a Postmark
reactivation with `Origin: Recipient`); a Postmark `Subscribe` bounce is never consent.

Provenance: the first deliverability review (issue 12, H2 and H3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.doors import (
    DAY,
    epoch,
    iso,
    post_postmark,
    post_sendgrid,
    post_ses,
    postmark_change,
    sendgrid_batch,
    ses_subscription,
    sg_event,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL


async def test_a_resubscribe_lifts_only_the_unsubscribe_it_answers(pclient: Any) -> None:
    """Issue 12, item 2 (review H2): a SendGrid opt-out survives a Postmark customer
    suppressing and then reactivating the address (`Origin: Customer`), and an SES
    `resubscribe_all` for another contact list does not lift an SES unsubscribe."""
    optout = "optout@example.org"
    now = datetime.now(UTC)
    await post_sendgrid(
        pclient, sendgrid_batch(sg_event("unsubscribe", optout, epoch(now - 3 * DAY), "h2-unsub"))
    )
    for suppress, reason, when in [
        (True, "ManualSuppression", now - 2 * DAY),
        (False, None, now - DAY),
    ]:
        record = postmark_change(
            optout,
            iso(when),
            suppress=suppress,
            origin="Customer",
            reason=reason,
            stream="outbound",
        )
        await post_postmark(pclient, record)
    got = await verdict(pclient, optout)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    reactivation = (await timeline(pclient, optout))[-1]
    assert (reactivation["source"], reactivation["ignored"]) == ("postmark", True)

    carol = "carol@example.org"
    await post_ses(
        pclient,
        ses_subscription([carol], "newsletter", unsubscribe_all=True, at=iso(now - 2 * DAY)),
        "h2-ses-unsub",
    )
    await post_ses(
        pclient,
        ses_subscription([carol], "product-updates", unsubscribe_all=False, at=iso(now - DAY)),
        "h2-ses-resub-other",
    )
    got = await verdict(pclient, carol)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    (_, other_list) = await timeline(pclient, carol)
    assert (other_list["raw_kind"], other_list["scope"]) == ("resubscribe_all", "product-updates")
    # The resubscribe that does answer it (same source, same list) lifts it.
    await post_ses(
        pclient,
        ses_subscription([carol], "newsletter", unsubscribe_all=False, at=iso(now)),
        "h2-ses-resub-same",
    )
    assert (await verdict(pclient, carol))["suppressed"] is False

    # A Postmark reactivation is the recipient's consent only with `Origin: Recipient`,
    # and then lifts only the unsubscribe from the same message stream.
    dora = "dora@example.org"
    for suppress, reason, stream, when in [
        (True, "ManualSuppression", "broadcast", now - 3 * DAY),
        (False, None, "outbound", now - 2 * DAY),
    ]:
        record = postmark_change(
            dora, iso(when), suppress=suppress, origin="Recipient", reason=reason, stream=stream
        )
        await post_postmark(pclient, record)
    assert (await verdict(pclient, dora))["reason"] == "unsubscribe"
    again = postmark_change(
        dora, iso(now - DAY), suppress=False, origin="Recipient", reason=None, stream="broadcast"
    )
    await post_postmark(pclient, again)
    assert (await verdict(pclient, dora))["suppressed"] is False


async def test_a_postmark_subscribe_bounce_never_lifts_an_opt_out(pclient: Any) -> None:
    """Issue 12, item 3 (review H3): a Postmark bounce `Type: Subscribe` (TypeCode 32) is
    not consent: ignored (kept, visible in the timeline), the SendGrid opt-out stands."""
    optout = "optout@example.org"
    now = datetime.now(UTC)
    await post_sendgrid(
        pclient, sendgrid_batch(sg_event("unsubscribe", optout, epoch(now - DAY), "h3-unsub"))
    )
    await post_postmark(
        pclient,
        {
            "RecordType": "Bounce",
            "ID": 4323372036854775810,
            "Type": "Subscribe",
            "TypeCode": 32,
            "Name": "Subscribe request",
            "MessageID": "2f6c2a3e-8b1d-4a5e-9c7f-0d1e2f3a4b5d",
            "ServerID": 23,
            "MessageStream": "outbound",
            "Description": "Subscribe request from the recipient.",
            "Details": "subscribe",
            "Email": optout,
            "From": "noreply@example.com",
            "BouncedAt": iso(now),
            "Inactive": False,
            "CanActivate": True,
            "Subject": "subscribe",
            "Metadata": {},
        },
    )
    got = await verdict(pclient, optout)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    subscribe = (await timeline(pclient, optout))[-1]
    assert (subscribe["source"], subscribe["raw_kind"], subscribe["ignored"]) == (
        "postmark",
        "subscribe",
        True,
    )
