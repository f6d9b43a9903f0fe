"""Mapping a body under a policy, and reading an address's state over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import Receipt, open_store
from projections import DEFAULT_POLICY, Mapper, Policy
from projections.events import NormalizedEvent
from projections.facts import Keyed, derive
from tests.conftest import AUTH

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECEIVED_AT = 1_800_000_000_000_000  # the receipt's own time, used when an event has none


def micros(text: str) -> int:
    """Microseconds since the epoch for an ISO-8601 time, computed independently."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - EPOCH) // timedelta(microseconds=1)


def receipt(
    source: str, body: bytes, *, headers: dict[str, str] | None = None, seq: int = 1
) -> Receipt:
    return Receipt(
        seq=seq,
        source=source,
        received_at=RECEIVED_AT,
        content_type="application/json",
        body=body,
        headers=headers or {},
        peer=None,
        body_sha256=b"",
        chain_hash=b"",
    )


def placed(source: str, body: bytes, *, headers: dict[str, str] | None = None) -> list[Keyed]:
    """The facts of a body with their de-duplication keys."""
    return derive(receipt(source, body, headers=headers))


def mapped(
    source: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> list[NormalizedEvent]:
    mapper = Mapper(policy)
    return [mapper.map_fact(keyed.fact) for keyed in placed(source, body, headers=headers)]


def only(events: list[NormalizedEvent]) -> NormalizedEvent:
    assert len(events) == 1, events
    return events[0]


async def state(client: Any, email: str) -> dict[str, Any]:
    response = await client.get(f"/v1/suppressions/{email}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def webhook(provider: str) -> str:
    return f"/v1/webhooks/{provider}/events"


async def stored(db_path: Path) -> list[Receipt]:
    """Every receipt in the ledger (read after the app has shut down)."""
    store = await open_store(db_path)
    try:
        return await store.read(0, 10_000)
    finally:
        await store.close()
