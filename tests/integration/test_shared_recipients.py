"""Events that name several recipients and not which one they are about (a Resend
message to `[a, b]`, an SES complaint or list unsubscribe with two addresses), end to
end: flagged as shared in the timeline and `explain`; a shared complaint or unsubscribe
acts for every listed address (the complainer must not be mailed again), a shared bounce
counts as soft and not against an address its message was delivered to, and a shared
delivery heals nobody.

Provenance: the first deliverability review (issue 12, H4 and M2) as the second (issue
18, N3 and N7) changed it; each docstring names its finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AUTH
from tests.doors import (
    DAY,
    explain_effects,
    flags,
    iso,
    post_resend,
    post_ses,
    resend,
    ses_mail,
    ses_subscription,
    suppressed_for,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

# the flag a shared event carries in the timeline, and its start
SHARED = "names 2 recipients and not which one it is about"
MULTI = "names 2 recipients and not which one"


async def test_resend_multi_recipient_events_neither_heal_nor_act_for_anyone(pclient: Any) -> None:
    """Issue 12, items 4 and 11 (review H4), as issue 18 (review 2, N3 and N7) changed it.
    Three mails to `[a, b]` that only bounced (no copy delivered): each bounce counts as
    soft for both addresses (Resend does not say which bounced), and the threshold of 3
    suppresses both. Three more mails to `[c, d]`, each with a bounce and a delivery of
    the same message: the delivery proves one copy arrived, and a shared bounce does not
    count against an address its message was delivered to — neither is suppressed (N7:
    the co-recipient of a dead address is no longer suppressed; the dead one is caught by
    its own mail). A delivery naming both heals nobody. A complaint with two `to`
    addresses suppresses both, flagged as shared (N3: it used to suppress neither, so
    the complainer kept being mailed)."""
    a, b = "a.multi@example.org", "b.multi@example.org"
    c, d = "c.multi@example.org", "d.multi@example.org"
    start = datetime.now(UTC) - 10 * DAY
    bounce = {"type": "Permanent", "subType": "General", "message": "One recipient bounced."}
    for send in range(3):
        sent_at = start + send * DAY
        dead = f"9c3e2b5a-0000-4444-8555-00000000000{send}"
        await post_resend(
            pclient, resend("email.bounced", [a, b], iso(sent_at), dead, bounce=bounce), f"b{send}"
        )
        mixed = f"9c3e2b5a-1111-4444-8555-00000000000{send}"
        await post_resend(
            pclient, resend("email.bounced", [c, d], iso(sent_at), mixed, bounce=bounce), f"x{send}"
        )
        delivered_at = iso(sent_at + timedelta(minutes=1))
        await post_resend(
            pclient, resend("email.delivered", [c, d], delivered_at, mixed), f"d{send}"
        )

    for address in (a, b):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
            True,
            "soft_bounce_threshold",
            3,
        )
    for entry in await timeline(pclient, a):
        assert any(MULTI in flag for flag in flags(entry)), entry
        assert (entry["kind"], entry["bounce_class"]) == ("bounce", "soft")
    for address in (c, d):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["soft_bounces"]) == (False, 0)
        entries = await timeline(pclient, address)
        assert [(e["raw_kind"], e["ignored"]) for e in entries] == [
            ("bounced", True),
            ("delivered", True),
        ] * 3
        for entry in entries:
            assert any(MULTI in flag for flag in flags(entry)), entry
            if entry["raw_kind"] == "bounced":
                assert "delivered to this address" in entry["ignored_reason"]

    innocent, complainer = "innocent@example.org", "complainer@example.org"
    await post_resend(
        pclient,
        resend("email.complained", [complainer, innocent], iso(start), "9b3d4c5e-4444"),
        "complained",
    )
    for address in (innocent, complainer):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["reason"]) == (True, "complaint")
        (entry,) = await timeline(pclient, address)
        assert (entry["kind"], entry["ignored"]) == ("complaint", False)
        assert any(MULTI in flag for flag in flags(entry)), entry
    # an operator sees them counted: 6 bounces + 3 deliveries + 1 complaint, 2 addresses each
    metrics = (await pclient.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_ambiguous_events_total{source="resend"} 20.0' in metrics


async def test_the_co_recipient_of_a_dead_address_is_not_suppressed(pclient: Any) -> None:
    """Issue 18, finding N7 (the review's case): three Resend mails to [h4a, h4b], each
    with a Permanent bounce and a delivery naming both. The delivery proves a copy
    arrived, so the shared bounces count against neither, whichever arrives first."""
    a, b = "h4a@example.org", "h4b@example.org"
    start = datetime.now(UTC) - timedelta(days=5)
    bounce = {"type": "Permanent", "subType": "General", "message": "550 5.1.1 no such user"}
    for send in range(3):
        sent = start + timedelta(days=send)
        message = f"n7-{send}"
        bounced = resend("email.bounced", [a, b], iso(sent), message, bounce=bounce)
        delivered = resend("email.delivered", [a, b], iso(sent + timedelta(minutes=1)), message)
        # the delivery's webhook first for one mail, last for the others
        order = [(delivered, f"d{send}"), (bounced, f"b{send}")]
        for document, svix in order if send == 1 else order[::-1]:
            await post_resend(pclient, document, f"msg_n7_{svix}")
    for address in (a, b):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["soft_bounces"]) == (False, 0), address
        effects = await explain_effects(pclient, address)
        assert sum("delivered to this address" in effect for effect in effects) == 3


async def test_a_complaint_naming_several_recipients_suppresses_every_listed_address(
    pclient: Any,
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
    answer = await post_resend(pclient, complaint, "msg_n3_complained")
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
    await post_ses(pclient, ses_complaint, "n3-ses-complaint")

    for address in (
        "complainer@example.org",
        "colleague@example.org",
        "ses.complainer@example.org",
        "ses.colleague@example.org",
    ):
        assert suppressed_for(await verdict(pclient, address)) == (True, "complaint"), address
        (entry,) = await timeline(pclient, address)
        assert (entry["kind"], entry["ignored"]) == ("complaint", False), entry
        assert SHARED in flags(entry), entry
        assert (await explain_effects(pclient, address)) == ["suppressed: complaint"]


async def test_ses_list_unsubscribe_naming_several_addresses_unsubscribes_each(
    pclient: Any,
) -> None:
    """Issue 12, item 10 (review M2): an SES `Subscription` unsubscribe whose
    `mail.destination` names two addresses is flagged as shared in the timeline; with
    one address (display name and all) it unsubscribes that address. Changed by issue 18
    (review 2, N3): the shared unsubscribe now unsubscribes both addresses (it used to
    unsubscribe neither), as a shared complaint suppresses every listed address."""
    now = datetime.now(UTC)
    shared = ['"Carol" <carol@example.org>', "cc.colleague@example.org"]
    await post_ses(
        pclient,
        ses_subscription(shared, "newsletter", unsubscribe_all=True, at=iso(now - DAY)),
        "m2-two",
    )
    for address in ("cc.colleague@example.org", "carol@example.org"):
        got = await verdict(pclient, address)
        assert (got["suppressed"], got["reason"]) == (True, "unsubscribe"), address
        (entry,) = await timeline(pclient, address)
        assert (entry["ignored"], entry["scope"]) == (False, "newsletter")
        assert any(MULTI in flag for flag in flags(entry)), entry

    await post_ses(
        pclient,
        ses_subscription(
            ['"Dave" <dave@example.org>'], "newsletter", unsubscribe_all=True, at=iso(now)
        ),
        "m2-one",
    )
    got = await verdict(pclient, "dave@example.org")
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
