"""A policy's `[[exclude]]` windows, end to end: by default a window drops bounces and
deliveries only, never a complaint, an opt-out, or a bounce whose provider says the
mailbox does not exist (SendGrid 5.1.1 / Invalid Address, SES NoEmail, Postmark
BadEmailAddress); `kinds = [...]` widens it to what it names.

Provenance: the first deliverability review (issue 12, H5) and the second (issue 18,
N6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.doors import (
    DAY,
    epoch,
    iso,
    policy,
    post_postmark,
    post_sendgrid,
    post_ses,
    sendgrid_batch,
    ses_mail,
    sg_bounce,
    sg_event,
    suppressed_for,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

EXCLUSION = """
[[exclude]]
source = "sendgrid"
start = 2026-05-04T00:00:00Z
end = 2026-05-05T00:00:00Z
note = "our IP was on Spamhaus"
"""


IN_WINDOW = epoch(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))


def incident_batch() -> bytes:
    """Inside the exclusion window: a complaint, an opt-out, a real 5.1.1, and a block
    of the kind the window exists for (a hard bounce on the sender's reputation)."""
    return sendgrid_batch(
        sg_event("spamreport", "complainer@example.org", IN_WINDOW, "h5-spam"),
        sg_event("unsubscribe", "optout@example.org", IN_WINDOW, "h5-unsub"),
        sg_bounce("nouser@example.org", IN_WINDOW, "h5-511"),
        sg_bounce(
            "good.user@example.org",
            IN_WINDOW,
            "h5-571",
            bounce_classification=None,
            reason="550 5.7.1 Service unavailable; client host blocked using Spamhaus",
            status="5.7.1",
        ),
    )


async def test_an_exclusion_window_never_discards_complaints_opt_outs_or_unknown_users(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 12, item 5 (review H5): by default an `[[exclude]]` window applies to
    bounces and deliveries only, and never to a bounce saying the mailbox does not exist
    (5.1.1); the sender-side block in the window is still excluded."""
    async with make_pclient(policy=policy(EXCLUSION)) as client:
        await post_sendgrid(client, incident_batch())
        expected = {
            "complainer@example.org": (True, "complaint"),
            "optout@example.org": (True, "unsubscribe"),
            "nouser@example.org": (True, "hard_bounce"),
            "good.user@example.org": (False, None),
        }
        for address, want in expected.items():
            got = await verdict(client, address)
            assert (got["suppressed"], got["reason"]) == want, address
        (block,) = await timeline(client, "good.user@example.org")
        assert block["ignored"] is True
        assert "excluded by policy" in block["ignored_reason"]


async def test_an_exclusion_window_widens_only_to_the_kinds_it_names(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 12, item 5 (review H5): `kinds = [...]` widens a window explicitly; what it
    does not name (here `unsubscribe`) still counts."""
    widened = EXCLUSION + 'kinds = ["bounce", "unknown_mailbox", "complaint"]\n'
    async with make_pclient(policy=policy(widened)) as client:
        await post_sendgrid(client, incident_batch())
        expected = {
            "complainer@example.org": False,
            "optout@example.org": True,
            "nouser@example.org": False,
            "good.user@example.org": False,
        }
        for address, suppressed in expected.items():
            assert (await verdict(client, address))["suppressed"] is suppressed, address


def exclusion_window(now: datetime) -> tuple[str, datetime]:
    """An `[[exclude]]` window for SendGrid, SES and Postmark (default kinds), and a
    moment inside it."""
    start, end = now - 2 * DAY, now - DAY
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    text = "".join(
        f'[[exclude]]\nsource = "{source}"\nstart = {start.strftime(stamp)}\n'
        f'end = {end.strftime(stamp)}\nnote = "incident"\n'
        for source in ("sendgrid", "ses", "postmark")
    )
    return text, start + timedelta(hours=12)


async def test_an_exclusion_keeps_bounces_whose_provider_says_the_mailbox_does_not_exist(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 18, finding N6: inside an `[[exclude]]` window (default kinds) for SendGrid,
    SES and Postmark, the bounces whose *provider fields* say the mailbox does not exist
    — SendGrid `status` 5.1.1 / "Invalid Address" with the text "550 Requested action not
    taken: mailbox unavailable", SES `bounceSubType: NoEmail`, Postmark `Type:
    BadEmailAddress` — are all still suppressed `hard_bounce`; a bounce with the same text
    and no such field is excluded."""
    window, inside = exclusion_window(datetime.now(UTC))
    unavailable = "550 Requested action not taken: mailbox unavailable"
    async with make_pclient(policy=policy(window)) as client:
        await post_sendgrid(
            client,
            sendgrid_batch(
                sg_bounce(
                    "nouser@example.org",
                    epoch(inside),
                    "n6-1",
                    status="5.1.1",
                    reason=unavailable,
                    bounce_classification="Invalid Address",
                ),
                sg_bounce(
                    "incident@example.org",
                    epoch(inside),
                    "n6-2",
                    status="5.0.0",
                    reason=unavailable,
                    bounce_classification=None,
                ),
            ),
        )
        ses_no_email = {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "NoEmail",
                "bouncedRecipients": [
                    {
                        "emailAddress": "gone.ses@example.org",
                        "action": "failed",
                        "status": "5.0.0",
                        "diagnosticCode": f"smtp; {unavailable}",
                    }
                ],
                "timestamp": iso(inside),
            },
            "mail": ses_mail(["gone.ses@example.org"], "m-noemail"),
        }
        await post_ses(client, ses_no_email, "n6-ses")
        await post_postmark(
            client,
            {
                "RecordType": "Bounce",
                "ID": 5005,
                "Type": "BadEmailAddress",
                "TypeCode": 100000,
                "Email": "gone.pm@example.org",
                "BouncedAt": iso(inside),
                "MessageStream": "outbound",
                "Details": "Invalid email address",
            },
        )
        for address in ("nouser@example.org", "gone.ses@example.org", "gone.pm@example.org"):
            assert suppressed_for(await verdict(client, address)) == (True, "hard_bounce"), address
        assert suppressed_for(await verdict(client, "incident@example.org")) == (False, None)
        (excluded,) = await timeline(client, "incident@example.org")
        assert "excluded by policy: incident" in excluded["ignored_reason"]
