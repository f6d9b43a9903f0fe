"""SMTP2GO's payloads through its door, end to end: a footer unsubscribe is kept but
ignored unless the policy maps it, an event naming no recipient the decoder knows is
counted as unattributed (never as understood), event times are read in the formats
SMTP2GO writes or visibly replaced, and a `recipients` list is split with an address
parser. The door itself (authentication, body formats, limits) is tests/api/
test_webhooks.py; the decoder's cases are tests/unit/test_smtp2go.py.

Provenance: the first deliverability review (issue 12, M5, M6, L2 and L3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import AUTH, settle
from tests.doors import flags, get, policy, post_smtp2go, smtp2go, smtp2go_hard, timeline, verdict

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL


@pytest.mark.parametrize(
    ("policy_text", "suppressed"),
    [
        pytest.param("", False, id="default-ignored"),
        pytest.param('[providers.smtp2go]\nunsubscribe = "unsubscribe"\n', True, id="mapped"),
    ],
)
async def test_smtp2go_unsubscribe_is_ignored_by_default_and_one_policy_line_honours_it(
    make_pclient: Callable[..., Any], policy_text: str, suppressed: bool
) -> None:
    """Issue 12, review M5 (kept, documented default): an SMTP2GO footer unsubscribe is
    kept but ignored unless the policy maps it. Guards a behaviour the issue keeps, so
    it passes on the code before the fix too."""
    bob = "bob@example.com"
    async with make_pclient(policy=policy(policy_text)) as client:
        await post_smtp2go(client, smtp2go("unsubscribe", bob, "2026-05-06T12:41:09Z", "m5"))
        got = await verdict(client, bob)
        assert got["suppressed"] is suppressed
        assert got["reason"] == ("unsubscribe" if suppressed else None)


async def test_an_event_naming_no_recipient_is_not_counted_as_understood(
    pclient: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12, item 13 (review M6): an SMTP2GO hard bounce whose recipient is in
    `email` instead of `rcpt` names no recipient the decoder knows: the response must
    not claim it understood one event, the log and /metrics must show it, and so must
    the receipt's audit view."""
    event = smtp2go_hard("lost@example.org", "2026-05-04T10:15:02Z", "m6")
    event["email"] = event.pop("rcpt")
    with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
        answer = await post_smtp2go(pclient, event)
    await settle(pclient)
    assert (await get(pclient, "/v1/suppressions/lost@example.org"))["suppressed"] is False
    assert (answer["events"], answer["unattributed"]) == (0, 1)
    assert any("name no recipient (bounce)" in r.getMessage() for r in caplog.records)
    metrics = (await pclient.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_unattributed_events_total{source="smtp2go"} 1.0' in metrics
    view = await get(pclient, f"/v1/audit/receipts/{answer['seq']}")
    assert view["reading"] == {"events": [], "unattributed": ["bounce"]}
    # a redelivery is acknowledged alike, and not counted a second time
    again = await post_smtp2go(pclient, event)
    assert (again["duplicate"], again["events"], again["unattributed"]) == (True, 0, 1)
    # a body that names its recipients does not mention unattributed events at all
    named = await post_smtp2go(
        pclient, smtp2go_hard("found@example.org", "2026-05-04T10:15:02Z", "m6b")
    )
    assert "unattributed" not in named
    metrics = (await pclient.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_unattributed_events_total{source="smtp2go"} 1.0' in metrics


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
    pclient: Any, written: str, event_time: str | None, flag: str | None
) -> None:
    """Issue 12, item 15 (review L2): RFC 2822 and `… UTC` times are read; an unreadable
    or missing time, or one after the receipt (9999-12-31), becomes the receipt time
    with a flag in the timeline."""
    address = "when@example.org"
    await post_smtp2go(pclient, smtp2go_hard(address, written, "l2"))
    got = await verdict(pclient, address)
    (entry,) = await timeline(pclient, address)
    if event_time is not None:
        assert entry["event_time"] == event_time
        assert flags(entry) == []
    else:
        assert flag is not None
        assert entry["event_time"] == entry["received_at"]
        assert any(flag in text for text in flags(entry)), entry
    assert (got["suppressed"], got["since"]) == (True, entry["event_time"])


async def test_smtp2go_recipient_lists_are_split_with_an_address_parser(pclient: Any) -> None:
    """Issue 12, item 6 (review L3): SMTP2GO `recipients` holding a display name with a
    blank and a comma yields the two addresses, never the display name's words."""
    event = smtp2go("processed", "", "2026-05-06T09:00:00Z", "l3-split", srchost="198.51.100.9")
    del event["rcpt"]
    event["recipients"] = ['"Smith, Bob" <bob.list@example.org>, carol.list@example.org']
    await post_smtp2go(pclient, event)
    for address in ("bob.list@example.org", "carol.list@example.org"):
        (entry,) = await timeline(pclient, address)
        assert entry["raw_kind"] == "processed"
    for junk in ('"smith', 'bob"'):
        assert await timeline(pclient, junk) == []
