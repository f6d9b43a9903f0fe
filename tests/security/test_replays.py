"""Issue 13, items 3 and 4: a signed identity (SNS `MessageId`, Mailgun token) that comes
back with other bytes is a replay and refused (403) — durably, so also after a restart
or on another instance — while a byte-identical redelivery stays a 200 duplicate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt, open_store
from ledger.sqlite import SQLiteStore
from tests.conftest import settle
from tests.providers.helpers import state, stored, webhook
from tests.providers.signing import fixture_json, mailgun_signature, sns_headers, sns_notification

HARD = fixture_json("ses", "hard_bounce.json")


async def _post(client: Any, provider: str, body: bytes, headers: dict[str, str]) -> Any:
    return await client.post(webhook(provider), content=body, headers=headers)


async def test_an_sns_message_id_with_other_bytes_is_refused_even_after_a_restart(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    envelope = sns_notification(HARD)
    headers = sns_headers(envelope)
    body = json.dumps(envelope).encode()
    spaced = json.dumps(envelope, indent=2).encode()  # the same signed fields
    altered = json.dumps({**envelope, "UnsubscribeURL": "https://example.com/x"}).encode()
    async with make_pclient() as client:
        first = await _post(client, "ses", body, headers)
        assert first.status_code == 200, first.text
        again = await _post(client, "ses", body, headers)
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["seq"] == first.json()["seq"]
        for other in (spaced, altered):
            refused = await _post(client, "ses", other, headers)
            assert refused.status_code == 403, refused.text
            assert "replay" in refused.json()["detail"]
    async with make_pclient() as client:  # a restart: nothing in memory
        assert (await _post(client, "ses", spaced, headers)).status_code == 403
        redelivered = await _post(client, "ses", body, headers)
        assert redelivered.status_code == 200
        assert redelivered.json()["duplicate"] is True
        assert redelivered.json()["seq"] == first.json()["seq"]
    assert [r.body for r in await stored(db_path)] == [body]


async def test_a_mailgun_token_reused_with_other_data_is_refused_after_a_restart(
    make_pclient: Callable[..., Any], db_path: Path
) -> None:
    signature = mailgun_signature()
    data = dict(fixture_json("mailgun", "delivered.json")["event-data"])
    body = json.dumps({"signature": signature, "event-data": data}).encode()
    forged_data = dict(fixture_json("mailgun", "hard_bounce.json")["event-data"])
    forged_data["recipient"] = "victim@example.org"
    forged = json.dumps({"signature": signature, "event-data": forged_data}).encode()
    json_type = {"content-type": "application/json"}
    async with make_pclient() as client:
        first = await _post(client, "mailgun", body, json_type)
        assert first.status_code == 200, first.text
    async with make_pclient() as client:  # restarted (or another instance)
        replay = await _post(client, "mailgun", forged, json_type)
        assert replay.status_code == 403, replay.text
        again = await _post(client, "mailgun", body, json_type)
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["seq"] == first.json()["seq"]
        await settle(client)
        assert (await state(client, "victim@example.org"))["suppressed"] is False
    assert [r.body for r in await stored(db_path)] == [body]


def _new(body: bytes, identity: str | None, source: str = "mailgun") -> NewReceipt:
    return NewReceipt(
        source=source,
        received_at=1_777_000_000_000_000,
        content_type="application/json",
        body=body,
        identity=identity,
    )


async def _store_checks(open_it: Callable[[], Any]) -> None:
    store = await open_it()
    try:
        first = await store.append(_new(b"one", "tok-1"))
        assert (first.seq, first.duplicate, first.conflict) == (1, False, False)
        assert (await store.append(_new(b"one", "tok-1"))).duplicate is True
        other = await store.append(_new(b"two", "tok-1"))
        assert (other.seq, other.duplicate, other.conflict) == (1, True, True)
        # another source may use the same name; no identity: no check
        assert (await store.append(_new(b"two", "tok-1", source="ses"))).conflict is False
        assert (await store.append(_new(b"three", None))).conflict is False
        # one batch: the second body under a new identity is refused
        batch = await asyncio.gather(
            store.append(_new(b"four", "tok-2")), store.append(_new(b"five", "tok-2"))
        )
        assert [r.conflict for r in batch] == [False, True]
        assert batch[1].seq == batch[0].seq
    finally:
        await store.close()
    reopened = await open_it()  # durable: a fresh process sees it
    try:
        assert (await reopened.append(_new(b"six", "tok-1"))).conflict is True
        assert (await reopened.append(_new(b"one", "tok-1"))).seq == 1
        assert await reopened.last_seq() == 4
        assert (await reopened.verify())[1] is None
    finally:
        await reopened.close()


async def test_the_sqlite_store_keeps_identities_durably(db_path: Path) -> None:
    await _store_checks(lambda: SQLiteStore.open(db_path))


@pytest.mark.postgres
async def test_the_postgres_store_keeps_identities_durably(pg_url: str) -> None:
    await _store_checks(lambda: open_store(pg_url))
