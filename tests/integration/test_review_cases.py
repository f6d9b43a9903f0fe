"""The deliverability review's cases (issue 12), end to end: real provider payloads,
signed as each provider signs, posted to the running app, and the verdict read back
over HTTP (`GET /v1/suppressions/{email}`, the timeline, `explain`, `check`).

One test (or one small parametrised group) per review finding, H1-H7, M1-M6, L1-L3;
each docstring names the item of issue 12 it covers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AUTH, settle
from tests.integration.doors import (
    DAY,
    MakeClient,
    accepted,
    epoch,
    explain_effects,
    flags,
    get,
    iso,
    mailgun_failed,
    policy,
    post_mailgun,
    post_postmark,
    post_resend,
    post_sendgrid,
    post_ses,
    post_smtp2go,
    postmark_change,
    release,
    resend,
    sendgrid_batch,
    ses_bounce,
    ses_mail,
    ses_subscription,
    sg_bounce,
    sg_event,
    smtp2go,
    smtp2go_hard,
    timeline,
    verdict,
)

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

MULTI = "names 2 recipients and not which one"


async def test_evidence_that_reaches_the_ledger_after_a_release_suppresses_again(
    app: Any,
) -> None:
    """Issue 12, item 1 (review H1): a release lifts only what was in the ledger when it
    was made. A SendGrid hard bounce at T-1h, a release at T, then a retried spam report
    dated T-2min arrives: suppressed by the complaint, and `explain` does not claim the
    release lifted a complaint it never saw."""
    now = datetime.now(UTC)
    late = "late@example.org"
    original = sendgrid_batch(sg_bounce(late, epoch(now - timedelta(hours=1)), "h1"))
    await post_sendgrid(app, original)
    assert (await verdict(app, late))["reason"] == "hard_bounce"

    released = await release(app, late, "mailbox recreated, ticket 4711")
    assert released["suppressed"] is False
    # SendGrid redelivers the original bounce, byte for byte: the same event, no change.
    assert (await post_sendgrid(app, original))["duplicate"] is True
    assert (await verdict(app, late))["suppressed"] is False

    complaint = sg_event("spamreport", late, epoch(now - timedelta(minutes=2)), "h1-spam")
    await post_sendgrid(app, sendgrid_batch(complaint))
    got = await verdict(app, late)
    assert (got["suppressed"], got["reason"]) == (True, "complaint")

    effects = await explain_effects(app, late)
    (released_step,) = [effect for effect in effects if effect.startswith("released by")]
    lifted = released_step.split("lifted", 1)[1].split(";", 1)[0]
    assert "hard_bounce" in lifted
    assert "complaint" not in lifted  # it was not in the ledger when the operator acted

    # The same for a new hard bounce dated before the release: new evidence, suppresses.
    other = "other.late@example.org"
    await post_sendgrid(app, sendgrid_batch(sg_bounce(other, epoch(now - DAY), "h1-b1")))
    await release(app, other, "user says the mailbox works again")
    retried = sg_bounce(other, epoch(now - timedelta(minutes=30)), "h1-b2")
    await post_sendgrid(app, sendgrid_batch(retried))
    assert (await verdict(app, other))["reason"] == "hard_bounce"


async def test_a_redelivery_of_the_released_bounce_changes_nothing(app: Any) -> None:
    """Issue 12, item 1 (review H1), the other side: the very same event delivered again
    after the release (byte-identical, or the same `sg_event_id` in another batch) is
    de-duplicated and does not suppress again. Guards a behaviour kept by the fix."""
    now = datetime.now(UTC)
    late = "late@example.org"
    original = sendgrid_batch(sg_bounce(late, epoch(now - timedelta(hours=1)), "h1-orig"))
    await post_sendgrid(app, original)
    await settle(app)
    await release(app, late, "mailbox recreated, ticket 4711")

    again = await post_sendgrid(app, original)  # re-signed, same bytes
    assert again["duplicate"] is True
    rebatched = sendgrid_batch(
        sg_event("delivered", "someone.else@example.org", epoch(now), "h1-other"),
        sg_bounce(late, epoch(now - timedelta(hours=1)), "h1-orig"),
    )
    assert (await post_sendgrid(app, rebatched))["duplicate"] is False
    got = await verdict(app, late)
    assert got["suppressed"] is False
    assert got["reason"] is None


async def test_a_resubscribe_lifts_only_the_unsubscribe_it_answers(app: Any) -> None:
    """Issue 12, item 2 (review H2): a SendGrid opt-out survives a Postmark customer
    suppressing and then reactivating the address (`Origin: Customer`), and an SES
    `resubscribe_all` for another contact list does not lift an SES unsubscribe."""
    optout = "optout@example.org"
    now = datetime.now(UTC)
    await post_sendgrid(
        app, sendgrid_batch(sg_event("unsubscribe", optout, epoch(now - 3 * DAY), "h2-unsub"))
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
        await post_postmark(app, record)
    got = await verdict(app, optout)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    reactivation = (await timeline(app, optout))[-1]
    assert (reactivation["source"], reactivation["ignored"]) == ("postmark", True)

    carol = "carol@example.org"
    await post_ses(
        app,
        ses_subscription([carol], "newsletter", unsubscribe_all=True, at=iso(now - 2 * DAY)),
        "h2-ses-unsub",
    )
    await post_ses(
        app,
        ses_subscription([carol], "product-updates", unsubscribe_all=False, at=iso(now - DAY)),
        "h2-ses-resub-other",
    )
    got = await verdict(app, carol)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    (_, other_list) = await timeline(app, carol)
    assert (other_list["raw_kind"], other_list["scope"]) == ("resubscribe_all", "product-updates")
    # The resubscribe that does answer it (same source, same list) lifts it.
    await post_ses(
        app,
        ses_subscription([carol], "newsletter", unsubscribe_all=False, at=iso(now)),
        "h2-ses-resub-same",
    )
    assert (await verdict(app, carol))["suppressed"] is False

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
        await post_postmark(app, record)
    assert (await verdict(app, dora))["reason"] == "unsubscribe"
    again = postmark_change(
        dora, iso(now - DAY), suppress=False, origin="Recipient", reason=None, stream="broadcast"
    )
    await post_postmark(app, again)
    assert (await verdict(app, dora))["suppressed"] is False


async def test_a_postmark_subscribe_bounce_never_lifts_an_opt_out(app: Any) -> None:
    """Issue 12, item 3 (review H3): a Postmark bounce `Type: Subscribe` (TypeCode 32) is
    not consent: ignored (kept, visible in the timeline), the SendGrid opt-out stands."""
    optout = "optout@example.org"
    now = datetime.now(UTC)
    await post_sendgrid(
        app, sendgrid_batch(sg_event("unsubscribe", optout, epoch(now - DAY), "h3-unsub"))
    )
    await post_postmark(
        app,
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
    got = await verdict(app, optout)
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")
    subscribe = (await timeline(app, optout))[-1]
    assert (subscribe["source"], subscribe["raw_kind"], subscribe["ignored"]) == (
        "postmark",
        "subscribe",
        True,
    )


async def test_resend_multi_recipient_events_neither_heal_nor_act_for_anyone(app: Any) -> None:
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
            app, resend("email.bounced", [a, b], iso(sent_at), dead, bounce=bounce), f"b{send}"
        )
        mixed = f"9c3e2b5a-1111-4444-8555-00000000000{send}"
        await post_resend(
            app, resend("email.bounced", [c, d], iso(sent_at), mixed, bounce=bounce), f"x{send}"
        )
        delivered_at = iso(sent_at + timedelta(minutes=1))
        await post_resend(app, resend("email.delivered", [c, d], delivered_at, mixed), f"d{send}")

    for address in (a, b):
        got = await verdict(app, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
            True,
            "soft_bounce_threshold",
            3,
        )
    for entry in await timeline(app, a):
        assert any(MULTI in flag for flag in flags(entry)), entry
        assert (entry["kind"], entry["bounce_class"]) == ("bounce", "soft")
    for address in (c, d):
        got = await verdict(app, address)
        assert (got["suppressed"], got["soft_bounces"]) == (False, 0)
        entries = await timeline(app, address)
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
        app,
        resend("email.complained", [complainer, innocent], iso(start), "9b3d4c5e-4444"),
        "complained",
    )
    for address in (innocent, complainer):
        got = await verdict(app, address)
        assert (got["suppressed"], got["reason"]) == (True, "complaint")
        (entry,) = await timeline(app, address)
        assert (entry["kind"], entry["ignored"]) == ("complaint", False)
        assert any(MULTI in flag for flag in flags(entry)), entry
    # an operator sees them counted: 6 bounces + 3 deliveries + 1 complaint, 2 addresses each
    metrics = (await app.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_ambiguous_events_total{source="resend"} 20.0' in metrics


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
    make_app: MakeClient,
) -> None:
    """Issue 12, item 5 (review H5): by default an `[[exclude]]` window applies to
    bounces and deliveries only, and never to a bounce saying the mailbox does not exist
    (5.1.1); the sender-side block in the window is still excluded."""
    async with make_app(policy=policy(EXCLUSION)) as client:
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
    make_app: MakeClient,
) -> None:
    """Issue 12, item 5 (review H5): `kinds = [...]` widens a window explicitly; what it
    does not name (here `unsubscribe`) still counts."""
    widened = EXCLUSION + 'kinds = ["bounce", "unknown_mailbox", "complaint"]\n'
    async with make_app(policy=policy(widened)) as client:
        await post_sendgrid(client, incident_batch())
        expected = {
            "complainer@example.org": False,
            "optout@example.org": True,
            "nouser@example.org": False,
            "good.user@example.org": False,
        }
        for address, suppressed in expected.items():
            assert (await verdict(client, address))["suppressed"] is suppressed, address


@pytest.mark.parametrize(
    ("provider", "address"),
    [
        pytest.param("smtp2go", "bob.dn@example.org", id="smtp2go-rcpt"),
        pytest.param("ses", "bob.ses@example.org", id="ses-emailAddress"),
        pytest.param("resend", "bob.rs@example.org", id="resend-to"),
    ],
)
async def test_a_display_name_address_is_suppressed_under_its_addr_spec(
    app: Any, provider: str, address: str
) -> None:
    """Issue 12, item 6 (review H6): `"Bob" <bob@…>` as the provider sends it is stored
    and found under the addr-spec alone."""
    named = f'"Bob Smith" <{address.upper()}>'
    if provider == "smtp2go":
        await post_smtp2go(app, smtp2go_hard(named, "2026-05-04T10:15:02Z", "h6-dn"))
    elif provider == "ses":
        await post_ses(app, ses_bounce(named, "2026-05-04T10:15:02.481Z"), "h6-ses")
    else:
        bounce = {"type": "Permanent", "subType": "General", "message": "hard bounce"}
        document = resend("email.bounced", [named], "2026-05-04T10:15:02.481Z", "h6", bounce=bounce)
        await post_resend(app, document, "msg_h6")
    got = await verdict(app, address)
    assert (got["email"], got["suppressed"], got["reason"]) == (address, True, "hard_bounce")
    assert (await verdict(app, address + "."))["suppressed"] is True  # trailing dot


async def test_one_canonical_address_at_ingest_status_check_and_operator_actions(
    app: Any,
) -> None:
    """Issue 12, item 6 (review H6): the exact SMTP2GO case (`rcpt: "Bob" <…>`), an IDN
    domain in both directions (A-label in, U-label asked, and the reverse), the check
    endpoint with display-name and unicode spellings, and operator actions."""
    await post_smtp2go(
        app, smtp2go_hard('"Bob" <bob.dn@example.org>', "2026-05-04T10:15:02Z", "h6-bob")
    )
    await post_smtp2go(
        app, smtp2go_hard("jose@xn--bcher-kva.example", "2026-05-04T10:16:00Z", "h6-jose")
    )
    await post_sendgrid(
        app, sendgrid_batch(sg_bounce("Maria@Bücher.example", IN_WINDOW, "h6-maria"))
    )
    for asked, canonical in [
        ("bob.dn@example.org", "bob.dn@example.org"),
        ("jose@bücher.example", "jose@xn--bcher-kva.example"),
        ("maria@xn--bcher-kva.example", "maria@xn--bcher-kva.example"),
        ("MARIA@BÜCHER.EXAMPLE.", "maria@xn--bcher-kva.example"),
    ]:
        got = await verdict(app, asked)
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
    response = await client_check(app, given)
    assert response["checked"] == 5
    assert sorted(hit["email"] for hit in response["suppressed"]) == sorted(given[:4])
    assert {hit["reason"] for hit in response["suppressed"]} == {"hard_bounce"}

    response = await app.put(
        "/v1/suppressions/ana@bücher.example", json={"note": "asked by phone"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    got = await verdict(app, "ana@xn--bcher-kva.example")
    assert (got["email"], got["reason"]) == ("ana@xn--bcher-kva.example", "manual")
    released = await release(app, "ANA@XN--BCHER-KVA.EXAMPLE.", "wrong address", ("manual",))
    assert released["suppressed"] is False
    assert (await verdict(app, "ana@bücher.example"))["suppressed"] is False


async def client_check(client: Any, emails: list[str]) -> dict[str, Any]:
    await settle(client)
    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    return await accepted(response)


async def test_mailgun_retries_given_up_as_temporary_count_as_soft_bounces(app: Any) -> None:
    """Issue 12, item 7 (review H7): `failed` with `severity: temporary, reason: old`
    (Mailgun gave up retrying, 498 No MX) is a soft bounce: four of them reach the
    default threshold."""
    noisy = "no.mx@example.invalid"
    start = datetime.now(UTC) - 10 * DAY
    for attempt in range(4):
        data = mailgun_failed(
            noisy,
            (start + attempt * DAY).timestamp(),
            f"Ol9dR3tR7iE5sE1xH2aU3{attempt}",
            severity="temporary",
            reason="old",
            **{
                "log-level": "warn",
                "delivery-status": {
                    "attempt-no": 8,
                    "code": 498,
                    "message": "No MX for example.invalid",
                    "description": "No MX for example.invalid",
                },
            },
        )
        await post_mailgun(app, data)
    got = await verdict(app, noisy)
    # all four count (the threshold, 3, was reached at the third)
    assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
        True,
        "soft_bounce_threshold",
        4,
    )
    assert {(e["kind"], e["bounce_class"]) for e in await timeline(app, noisy)} == {
        ("bounce", "soft")
    }


# == Suppresses someone who should not be, or loses evidence ============================


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
    app: Any, bounce_type: str, classification: str
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
    await post_sendgrid(app, sendgrid_batch(*events))
    got = await verdict(app, good)
    assert (got["suppressed"], got["soft_bounces"], got["events"]) == (False, 0, 3)
    assert [e["ignored"] for e in await timeline(app, good)] == [True, True, True]


async def test_ses_list_unsubscribe_naming_several_addresses_unsubscribes_each(app: Any) -> None:
    """Issue 12, item 10 (review M2): an SES `Subscription` unsubscribe whose
    `mail.destination` names two addresses is flagged as shared in the timeline; with
    one address (display name and all) it unsubscribes that address. Changed by issue 18
    (review 2, N3): the shared unsubscribe now unsubscribes both addresses (it used to
    unsubscribe neither), as a shared complaint suppresses every listed address."""
    now = datetime.now(UTC)
    shared = ['"Carol" <carol@example.org>', "cc.colleague@example.org"]
    await post_ses(
        app,
        ses_subscription(shared, "newsletter", unsubscribe_all=True, at=iso(now - DAY)),
        "m2-two",
    )
    for address in ("cc.colleague@example.org", "carol@example.org"):
        got = await verdict(app, address)
        assert (got["suppressed"], got["reason"]) == (True, "unsubscribe"), address
        (entry,) = await timeline(app, address)
        assert (entry["ignored"], entry["scope"]) == (False, "newsletter")
        assert any(MULTI in flag for flag in flags(entry)), entry

    await post_ses(
        app,
        ses_subscription(
            ['"Dave" <dave@example.org>'], "newsletter", unsubscribe_all=True, at=iso(now)
        ),
        "m2-one",
    )
    got = await verdict(app, "dave@example.org")
    assert (got["suppressed"], got["reason"]) == (True, "unsubscribe")


@pytest.mark.parametrize("feedback_type", ["auth-failure", "virus"])
async def test_ses_authentication_failure_and_virus_reports_are_not_complaints(
    app: Any, feedback_type: str
) -> None:
    """Issue 12, item 9 (review M3): an SES complaint with `complaintFeedbackType`
    auth-failure or virus is a report about the message, ignored like not-spam."""
    address = "reader@example.org"
    message = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": "2026-05-05T08:00:11.000Z",
            "feedbackId": "0102018f-aaaa-bbbb-cccc-000000000003-000000",
            "complaintSubType": None,
            "userAgent": "ExampleISP Feedback Loop",
            "complaintFeedbackType": feedback_type,
            "arrivalDate": "2026-05-05T07:59:50.000Z",
        },
        "mail": ses_mail([address], "0102018f-3333-4444-5555-666677778888-000000"),
    }
    await post_ses(app, message, f"m3-{feedback_type}")
    got = await verdict(app, address)
    assert (got["suppressed"], got["events"]) == (False, 1)
    (entry,) = await timeline(app, address)
    assert entry["ignored"] is True


async def test_sendgrid_drops_for_addresses_on_its_own_lists_are_imported(app: Any) -> None:
    """Issue 12, item 12 (review M4): SendGrid `dropped` is split by `reason`: an address
    on SendGrid's bounce, spam-report or unsubscribe list is evidence of that reason; a
    content drop stays ignored."""
    at = epoch(datetime.now(UTC) - DAY)
    cases = {
        "Bounced Address": ("dropped.bounce@example.org", "hard_bounce"),
        "Spam Reporting Address": ("dropped.spam@example.org", "complaint"),
        "Unsubscribed Address": ("dropped.unsub@example.org", "unsubscribe"),
        "Invalid SMTPAPI header": ("dropped.header@example.org", None),
    }
    events = [
        sg_event("dropped", address, at, f"m4-{n}", reason=reason)
        for n, (reason, (address, _)) in enumerate(cases.items())
    ]
    await post_sendgrid(app, sendgrid_batch(*events))
    for address, reason in cases.values():
        got = await verdict(app, address)
        assert (got["suppressed"], got["reason"]) == (reason is not None, reason), address


@pytest.mark.parametrize(
    "case",
    ["resend-email.suppressed", "resend-suppression.added", "resend-bounce", "ses-bounce"],
)
async def test_provider_side_suppressions_are_kept_as_provider_suppressed(
    app: Any, case: str
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
        await post_resend(app, document, "msg_m4_suppressed")
    elif case == "resend-suppression.added":
        document = {
            "type": "suppression.added",
            "created_at": at,
            "data": {"id": "sup_2xL1c8NqT4pWm6Rb0YsKd3HvF9e", "email": address, "created_at": at},
        }
        await post_resend(app, document, "msg_m4_added")
    elif case == "resend-bounce":
        bounce = {
            "type": "Permanent",
            "subType": "OnAccountSuppressionList",
            "message": "The address is on the suppression list.",
        }
        document = resend("email.bounced", [address], at, "m4-b", bounce=bounce)
        await post_resend(app, document, "msg_m4_bounce")
    else:
        await post_ses(app, ses_bounce(address, at, sub_type="OnAccountSuppressionList"), "m4-ses")
    got = await verdict(app, address)
    assert (got["suppressed"], got["reason"]) == (True, "provider_suppressed")


@pytest.mark.parametrize(
    ("policy_text", "suppressed"),
    [
        pytest.param("", False, id="default-ignored"),
        pytest.param('[providers.smtp2go]\nunsubscribe = "unsubscribe"\n', True, id="mapped"),
    ],
)
async def test_smtp2go_unsubscribe_is_ignored_by_default_and_one_policy_line_honours_it(
    make_app: MakeClient, policy_text: str, suppressed: bool
) -> None:
    """Issue 12, review M5 (kept, documented default): an SMTP2GO footer unsubscribe is
    kept but ignored unless the policy maps it. Guards a behaviour the issue keeps, so
    it passes on the code before the fix too."""
    bob = "bob@example.com"
    async with make_app(policy=policy(policy_text)) as client:
        await post_smtp2go(client, smtp2go("unsubscribe", bob, "2026-05-06T12:41:09Z", "m5"))
        got = await verdict(client, bob)
        assert got["suppressed"] is suppressed
        assert got["reason"] == ("unsubscribe" if suppressed else None)


async def test_an_event_naming_no_recipient_is_not_counted_as_understood(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12, item 13 (review M6): an SMTP2GO hard bounce whose recipient is in
    `email` instead of `rcpt` names no recipient the decoder knows: the response must
    not claim it understood one event, the log and /metrics must show it, and so must
    the receipt's audit view."""
    event = smtp2go_hard("lost@example.org", "2026-05-04T10:15:02Z", "m6")
    event["email"] = event.pop("rcpt")
    with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
        answer = await post_smtp2go(app, event)
    await settle(app)
    assert (await get(app, "/v1/suppressions/lost@example.org"))["suppressed"] is False
    assert (answer["events"], answer["unattributed"]) == (0, 1)
    assert any("name no recipient (bounce)" in r.getMessage() for r in caplog.records)
    metrics = (await app.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_unattributed_events_total{source="smtp2go"} 1.0' in metrics
    view = await get(app, f"/v1/audit/receipts/{answer['seq']}")
    assert view["reading"] == {"events": [], "unattributed": ["bounce"]}
    # a redelivery is acknowledged alike, and not counted a second time
    again = await post_smtp2go(app, event)
    assert (again["duplicate"], again["events"], again["unattributed"]) == (True, 0, 1)
    # a body that names its recipients does not mention unattributed events at all
    named = await post_smtp2go(
        app, smtp2go_hard("found@example.org", "2026-05-04T10:15:02Z", "m6b")
    )
    assert "unattributed" not in named
    metrics = (await app.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_unattributed_events_total{source="smtp2go"} 1.0' in metrics


# == Low ===============================================================================


@pytest.mark.parametrize(
    ("policy_text", "suppressed"),
    [
        pytest.param("", True, id="default"),
        pytest.param('[providers.mailgun]\ntag_unsubscribed = "ignore"\n', False, id="mapped"),
    ],
)
async def test_a_mailgun_tag_unsubscribe_keeps_its_tags_and_is_mappable(
    make_app: MakeClient, policy_text: str, suppressed: bool
) -> None:
    """Issue 12, item 14 (review L1): an `unsubscribed` carrying `tags` is its own raw
    kind (`tag_unsubscribed`) scoped to the tags: an unsubscribe by default, and a
    policy can map it alone without touching global Mailgun unsubscribes."""
    tagged, plain = "tagged@example.org", "plain@example.org"
    async with make_app(policy=policy(policy_text)) as client:
        for address, tags, event_id in [(tagged, ["newsletter"], "Us5r1"), (plain, [], "Us5r2")]:
            data = {
                "event": "unsubscribed",
                "id": event_id,
                "timestamp": 1778071269.05,
                "recipient": address,
                "tags": tags,
                "message": {"headers": {"message-id": f"{event_id}@mg.example.com"}},
            }
            await post_mailgun(client, data)
        got = await verdict(client, tagged)
        assert (got["suppressed"], got["reason"]) == (
            suppressed,
            "unsubscribe" if suppressed else None,
        )
        (entry,) = await timeline(client, tagged)
        assert (entry["raw_kind"], entry["scope"]) == ("tag_unsubscribed", "newsletter")
        assert (await verdict(client, plain))["reason"] == "unsubscribe"


@pytest.mark.parametrize(
    ("written", "event_time", "flag"),
    [
        pytest.param("Mon, 04 May 2026 10:15:02 +0000", "2026-05-04T10:15:02Z", None, id="rfc2822"),
        pytest.param("2026-05-04 10:15:02 UTC", "2026-05-04T10:15:02Z", None, id="utc-suffix"),
        pytest.param("04/05/2026 10h15", None, "no readable event time", id="unreadable"),
        pytest.param("", None, "no readable event time", id="missing"),
        pytest.param("9999-12-31T23:59:59Z", None, "after the receipt", id="far-future"),
    ],
)
async def test_event_times_are_read_or_visibly_replaced(
    app: Any, written: str, event_time: str | None, flag: str | None
) -> None:
    """Issue 12, item 15 (review L2): RFC 2822 and `… UTC` times are read; an unreadable
    or missing time, or one after the receipt (9999-12-31), becomes the receipt time
    with a flag in the timeline."""
    address = "when@example.org"
    await post_smtp2go(app, smtp2go_hard(address, written, "l2"))
    got = await verdict(app, address)
    (entry,) = await timeline(app, address)
    if event_time is not None:
        assert entry["event_time"] == event_time
        assert flags(entry) == []
    else:
        assert flag is not None
        assert entry["event_time"] == entry["received_at"]
        assert any(flag in text for text in flags(entry)), entry
    assert (got["suppressed"], got["since"]) == (True, entry["event_time"])


async def test_two_soft_bounces_exactly_one_window_apart_both_count(
    make_app: MakeClient,
) -> None:
    """Issue 12, item 16 (review L3): the soft-bounce window is inclusive: two soft
    bounces exactly `7d` apart count within a `7d` window."""
    rules = 'soft_bounce_threshold = 2\nsoft_bounce_window = "7d"\n'
    address = "full.box@example.net"
    async with make_app(policy=policy(rules)) as client:
        for n, at in enumerate(["2026-05-01T10:00:00Z", "2026-05-08T10:00:00Z"]):
            await post_smtp2go(
                client,
                smtp2go("bounce", address, at, f"l3-{n}", bounce="soft", message="452 4.2.2"),
            )
        got = await verdict(client, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
            True,
            "soft_bounce_threshold",
            2,
        )


async def test_a_legacy_sendgrid_bounce_without_type_is_hard_on_a_5xx_status(app: Any) -> None:
    """Issue 12, item 16 (review L3): a legacy SendGrid `bounce` without `type` and with
    status 5.1.1 is a hard bounce."""
    address = "legacy@example.org"
    event = sg_bounce(address, IN_WINDOW, "l3-legacy", type=None, bounce_classification=None)
    await post_sendgrid(app, sendgrid_batch(event))
    got = await verdict(app, address)
    assert (got["suppressed"], got["reason"]) == (True, "hard_bounce")


async def test_smtp2go_recipient_lists_are_split_with_an_address_parser(app: Any) -> None:
    """Issue 12, item 6 (review L3): SMTP2GO `recipients` holding a display name with a
    blank and a comma yields the two addresses, never the display name's words."""
    event = smtp2go("processed", "", "2026-05-06T09:00:00Z", "l3-split", srchost="198.51.100.9")
    del event["rcpt"]
    event["recipients"] = ['"Smith, Bob" <bob.list@example.org>, carol.list@example.org']
    await post_smtp2go(app, event)
    for address in ("bob.list@example.org", "carol.list@example.org"):
        (entry,) = await timeline(app, address)
        assert entry["raw_kind"] == "processed"
    for junk in ('"smith', 'bob"'):
        assert await timeline(app, junk) == []
