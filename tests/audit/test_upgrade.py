"""A ledger written by the previous release keeps working: opening it moves its bodies into
body storage (schema 2 -> 3), every body reads back byte for byte, the chain and its head
are unchanged, and the projection it held still answers.

tests/fixtures/ledgers/v2.db was written by release 19c8e05 (schema 2): the 60 provider
fixtures of tests/fixtures appended as receipts of their provider, one operator
suppression (`manual.person@example.org`), and the projection `rebuild` made of them.
Each test works on a copy. On PostgreSQL the same receipts are laid out as that release
laid them out (the body in the receipts table, schema version 2) and opened the same way.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt, Store, schema, upgrade
from ledger.bodies import MIN_SAMPLES
from ledger.chain import GENESIS, body_digest, link_batch
from ledger.postgres import PostgresStore
from ledger.sqlite import SQLiteStore
from projections import Projector, queries, rebuild
from projections.erasing import erase
from projections.erasure_keys import ErasureKey
from projections.rebuild import active_policy
from tests import pg
from tests.audit.helpers import cli, ok_json, rows

V2 = Path(__file__).parents[1] / "fixtures" / "ledgers" / "v2.db"
MANUAL = "manual.person@example.org"
# The fixture is read where it lies only through this: a test never writes to it.
READ_ONLY = f"{V2.as_uri()}?mode=ro"


def v2_receipts() -> list[tuple[Any, ...]]:
    """Every receipt of the fixture as schema 2 keeps it, body inside, in order."""
    connection = sqlite3.connect(READ_ONLY, uri=True)
    try:
        return connection.execute(
            "SELECT seq, received_at, source, content_type, headers, peer, body, body_sha256, "
            "chain_hash FROM receipts ORDER BY seq"
        ).fetchall()
    finally:
        connection.close()


async def assert_upgraded(store: Store) -> None:
    """Every receipt of the fixture, byte for byte, in a ledger laid out as schema 3."""
    old = v2_receipts()
    assert len(old) == 61
    read = await store.read(limit=1000)
    assert [
        (r.seq, r.received_at, r.source, r.content_type, r.peer, r.body, r.body_sha256)
        for r in read
    ] == [(o[0], o[1], o[2], o[3], o[5], bytes(o[6]), bytes(o[7])) for o in old]
    assert [r.chain_hash for r in read] == [bytes(o[8]) for o in old]
    assert await store.verify() == (61, None)
    stats = await store.body_stats()
    assert stats.bodies == 61
    assert stats.raw_bytes == sum(len(o[6]) for o in old)
    assert stats.stored_bytes < stats.raw_bytes
    async with store.reading() as tx:
        assert "body" not in await tx.columns("receipts")
        assert (await tx.fetch("SELECT version FROM bl_schema"))[0][0] == schema.VERSION


async def test_a_sqlite_ledger_of_the_previous_release_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    shutil.copyfile(V2, db)
    assert rows(db, "SELECT version FROM bl_schema") == [(2,)]
    store = await SQLiteStore.open(db)
    try:
        await assert_upgraded(store)
    finally:
        await store.close()
    # what the operator sees: intact; the fact derivation changed since (DERIVATION_VERSION
    # 6), so the projection is re-derived once (`serve` does it by itself at start), and
    # the verdict is the same
    verified = ok_json(await cli("verify", "--db", db, "--json"))
    assert verified["intact"] is True
    assert verified["head_seq"] == 61
    assert verified["head_chain_hash"] == bytes(v2_receipts()[-1][8]).hex()
    stale = await cli("status", MANUAL, "--db", db, "--json")
    assert stale.exit_code == 1
    assert "rebuild" in stale.output
    dry = await cli("rebuild", "--db", db, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "0 address(es) would change" in dry.stdout
    assert (await cli("rebuild", "--db", db)).exit_code == 0
    status = ok_json(await cli("status", MANUAL, "--db", db, "--json"))
    assert (status["suppressed"], status["reason"]) == (True, "manual")


async def test_an_upgrade_opened_twice_changes_nothing_more(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    shutil.copyfile(V2, db)
    for _ in range(2):
        store = await SQLiteStore.open(db)
        try:
            await assert_upgraded(store)
        finally:
            await store.close()


@pytest.mark.postgres
async def test_a_postgresql_ledger_of_the_previous_release_is_upgraded(
    pg_fresh_url: Callable[[], str],
) -> None:
    url = pg_fresh_url()
    await lay_out_v2(url)
    store = await PostgresStore.open(url)
    try:
        await assert_upgraded(store)
        # the upgraded ledger goes on: a new receipt continues the chain
        assert (await store.append(_new())).seq == 62
        assert await store.verify() == (62, None)
    finally:
        await store.close()


def _new() -> Any:
    return NewReceipt(source="ses", received_at=1, content_type="application/json", body=b"{}")


V2_COLUMNS = (
    "seq", "received_at", "source", "content_type", "headers", "peer", "body",
    "body_sha256", "chain_hash",
)  # fmt: skip


def generated_v2_rows(count: int) -> list[tuple[Any, ...]]:
    """`count` chained receipts of two sources, as schema 2 rows (V2_COLUMNS)."""
    batch = [
        NewReceipt(
            source=("smtp2go", "mailgun")[n % 2],
            received_at=1_780_000_000_000_000 + n,
            content_type="application/json",
            body=json.dumps(
                {"event": "bounce", "rcpt": f"p{n}@example.org", "id": f"e-{n}", "n": n % 13}
            ).encode(),
        )
        for n in range(count)
    ]
    linked = link_batch(batch, [body_digest(r.body) for r in batch], {}, 0, GENESIS)
    return [
        (*row[:6], body, *row[6:])
        for row, (_, _, body) in zip(linked.rows, linked.bodies, strict=True)
    ]


def sqlite_v2(db: Path, rows: list[tuple[Any, ...]]) -> None:
    """A SQLite ledger laid out as schema 2 holding `rows`: the fixture's file (the tables
    release 19c8e05 made), its receipts and projection replaced by these."""
    shutil.copyfile(V2, db)
    connection = sqlite3.connect(db)
    try:
        with connection:
            connection.execute("DROP TRIGGER receipts_refuse_delete")
            for table in ("receipts", "recipient_state", "suppressions", "projection_meta"):
                connection.execute(f"DELETE FROM {table}")
            marks = ", ".join("?" * len(V2_COLUMNS))
            connection.executemany(
                f"INSERT INTO receipts ({', '.join(V2_COLUMNS)}) VALUES ({marks})", rows
            )
    finally:
        connection.close()


async def test_a_long_ledger_is_moved_in_chunks_with_a_dictionary_per_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upgrade, "_CHUNK", 97)
    rows = generated_v2_rows(2 * MIN_SAMPLES + 50)
    db = tmp_path / "ledger.db"
    sqlite_v2(db, rows)
    store = await SQLiteStore.open(db)
    try:
        read = await store.read(limit=10_000)
        assert [(r.seq, r.source, r.body, r.chain_hash) for r in read] == [
            (row[0], row[2], row[6], row[8]) for row in rows
        ]
        assert await store.verify() == (len(rows), None)
        stats = await store.body_stats()
        assert (stats.bodies, stats.dictionaries) == (len(rows), 2)
        async with store.reading() as tx:
            named = await tx.fetch(
                "SELECT r.source, d.source FROM bodies b JOIN receipts r ON r.seq = b.seq "
                "LEFT JOIN body_dictionaries d ON d.id = b.dictionary"
            )
        # every body compressed with its own source's dictionary
        assert {(mine, trained) for mine, trained in named} == {
            ("smtp2go", "smtp2go"),
            ("mailgun", "mailgun"),
        }
    finally:
        await store.close()


async def lay_out_v2(url: str, old: list[tuple[Any, ...]] | None = None) -> None:
    """Receipts (the fixture's unless given) in a PostgreSQL schema as release 19c8e05
    laid them out: the body a column of `receipts`, no body storage, schema version 2,
    the head row on the last receipt."""
    store = await PostgresStore.open(url)  # today's tables, then taken back to schema 2
    await store.close()
    old = v2_receipts() if old is None else old
    conn = await pg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("DROP TABLE bodies, body_dictionaries")
            await conn.execute("ALTER TABLE receipts ADD COLUMN body BYTEA NOT NULL")
            await conn.copy_records_to_table(
                "receipts",
                records=[
                    (o[0], o[1], o[2], o[3], o[4], o[5], bytes(o[6]), bytes(o[7]), bytes(o[8]))
                    for o in old
                ],
                columns=V2_COLUMNS,
            )
            await conn.execute(
                "UPDATE ledger_head SET last_seq = $1, last_hash = $2", old[-1][0], old[-1][8]
            )
            await conn.execute("UPDATE bl_schema SET version = 2")
    finally:
        await conn.close()


def test_the_fixture_is_what_the_previous_release_wrote() -> None:
    """The fixture is schema 2, bodies inside the receipts, with a projection."""
    connection = sqlite3.connect(READ_ONLY, uri=True)
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(receipts)")}
        assert "body" in columns
        assert connection.execute("SELECT version FROM bl_schema").fetchone() == (2,)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert "bodies" not in tables
        assert "recipient_state" in tables
    finally:
        connection.close()


V3 = Path(__file__).parents[1] / "fixtures" / "ledgers" / "v3.db"


def test_the_v3_fixture_is_what_release_866dff8_wrote() -> None:
    """tests/fixtures/ledgers/v3.db: v2.db opened, projected and given one operator action
    by release 866dff8 (schema 3: bodies apart, no erasure column), then vacuumed."""
    assert rows(V3, "SELECT version FROM bl_schema") == [(3,)]
    assert "erased_by" not in {row[1] for row in rows(V3, "PRAGMA table_info(bodies)")}
    assert rows(V3, "SELECT COUNT(*) FROM bodies") == [(62,)]


async def test_a_ledger_of_release_866dff8_is_upgraded_and_can_erase(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    shutil.copyfile(V3, db)
    store = await SQLiteStore.open(db)
    try:
        async with store.reading() as tx:
            assert (await tx.fetch("SELECT version FROM bl_schema"))[0][0] == schema.VERSION
            assert "erased_by" in await tx.columns("bodies")
        assert await store.verify() == (62, None)
        await rebuild(store, await active_policy(store))  # the derivation changed since
        projector = Projector(store)
        await projector.start()
        await projector.catch_up()
        key = ErasureKey(b"upgrade-test-erasure-key-32-bytes")
        report = await erase(store, key, "v3@example.org", actor="t", note="DSAR", at=1)
        assert report.removed == [62]
        assert await store.verify() == (63, None)
        await projector.follow()
        status = await queries.status(store, "v3@example.org", projector.policy_hash, key)
        assert (status.suppressed, status.reason) == (True, "manual")
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_postgresql_ledger_of_schema_3_gets_the_erasure_column(
    pg_fresh_url: Callable[[], str],
) -> None:
    """The fixture's receipts laid out as release 866dff8 left them on PostgreSQL: bodies
    apart (upgraded from schema 2 by that layout's own step), no `erased_by`, version 3."""
    url = pg_fresh_url()
    await lay_out_v2(url)
    store = await PostgresStore.open(url)  # to schema 4, then taken back to 3
    await store.close()
    conn = await pg.connect(url)
    try:
        await conn.execute("ALTER TABLE bodies DROP COLUMN erased_by")
        await conn.execute("UPDATE bl_schema SET version = 3")
    finally:
        await conn.close()
    store = await PostgresStore.open(url)
    try:
        await assert_upgraded(store)
        async with store.reading() as tx:
            assert "erased_by" in await tx.columns("bodies")
    finally:
        await store.close()
