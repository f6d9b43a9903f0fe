"""The second deliverability review's cases (issue 18) about releases, as-of answers and
a projection that falls behind, end to end: payloads signed as each provider signs,
posted to the running app, verdicts read back over HTTP. The provider findings are in
test_review2_providers.py, the address findings in test_review2_addresses.py.

Each docstring names the finding of `../shared/reference/correctness_review_2.md`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import load_settings
from ledger import StoreUnavailable
from projections import DEFAULT_POLICY
from tests.conftest import AUTH, settle
from tests.integration.doors import (
    epoch,
    explain_effects,
    get,
    iso,
    post_resend,
    post_sendgrid,
    resend,
    sendgrid_batch,
    sg_bounce,
    sg_event,
    verdict,
)
from tests.reliability.helpers import provider_environment

pytestmark = pytest.mark.both_backends

NOW = datetime.now(UTC)


async def delete(client: Any, email: str, **kwargs: Any) -> Any:
    return await client.request("DELETE", f"/v1/suppressions/{email}", **kwargs)


async def head(client: Any) -> int:
    """The ledger's last receipt."""
    return int((await settle(client))["receipts"])


# -- N2: a release lifts only what the operator saw and named ---------------------------


async def test_a_release_lifts_bounces_and_names_the_opt_outs_it_leaves(app: Any) -> None:
    """Issue 18, finding N2 (first case): an unsubscribe hidden behind a hard bounce is
    shown by every view, and a bounce clean-up release lifts the bounce only; the
    unsubscribe is lifted when it is named."""
    address = "mixed@example.org"
    await post_sendgrid(
        app,
        sendgrid_batch(
            sg_event("unsubscribe", address, epoch(NOW - timedelta(days=30)), "mx-u"),
            sg_bounce(address, epoch(NOW - timedelta(hours=1)), "mx-b"),
        ),
    )
    got = await verdict(app, address)
    assert (got["reason"], [c["reason"] for c in got["causes"]]) == (
        "hard_bounce",
        ["hard_bounce", "unsubscribe"],
    )
    listed = await get(app, f"/v1/suppressions?reason=hard_bounce&provider=sendgrid&q={address}")
    assert listed["items"][0]["reasons"] == ["hard_bounce", "unsubscribe"]
    checked = (
        await app.post("/v1/suppressions/check", json={"emails": [address]}, headers=AUTH)
    ).json()
    assert checked["suppressed"][0]["reasons"] == ["hard_bounce", "unsubscribe"]

    response = await delete(
        app, address, params={"note": "Spamhaus incident clean-up"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["suppressed"], after["reason"]) == (True, "unsubscribe")
    assert any(e.startswith("released by ops") and "lifted hard_bounce" in e
               for e in await explain_effects(app, address))  # fmt: skip

    response = await delete(
        app, address, json={"note": "re-subscribed by phone", "also": ["unsubscribe"]}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False


async def test_a_release_records_the_causes_it_lifts_and_the_evidence_it_saw(
    app: Any,
) -> None:
    """Issue 18, finding N2: the release's receipt names the causes it lifts (here the
    bounces, not the complaint shown as the strongest reason) and the evidence it saw;
    the fold reads both from the ledger, so the complaint stays."""
    address = "complained.and.bounced@example.org"
    await post_sendgrid(
        app,
        sendgrid_batch(
            sg_event("spamreport", address, epoch(NOW - timedelta(hours=2)), "cb-c"),
            sg_bounce(address, epoch(NOW - timedelta(hours=1)), "cb-b"),
        ),
    )
    assert (await verdict(app, address))["reason"] == "complaint"
    response = await delete(app, address, params={"note": "bounce clean-up"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [c["reason"] for c in response.json()["causes"]] == ["complaint"]
    receipts = (await get(app, "/v1/audit/receipts?source=operator"))["items"]
    body = (await get(app, f"/v1/audit/receipts/{receipts[-1]['seq']}"))["body_text"]
    assert '"lifts":["hard_bounce","soft_bounce_threshold"]' in body
    assert '"seen":' in body


async def test_a_release_of_unnamed_opt_outs_is_refused_and_records_nothing(app: Any) -> None:
    """Issue 18, finding N2: an address suppressed only by a complaint is not released
    by a plain release: 409, and nothing is appended to the ledger."""
    address = "only.complaint@example.org"
    await post_sendgrid(app, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "oc-1")))
    before = await head(app)
    response = await delete(app, address, params={"note": "customer asked"}, headers=AUTH)
    assert response.status_code == 409, response.text
    body = response.json()
    assert "complaint" in body["detail"]
    assert body["current"]["reason"] == "complaint"
    assert await head(app) == before
    assert (await verdict(app, address))["reason"] == "complaint"


async def test_a_retried_release_is_not_a_second_broader_release(app: Any) -> None:
    """Issue 18, finding N2 (the retried DELETE): the retry carries the precondition the
    first one did; a complaint that arrived in between makes it 409, and without the
    precondition the complaint is not lifted either (it is not named)."""
    address = "retry@example.org"
    await post_sendgrid(app, sendgrid_batch(sg_bounce(address, epoch(NOW), "rt-b")))
    status = await verdict(app, address)
    etag = (await app.get(f"/v1/suppressions/{address}", headers=AUTH)).headers["etag"]
    assert etag == f'"{status["newest_evidence"]}"'
    first = await delete(
        app, address, params={"note": "ticket 42"}, headers={**AUTH, "If-Match": etag}
    )
    assert first.status_code == 200, first.text
    assert first.json()["suppressed"] is False
    await post_sendgrid(app, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "rt-c")))
    await settle(app)
    before = await head(app)
    retry = await delete(
        app, address, params={"note": "ticket 42"}, headers={**AUTH, "If-Match": etag}
    )
    assert retry.status_code == 409, retry.text
    assert "changed since receipt" in retry.json()["detail"]
    plain = await delete(app, address, params={"note": "ticket 42"}, headers=AUTH)
    assert plain.status_code == 409, plain.text
    assert await head(app) == before
    assert (await verdict(app, address))["reason"] == "complaint"


async def test_a_release_with_the_evidence_the_operator_saw_is_refused_when_newer_arrived(
    app: Any,
) -> None:
    """Issue 18, finding N2 (a complaint arriving while the operator reads the page):
    even a release that names the complaint is refused when the evidence changed."""
    address = "reading@example.org"
    await post_sendgrid(app, sendgrid_batch(sg_bounce(address, epoch(NOW), "rd-b")))
    seen = (await verdict(app, address))["newest_evidence"]
    await post_sendgrid(app, sendgrid_batch(sg_event("spamreport", address, epoch(NOW), "rd-c")))
    await settle(app)
    response = await delete(
        app,
        address,
        json={"note": "all clear", "also": ["complaint"], "expect": seen},
        headers=AUTH,
    )
    assert response.status_code == 409, response.text
    assert (await verdict(app, address))["reason"] == "complaint"
    bad = await delete(app, address, params={"note": "x"}, headers={**AUTH, "If-Match": "nope"})
    assert bad.status_code == 400, bad.text


# -- N7: a shared bounce does not count where its message was delivered --------------------


async def test_the_co_recipient_of_a_dead_address_is_not_suppressed(app: Any) -> None:
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
            await post_resend(app, document, f"msg_n7_{svix}")
    for address in (a, b):
        got = await verdict(app, address)
        assert (got["suppressed"], got["soft_bounces"]) == (False, 0), address
        effects = await explain_effects(app, address)
        assert sum("delivered to this address" in effect for effect in effects) == 3


# -- N9: a release lifts what was in the ledger, whatever its event time -----------------


async def test_a_release_lifts_evidence_dated_after_its_own_clock(app: Any) -> None:
    """Issue 18, finding N9: a provider clock three minutes ahead must not defeat a
    release of the evidence already in the ledger."""
    address = "skew@example.org"
    ahead = epoch(datetime.now(UTC) + timedelta(minutes=3))
    await post_sendgrid(app, sendgrid_batch(sg_bounce(address, ahead, "skew-1")))
    await settle(app)
    response = await delete(app, address, params={"note": "address works"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False
    effects = await explain_effects(app, address)
    assert effects[-1].startswith("released by ops")
    assert "lifted hard_bounce" in effects[-1]


# -- N10: as-of answers what the ledger knew then ----------------------------------------


async def test_as_of_answers_what_the_ledger_had_received_then(app: Any) -> None:
    """Issue 18, finding N10: a bounce dated two hours ago that arrives now was not in
    the ledger an hour ago: as of then, the address was not suppressed."""
    address = "asof@example.org"
    await post_sendgrid(
        app, sendgrid_batch(sg_bounce(address, epoch(datetime.now(UTC) - timedelta(hours=2)), "a1"))
    )
    await settle(app)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    then = await get(app, f"/v1/suppressions/{address}?as_of={hour_ago}")
    assert then["suppressed"] is False
    later = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = await get(app, f"/v1/suppressions/{address}?as_of={later}")
    assert (now["suppressed"], now["reason"]) == (True, "hard_bounce")


# -- N1: lookups refuse to answer from a projection that is behind ------------------------


async def test_lookups_answer_503_while_the_projection_is_behind(
    db_path: Path, tmp_path: Path
) -> None:
    """Issue 18, finding N1: when no projector folds (here: every step of this instance's
    projector fails as if the database refused it) and the oldest unprojected receipt is
    older than the bound, lookups answer 503, /readyz fails naming the cause, and the
    metric says so; folding again ends it."""
    settings = load_settings(
        {
            **provider_environment(tmp_path),
            "BOUNCELEDGER_DB": str(db_path),
            "BOUNCELEDGER_MAX_PROJECTION_LAG": "0.3",
        }
    )
    async with AsyncTestClient(app=create_app(settings, DEFAULT_POLICY)) as client:
        projector = client.app.state.runtime.projector
        folding = projector.step

        async def failing(limit: int = 1000) -> int:
            raise StoreUnavailable("ledger write failed: the disk is full")

        projector.step = failing
        await post_sendgrid(
            client, sendgrid_batch(sg_event("spamreport", "late@example.org", epoch(NOW), "l1"))
        )
        deadline = time.monotonic() + 10
        while lookup := await client.get("/v1/suppressions/late@example.org", headers=AUTH):
            if lookup.status_code != 200:
                break
            assert lookup.json()["suppressed"] is False  # not folded yet: never a verdict
            assert time.monotonic() < deadline, "the service never noticed it was behind"
            await asyncio.sleep(0.1)
        assert lookup.status_code == 503, lookup.text
        assert "behind" in lookup.json()["detail"]
        assert lookup.headers["retry-after"]
        checked = await client.post(
            "/v1/suppressions/check", json={"emails": ["late@example.org"]}, headers=AUTH
        )
        assert checked.status_code == 503
        ready = (await client.get("/readyz", headers=AUTH)).json()
        assert ready["ready"] is False
        assert (
            "the projector here is paused: ledger write failed: the disk is full"
            in (ready["problems"]["projector_caught_up"])
        )
        assert (
            "bounceledger_projection_behind 1.0"
            in (await client.get("/metrics", headers=AUTH)).text
        )
        projector.step = folding
        deadline = time.monotonic() + 10
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the service never caught up"
            await asyncio.sleep(0.1)
        got = await verdict(client, "late@example.org")
        assert (got["suppressed"], got["reason"]) == (True, "complaint")
