"""A recipient's timeline: every event in event-time order, with what the policy made of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from projections.recipients import parse_time
from tests.audit.helpers import (
    FORM,
    append_sync,
    as_form,
    as_json,
    cli,
    get_json,
    invoke,
    ok_json,
    post,
    receipt,
    smtp2go_event,
    write_policy,
)
from tests.conftest import settle

ALICE = "alice@example.com"

# Posted in this order; their event times say otherwise.
LATE_BOUNCE = smtp2go_event(
    "bounce", ALICE, "2026-05-04T12:00:00Z", "e-hard", bounce="hard", message="550 5.1.1 gone"
)
EARLY_DELIVERY = smtp2go_event("delivered", ALICE, "2026-05-04T09:00:00Z", "e-delivered")
MIDDLE_OPEN = smtp2go_event("open", "Alice@Example.com", "2026-05-04T10:00:00Z", "e-open")
SOFT = smtp2go_event(
    "bounce", ALICE, "2026-05-04T11:00:00Z", "e-soft", bounce="soft", message="452 4.2.2 full"
)
OTHER = smtp2go_event("bounce", "bob@example.com", "2026-05-04T10:30:00Z", "e-bob", bounce="hard")

EXPECTED = [
    # (receipt, raw_kind, kind, bounce_class, diagnostic, ignored)
    (2, "delivered", "delivered", None, None, False),
    (3, "open", "ignored", None, None, True),
    (4, "bounce", "bounce", "soft", "452 4.2.2 full", False),
    (1, "bounce", "bounce", "hard", "550 5.1.1 gone", False),
]


def check_timeline(entries: list[dict[str, Any]]) -> None:
    got = [
        (
            e["receipt"],
            e["raw_kind"],
            e["kind"],
            e["bounce_class"],
            e["diagnostic"],
            e["ignored"],
        )
        for e in entries
    ]
    assert got == EXPECTED
    assert [e["event_time"] for e in entries] == [
        "2026-05-04T09:00:00Z",
        "2026-05-04T10:00:00Z",
        "2026-05-04T11:00:00Z",
        "2026-05-04T12:00:00Z",
    ]
    assert {e["source"] for e in entries} == {"smtp2go"}
    assert all(e["received_at"] for e in entries)
    by_receipt = {e["receipt"]: e for e in entries}
    assert by_receipt[3]["ignored_reason"] == "smtp2go 'open' is ignored by the mapping"
    assert all(by_receipt[n]["ignored_reason"] is None for n in (1, 2, 4))
    assert by_receipt[1]["event_id"] == "e-hard"


async def test_http_timeline_is_in_event_time_order_whatever_the_arrival_order(
    client: Any,
) -> None:
    for fields in (LATE_BOUNCE, EARLY_DELIVERY, MIDDLE_OPEN, SOFT, OTHER):
        await post(client, as_json(fields))
    await settle(client)
    entries = await get_json(client, "/v1/audit/recipients/ALICE@example.com/events")
    check_timeline(entries)
    received = [parse_time(e["received_at"]) or 0 for e in entries]
    # arrival order (receipts 1..4) is not the timeline's order: the last event came first
    assert received[-1] < received[0]


async def test_http_timeline_of_an_unknown_address_is_empty(client: Any) -> None:
    await post(client, as_json(OTHER))
    await settle(client)
    assert await get_json(client, "/v1/audit/recipients/nobody@example.com/events") == []


def test_cli_timeline_json_matches_the_same_history(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(
        db,
        [
            receipt(as_json(LATE_BOUNCE), received_at="2026-05-04T12:00:05Z"),
            receipt(as_json(EARLY_DELIVERY), received_at="2026-05-04T12:00:06Z"),
            receipt(as_form(MIDDLE_OPEN), received_at="2026-05-04T12:00:07Z", ctype=FORM),
            receipt(as_json(SOFT), received_at="2026-05-04T12:00:08Z"),
            receipt(as_json(OTHER), received_at="2026-05-04T12:00:09Z"),
        ],
    )
    entries = ok_json(invoke("audit", "recipient", "  Alice@EXAMPLE.com ", "--db", db, "--json"))
    check_timeline(entries)
    # received times are the receipts' own, not the events'
    assert [e["received_at"] for e in entries] == [
        "2026-05-04T12:00:06Z",
        "2026-05-04T12:00:07Z",
        "2026-05-04T12:00:08Z",
        "2026-05-04T12:00:05Z",
    ]

    text = invoke("audit", "recipient", ALICE, "--db", db)
    assert text.exit_code == 0, text.output
    lines = [line for line in text.stdout.splitlines() if "2026-05-04T" in line]
    assert len(lines) == 4
    assert "ignored by the mapping" in lines[1]
    assert "550 5.1.1 gone" in lines[3]

    empty = invoke("audit", "recipient", "nobody@example.com", "--db", db)
    assert empty.exit_code == 0
    assert "no events for this address" in empty.stdout


EXCLUDING = """
[[exclude]]
source = "smtp2go"
start = 2026-05-04T10:30:00Z
end = 2026-05-04T11:30:00Z
note = "incident 42: our relay bounced everything"
"""


def test_cli_timeline_names_a_policy_exclusion(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    policy = write_policy(tmp_path / "policy.toml", EXCLUDING)
    append_sync(
        db,
        [
            receipt(as_json(SOFT), received_at="2026-05-04T11:00:01Z"),
            receipt(as_json(LATE_BOUNCE), received_at="2026-05-04T12:00:01Z"),
        ],
    )
    entries = ok_json(invoke("audit", "recipient", ALICE, "--db", db, "--policy", policy, "--json"))
    assert [(e["receipt"], e["kind"], e["ignored"]) for e in entries] == [
        (1, "ignored", True),
        (2, "bounce", False),
    ]
    assert entries[0]["raw_kind"] == "bounce"
    assert entries[0]["ignored_reason"] == (
        "excluded by policy: incident 42: our relay bounced everything"
    )
    assert entries[0]["diagnostic"] == "452 4.2.2 full"  # the evidence stays visible


async def test_http_timeline_names_a_policy_exclusion(
    tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    from projections import KNOWN_SOURCES, load_policy

    policy = load_policy(
        write_policy(tmp_path / "policy.toml", EXCLUDING), known_sources=KNOWN_SOURCES
    )
    async with make_client(policy=policy) as client:
        await post(client, as_json(SOFT))
        await post(client, as_form(LATE_BOUNCE), FORM)
        await settle(client)
        entries = await get_json(client, f"/v1/audit/recipients/{ALICE}/events")
    # receipt 1 records the policy this instance was started with (projections/policy_history.py)
    assert [(e["receipt"], e["kind"], e["ignored"]) for e in entries] == [
        (2, "ignored", True),
        (3, "bounce", False),
    ]
    assert entries[0]["ignored_reason"] == (
        "excluded by policy: incident 42: our relay bounced everything"
    )
    assert entries[1]["ignored_reason"] is None
    # the cli reads the same ledger the same way under the same policy
    cli_entries = ok_json(
        await cli(
            "audit",
            "recipient",
            ALICE,
            "--db",
            tmp_path / "ledger.db",
            "--policy",
            tmp_path / "policy.toml",
            "--json",
        )
    )
    assert cli_entries == entries
