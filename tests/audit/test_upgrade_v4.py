"""A ledger written by release 1ba9241 (schema 4, fact derivation 7) keeps working: opening
it drops the index of whole body digests (schema 5), a redelivered body is still found by
its digest, and the next rebuild lays the fact index out by (recipient, key) — with the
erasure it held still answering "suppressed".

tests/fixtures/ledgers/v4.db: v3.db opened by release 1ba9241, rebuilt, `v3@example.org`
erased (key ERASURE_KEY below, record 63), then vacuumed. Each test works on a copy; on
PostgreSQL, today's layout is taken back to schema 4 (the old index made again).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import NewReceipt, Store, schema
from ledger.postgres import PostgresStore
from ledger.sqlite import SQLiteStore
from projections import Projector, queries, rebuild
from projections.erasure_keys import ErasureKey
from projections.policy import DERIVATION_VERSION
from projections.rebuild import active_policy
from tests import pg
from tests.audit.helpers import rows

V4 = Path(__file__).parents[1] / "fixtures" / "ledgers" / "v4.db"
ERASURE_KEY = ErasureKey(b"upgrade-test-erasure-key-32-bytes-long")
ERASED = "v3@example.org"


def _indexes(db: Path) -> set[str]:
    return {str(row[0]) for row in rows(db, "SELECT name FROM sqlite_master WHERE type='index'")}


def test_the_v4_fixture_is_what_release_1ba9241_wrote() -> None:
    assert rows(V4, "SELECT version FROM bl_schema") == [(4,)]
    assert rows(V4, "SELECT derivation FROM projection_meta") == [("7",)]
    assert {"receipts_by_digest", "recipient_facts_key"} <= _indexes(V4)
    assert rows(V4, "SELECT COUNT(*), MAX(erased_by) FROM bodies") == [(63, 63)]


async def _redelivery_is_found(store: Store) -> None:
    """Every stored receipt's bytes, appended again by its source, are the same receipt."""
    for receipt in await store.read(limit=1000):
        if receipt.erased_by is not None or receipt.source in ("operator", "policy"):
            continue
        again = NewReceipt(
            source=receipt.source,
            received_at=receipt.received_at + 1,
            content_type=receipt.content_type,
            body=receipt.body,
        )
        result = await store.append(again)
        assert (result.seq, result.duplicate) == (receipt.seq, True)


async def test_a_sqlite_ledger_of_release_1ba9241_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    shutil.copyfile(V4, db)
    store = await SQLiteStore.open(db)
    try:
        async with store.reading() as tx:
            assert (await tx.fetch("SELECT version FROM bl_schema"))[0][0] == schema.VERSION == 5
        assert "receipts_by_digest" not in _indexes(db)
        assert "receipts_by_digest_prefix" in _indexes(db)
        assert await store.verify() == (63, None)
        await _redelivery_is_found(store)
        head = await store.last_seq()
        assert head == 63  # nothing appended: every one was a redelivery

        await rebuild(store, await active_policy(store))  # the derivation changed since
        assert "recipient_facts_key" not in _indexes(db)
        assert rows(db, "SELECT derivation FROM projection_meta") == [(DERIVATION_VERSION,)]
        projector = Projector(store)
        await projector.start()
        await projector.catch_up()
        status = await queries.status(store, ERASED, projector.policy_hash, ERASURE_KEY)
        assert (status.suppressed, status.reason, status.erased) == (
            True,
            "manual",
            ERASURE_KEY.subject(ERASED),
        )
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_ledger_of_schema_4_loses_the_digest_index(
    pg_fresh_url: Callable[[], str],
) -> None:
    url = pg_fresh_url()
    store = await PostgresStore.open(url)  # today's tables, then taken back to schema 4
    try:
        for n in range(3):
            body = f'{{"n": {n}}}'.encode()
            await store.append(
                NewReceipt(source="ses", received_at=n, content_type="application/json", body=body)
            )
    finally:
        await store.close()
    conn = await pg.connect(url)
    try:
        await conn.execute("CREATE INDEX receipts_by_digest ON receipts (body_sha256)")
        await conn.execute("UPDATE bl_schema SET version = 4")
    finally:
        await conn.close()
    store = await PostgresStore.open(url)
    try:
        async with store.reading() as tx:
            assert (await tx.fetch("SELECT version FROM bl_schema"))[0][0] == 5
            named = await tx.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'receipts'")
        assert "receipts_by_digest" not in {str(row[0]) for row in named}
        await _redelivery_is_found(store)
        assert await store.last_seq() == 3
        assert await store.verify() == (3, None)
    finally:
        await store.close()
