"""Time travel: what the service answered at a moment — the receipts received by then,
refolded from the ledger (issue 18, finding N10: evidence received later is left out,
whatever its event time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.audit.helpers import (
    FORM,
    append_sync,
    as_json,
    get_json,
    invoke,
    ok_json,
    post,
    receipt,
    smtp2go_event,
)
from tests.conftest import AUTH, fixture_bytes, settle
from tests.doors import epoch, get, post_sendgrid, sendgrid_batch, sg_bounce

NOBODY = "nobody@example.org"
HARD = fixture_bytes("smtp2go", "hard_bounce.form")  # event time 2026-05-04T10:15:02Z
# arrives after the hard bounce, happened before it
EARLIER_SOFT = as_json(
    smtp2go_event("bounce", NOBODY, "2026-05-03T09:00:00Z", "soft-early", bounce="soft")
)

# The ledger of the CLI test: the hard bounce received at 10:15:05, the earlier soft
# bounce received at 11:00 (its event time is a day before).
MOMENTS: list[tuple[str, bool, str | None, int, int]] = [
    # (as_of, suppressed, reason, soft bounces, events folded)
    ("2026-05-01T00:00:00Z", False, None, 0, 0),
    ("2026-05-03T09:00:00Z", False, None, 0, 0),  # the soft bounce happened, unknown yet
    ("2026-05-04T10:15:04Z", False, None, 0, 0),  # the hard bounce happened, not received
    ("2026-05-04T10:15:05Z", True, "hard_bounce", 0, 1),  # inclusive: received at that instant
    ("2026-05-04T12:59:59+02:00", True, "hard_bounce", 0, 1),  # 10:59:59 UTC
    ("2026-05-04T11:00:00Z", True, "hard_bounce", 1, 2),
    ("2026-06-01", True, "hard_bounce", 1, 2),  # a date alone is midnight UTC
    ("1780000000", True, "hard_bounce", 1, 2),  # epoch seconds (2026-05-28)
]


def check(
    status: dict[str, Any], suppressed: bool, reason: str | None, soft: int, events: int
) -> None:
    assert status["email"] == NOBODY
    assert (status["suppressed"], status["reason"]) == (suppressed, reason)
    assert (status["soft_bounces"], status["events"]) == (soft, events)
    if suppressed:
        assert status["since"] == "2026-05-04T10:15:02Z"
        assert status["receipt"] == 1
    else:
        assert status["since"] is None
        assert status["receipt"] is None


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_http_as_of_answers_what_the_ledger_had_received(client: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await post(client, HARD, FORM)
    await settle(client)
    between = datetime.now(UTC) + timedelta(microseconds=1)
    await post(client, EARLIER_SOFT)
    await settle(client)
    after = datetime.now(UTC) + timedelta(seconds=1)
    for moment, suppressed, soft, events in (
        (before, False, 0, 0),  # both events happened in May, neither was received
        (between, True, 0, 1),  # the soft bounce, dated before the hard one, not yet here
        (after, True, 1, 2),
    ):
        status = await get_json(client, "/v1/suppressions/Nobody@Example.org", as_of=stamp(moment))
        check(status, suppressed, "hard_bounce" if suppressed else None, soft, events)
    # without as_of: now
    check(await get_json(client, f"/v1/suppressions/{NOBODY}"), True, "hard_bounce", 1, 2)
    assert (await get_json(client, f"/v1/suppressions/{NOBODY}", as_of=""))["suppressed"] is True


async def test_http_as_of_refuses_a_bad_time(client: Any) -> None:
    await post(client, HARD, FORM)
    for bad in ("yesterday", "2026-02-30", "12345"):
        response = await client.get(
            f"/v1/suppressions/{NOBODY}", params={"as_of": bad}, headers=AUTH
        )
        assert response.status_code == 400, bad
        assert "as_of" in response.json()["detail"]


def test_cli_as_of_answers_what_the_ledger_had_received(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(
        db,
        [
            receipt(HARD, received_at="2026-05-04T10:15:05Z", ctype=FORM),
            receipt(EARLIER_SOFT, received_at="2026-05-04T11:00:00Z"),
        ],
    )
    for moment, suppressed, reason, soft, events in MOMENTS:
        check(
            ok_json(invoke("status", NOBODY, "--as-of", moment, "--db", db, "--json")),
            suppressed,
            reason,
            soft,
            events,
        )
    before = invoke("status", NOBODY, "--as-of", "2026-05-04T10:15:04Z", "--db", db)
    assert before.exit_code == 0
    assert f"{NOBODY}: not suppressed" in before.stdout
    after = invoke("status", NOBODY, "--as-of", "2026-05-04T11:00:00Z", "--db", db)
    assert "SUPPRESSED (hard_bounce) since 2026-05-04T10:15:02Z, evidence in receipt 1" in (
        after.stdout
    )


def test_cli_as_of_refuses_a_bad_time(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [receipt(HARD, received_at="2026-05-04T10:15:05Z", ctype=FORM)])
    result = invoke("status", NOBODY, "--as-of", "last week", "--db", db)
    assert result.exit_code == 2
    assert "--as-of" in result.stderr
    assert "not a time" in result.stderr


# End to end, on SQLite and on PostgreSQL: a bounce dated before a moment but received
# after it was not in the ledger then.


@pytest.mark.both_backends
async def test_as_of_answers_what_the_ledger_had_received_then(pclient: Any) -> None:
    """Issue 18, finding N10: a bounce dated two hours ago that arrives now was not in
    the ledger an hour ago: as of then, the address was not suppressed."""
    address = "asof@example.org"
    await post_sendgrid(
        pclient,
        sendgrid_batch(sg_bounce(address, epoch(datetime.now(UTC) - timedelta(hours=2)), "a1")),
    )
    await settle(pclient)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    then = await get(pclient, f"/v1/suppressions/{address}?as_of={hour_ago}")
    assert then["suppressed"] is False
    later = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = await get(pclient, f"/v1/suppressions/{address}?as_of={later}")
    assert (now["suppressed"], now["reason"]) == (True, "hard_bounce")
