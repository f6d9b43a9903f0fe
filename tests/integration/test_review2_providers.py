"""Correctness review 2, the provider findings (issue 18: N3, N4, N5, N6, N8), end to end:
the review's payloads, signed as each provider signs, posted to the running app's doors,
and the verdict, timeline and explanation read back over HTTP.

One test (or one small parametrised group) per finding; each docstring names it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.doors import (
    DAY,
    MakeClient,
    epoch,
    explain_effects,
    flags,
    iso,
    mailgun_failed,
    policy,
    post_mailgun,
    post_postmark,
    post_resend,
    post_sendgrid,
    post_ses,
    post_smtp2go,
    resend,
    sendgrid_batch,
    ses_mail,
    sg_bounce,
    smtp2go,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

SHARED = "names 2 recipients and not which one it is about"
SENDER_SIDE = "sender-side refusal"


def suppressed_for(got: dict[str, Any]) -> tuple[bool, str | None]:
    return got["suppressed"], got["reason"]


# == N3: a complaint naming several recipients ==========================================


async def test_a_complaint_naming_several_recipients_suppresses_every_listed_address(
    app: Any,
) -> None:
    """Issue 18, finding N3: a Resend `email.complained` whose `data.to` names the
    complainer and a colleague suppresses both as `complaint` (Resend does not say who
    pressed "spam", and the complainer must not be mailed again), flagged as shared in
    the timeline and in `explain`; the same ambiguity through SES (`complainedRecipients`
    with two entries) gets the same answer, flagged alike."""
    at = iso(datetime.now(UTC) - timedelta(minutes=10))
    complaint = resend(
        "email.complained",
        ["complainer@example.org", "colleague@example.org"],
        at,
        "cpl-1",
        subject="Weekly digest",
    )
    answer = await post_resend(app, complaint, "msg_n3_complained")
    assert answer["events"] == 2

    ses_complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [
                {"emailAddress": "ses.complainer@example.org"},
                {"emailAddress": "ses.colleague@example.org"},
            ],
            "timestamp": at,
            "feedbackId": "fb-1",
            "complaintFeedbackType": "abuse",
        },
        "mail": ses_mail(["ses.complainer@example.org", "ses.colleague@example.org"], "m-cpl"),
    }
    await post_ses(app, ses_complaint, "n3-ses-complaint")

    for address in (
        "complainer@example.org",
        "colleague@example.org",
        "ses.complainer@example.org",
        "ses.colleague@example.org",
    ):
        assert suppressed_for(await verdict(app, address)) == (True, "complaint"), address
        (entry,) = await timeline(app, address)
        assert (entry["kind"], entry["ignored"]) == ("complaint", False), entry
        assert SHARED in flags(entry), entry
        assert (await explain_effects(app, address)) == ["suppressed: complaint"]


# == N4: Resend contact events ============================================================

AUDIENCE = "78261eea-8f8b-4381-83c6-79fa7120f1cf"


def contact_updated(email: str | None, at: str, *, unsubscribed: bool) -> dict[str, Any]:
    """Resend's `contact.updated`, as resend.com/docs/webhooks/contacts/updated shows it."""
    data: dict[str, Any] = {
        "id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
        "audience_id": AUDIENCE,
        "created_at": "2024-10-10T15:11:54.110Z",
        "updated_at": at,
        "email": email,
        "first_name": "Steve",
        "last_name": "W",
        "unsubscribed": unsubscribed,
    }
    return {
        "type": "contact.updated",
        "created_at": at,
        "data": {key: value for key, value in data.items() if value is not None},
    }


async def test_a_resend_contact_unsubscribed_from_an_audience_is_an_unsubscribe(
    make_app: MakeClient,
) -> None:
    """Issue 18, finding N4: `contact.updated` with `unsubscribed: true` unsubscribes
    `data.email`, scoped to `data.audience_id`. A later `unsubscribed: false` (Resend
    sends `contact.updated` for any change, with no previous value) is kept but ignored:
    not a resubscribe that lifts the opt-out, and it suppresses nobody by itself. A
    contact event naming no address is counted as unattributed, and the contact events'
    names may be mapped in a policy."""
    now = datetime.now(UTC)
    left, renamed = "left.broadcast@example.org", "renamed@example.org"
    async with make_app() as app:
        await post_resend(
            app,
            contact_updated(left, iso(now - timedelta(hours=2)), unsubscribed=True),
            "msg_n4_unsub",
        )
        await post_resend(
            app,
            contact_updated(left, iso(now - timedelta(hours=1)), unsubscribed=False),
            "msg_n4_edit",
        )
        await post_resend(
            app,
            contact_updated(renamed, iso(now - timedelta(hours=1)), unsubscribed=False),
            "msg_n4_other",
        )
        got = await verdict(app, left)
        assert (got["suppressed"], got["reason"], got["events"]) == (True, "unsubscribe", 2)
        unsubscribed, edited = await timeline(app, left)
        assert (unsubscribed["raw_kind"], unsubscribed["kind"]) == (
            "contact_unsubscribed",
            "unsubscribe",
        )
        assert unsubscribed["scope"] == AUDIENCE
        assert (edited["raw_kind"], edited["ignored"]) == ("contact_updated", True)
        got = await verdict(app, renamed)
        assert (got["suppressed"], got["events"]) == (False, 1)

        nameless = contact_updated(None, iso(now), unsubscribed=True)
        answer = await post_resend(app, nameless, "msg_n4_nameless")
        assert (answer["events"], answer["unattributed"]) == (0, 1)

    mapped_off = policy(
        '[providers.resend]\ncontact_updated = "ignore"\ncontact_unsubscribed = "ignore"\n'
    )
    async with make_app(policy=mapped_off) as app:
        assert (await verdict(app, left))["suppressed"] is False


# == N5: SMTP2GO reject ===================================================================


async def test_an_smtp2go_reject_is_a_provider_side_suppression(app: Any) -> None:
    """Issue 18, finding N5: SMTP2GO `reject` ("you attempted to send to a recipient that
    has previously hard-bounced, made a spam complaint, or unsubscribed") is SMTP2GO's
    own suppression list refusing the send: `provider_suppressed` by default, like SES and
    Resend `OnAccountSuppressionList`."""
    at = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rejected = smtp2go(
        "reject", "rejected@example.org", at, "1rJ-rej", message="Recipient address suppressed"
    )
    await post_smtp2go(app, rejected)
    assert suppressed_for(await verdict(app, "rejected@example.org")) == (
        True,
        "provider_suppressed",
    )
    (entry,) = await timeline(app, "rejected@example.org")
    assert (entry["raw_kind"], entry["kind"]) == ("reject", "provider_suppressed")


# == N6: "the mailbox does not exist", as each provider states it =======================


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
    make_app: MakeClient,
) -> None:
    """Issue 18, finding N6: inside an `[[exclude]]` window (default kinds) for SendGrid,
    SES and Postmark, the bounces whose *provider fields* say the mailbox does not exist
    — SendGrid `status` 5.1.1 / "Invalid Address" with the text "550 Requested action not
    taken: mailbox unavailable", SES `bounceSubType: NoEmail`, Postmark `Type:
    BadEmailAddress` — are all still suppressed `hard_bounce`; a bounce with the same text
    and no such field is excluded."""
    window, inside = exclusion_window(datetime.now(UTC))
    unavailable = "550 Requested action not taken: mailbox unavailable"
    async with make_app(policy=policy(window)) as app:
        await post_sendgrid(
            app,
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
        await post_ses(app, ses_no_email, "n6-ses")
        await post_postmark(
            app,
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
            assert suppressed_for(await verdict(app, address)) == (True, "hard_bounce"), address
        assert suppressed_for(await verdict(app, "incident@example.org")) == (False, None)
        (excluded,) = await timeline(app, "incident@example.org")
        assert "excluded by policy: incident" in excluded["ignored_reason"]


# == N8: sender-side refusals =============================================================

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
    app: Any,
) -> None:
    """Issue 18, finding N8: a Mailgun `failed`, `severity: permanent`, `reason:
    espblock`, "5.7.1 [CS01] Message rejected due to local policy" (Apple refusing the
    sender) is not suppressed — not even after three — and the timeline and `explain`
    show it as a sender-side refusal; the same refusal through SendGrid (classification
    Reputation) gets the same answer, for the same reason."""
    start = datetime.now(UTC) - 5 * DAY
    mailgun_user, sendgrid_user = "icloud.user@icloud.com", "icloud.user2@icloud.com"
    for n in range(3):
        await post_mailgun(app, espblock(mailgun_user, start + n * DAY, f"mg-esp-{n}"))
    delivered = {
        "RecordType": "Delivery",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": mailgun_user,
        "DeliveredAt": iso(start + 3 * DAY),
        "Details": "Test delivery webhook details",
        "MessageStream": "outbound",
        "ServerID": 23,
    }
    await post_postmark(app, delivered)
    events = [sendgrid_reputation(sendgrid_user, start + n * DAY, f"sg-rep-{n}") for n in range(3)]
    await post_sendgrid(app, sendgrid_batch(*events))

    for address in (mailgun_user, sendgrid_user):
        got = await verdict(app, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (False, None, 0)
        refusals = [e for e in await timeline(app, address) if e["raw_kind"] != "delivery"]
        assert len(refusals) == 3
        for entry in refusals:
            assert entry["ignored"] is True
            assert entry["ignored_reason"].startswith(SENDER_SIDE), entry
        effects = await explain_effects(app, address)
        assert all(f"ignored: {SENDER_SIDE}" in e for e in effects if "delivered" not in e)
    assert {e["raw_kind"] for e in await timeline(app, mailgun_user)} == {"espblock", "delivery"}
    assert {e["raw_kind"] for e in await timeline(app, sendgrid_user)} == {"bounce_reputation"}


async def test_a_policy_can_count_sender_side_refusals_as_soft_bounces(
    make_app: MakeClient,
) -> None:
    """Issue 18, finding N8: with `sender_side_bounces = "soft"` the same Mailgun espblock
    and SendGrid Reputation refusals count as soft bounces (never hard): one is counted,
    three reach the default threshold."""
    start = datetime.now(UTC) - 5 * DAY
    mailgun_user, sendgrid_user = "icloud.user@icloud.com", "icloud.user2@icloud.com"
    async with make_app(policy=policy('sender_side_bounces = "soft"\n')) as app:
        await post_mailgun(app, espblock(mailgun_user, start, "mg-soft-0"))
        await post_sendgrid(app, sendgrid_batch(sendgrid_reputation(sendgrid_user, start, "s0")))
        for address in (mailgun_user, sendgrid_user):
            got = await verdict(app, address)
            assert (got["suppressed"], got["soft_bounces"]) == (False, 1), address
            (entry,) = await timeline(app, address)
            assert (entry["kind"], entry["bounce_class"]) == ("bounce", "soft")
        for n in (1, 2):
            await post_mailgun(app, espblock(mailgun_user, start + n * DAY, f"mg-soft-{n}"))
            await post_sendgrid(
                app, sendgrid_batch(sendgrid_reputation(sendgrid_user, start + n * DAY, f"s{n}"))
            )
        for address in (mailgun_user, sendgrid_user):
            got = await verdict(app, address)
            assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
                True,
                "soft_bounce_threshold",
                3,
            )
