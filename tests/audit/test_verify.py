"""Verify: the chain is recomputed, and a record changed behind the store's back is named."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audit.helpers import (
    FORM,
    append_sync,
    as_json,
    cli,
    invoke,
    ok_json,
    post,
    receipt,
    smtp2go_event,
)
from tests.conftest import AUTH, fixture_bytes, settle
from tests.stored import stored_bodies


def _ledger(db: Path, count: int = 5) -> list[bytes]:
    bodies = [
        as_json(smtp2go_event("delivered", f"u{n}@example.com", "2026-05-04T10:00:00Z", f"v{n}"))
        for n in range(count)
    ]
    append_sync(db, [receipt(body, received_at="2026-05-04T10:00:01Z") for body in bodies])
    return bodies


def tamper(
    db: Path, sql: str, params: tuple[Any, ...] = (), trigger: str | None = "update"
) -> None:
    """Change a stored record with the stdlib sqlite3 module, around the store (dropping
    the append-only trigger `receipts_refuse_<trigger>` first, when named)."""
    connection = sqlite3.connect(db)
    try:
        if trigger is not None:
            connection.execute(f"DROP TRIGGER receipts_refuse_{trigger}")
        changed = connection.execute(sql, params).rowcount
        connection.commit()
    finally:
        connection.close()
    assert changed == 1


def replace_body(db: Path, seq: int, body: bytes) -> None:
    """Store `body`, uncompressed, as receipt `seq`'s body (body storage has no trigger)."""
    tamper(
        db,
        "UPDATE bodies SET codec = 0, dictionary = NULL, data = ? WHERE seq = ?",
        (body, seq),
        trigger=None,
    )


def flip_one_byte(db: Path, seq: int, index: int = 10) -> None:
    changed = bytearray(stored_bodies(db)[seq])
    changed[index] ^= 0x01
    replace_body(db, seq, bytes(changed))


def assert_broken_at(db: Path, seq: int) -> None:
    text = invoke("verify", "--db", db)
    assert text.exit_code == 1
    assert f"ledger BROKEN at receipt {seq}: {seq - 1} receipts before it verified" in text.stdout
    as_json = invoke("verify", "--db", db, "--json")
    assert as_json.exit_code == 1
    answer = ok_json_any(as_json)  # the head fields come after these (issue 13)
    assert {key: answer[key] for key in ("intact", "receipts", "first_broken")} == {
        "intact": False,
        "receipts": seq - 1,
        "first_broken": seq,
    }


def ok_json_any(result: Any) -> Any:
    """The JSON a command printed, whatever its exit status."""
    return json.loads(result.stdout)


def test_verify_an_intact_ledger(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 5)
    result = invoke("verify", "--db", db)
    assert result.exit_code == 0
    assert "ledger intact: 5 receipts, chain verified" in result.stdout
    raw = sum(len(body) for body in stored_bodies(db).values())
    assert f"bodies: 5 stored, {raw} bytes raw in " in result.stdout
    answer = ok_json(invoke("verify", "--db", db, "--json"))
    assert answer.items() >= {"intact": True, "receipts": 5, "first_broken": None}.items()
    stats = answer["bodies"]
    assert (stats["bodies"], stats["raw_bytes"], stats["dictionaries"]) == (5, raw, 0)
    assert 0 < stats["stored_bytes"] < raw


def test_verify_an_empty_ledger_and_a_missing_one(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [])
    assert ok_json(invoke("verify", "--db", db, "--json"))["receipts"] == 0
    missing = invoke("verify", "--db", tmp_path / "nothing-here.db")
    assert missing.exit_code == 1
    assert "no ledger at" in missing.stderr


def test_the_store_refuses_update_and_delete_while_its_triggers_stand(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 2)
    connection = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE receipts SET source = 'ses' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM receipts WHERE seq = 2")
    finally:
        connection.close()
    assert invoke("verify", "--db", db).exit_code == 0


def test_one_changed_body_byte_is_named(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 5)
    flip_one_byte(db, 3)
    assert_broken_at(db, 3)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("source", "ses"),
        ("received_at", 1),
        ("content_type", "text/plain"),
        ("headers", '{"user-agent":"forged"}'),
        ("peer", "203.0.113.66"),
    ],
)
def test_one_changed_field_is_named(tmp_path: Path, column: str, value: Any) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 4)
    tamper(db, f"UPDATE receipts SET {column} = ? WHERE seq = 2", (value,))
    assert_broken_at(db, 2)


def test_a_changed_body_with_a_matching_digest_is_still_named(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 4)
    forged = b'{"event":"bounce","bounce":"hard","rcpt":"u3@example.com"}'
    replace_body(db, 4, forged)
    digest = hashlib.sha256(forged).digest()
    tamper(db, "UPDATE receipts SET body_sha256 = ? WHERE seq = 4", (digest,))
    assert_broken_at(db, 4)


def test_a_changed_chain_hash_is_named(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 3)
    tamper(db, "UPDATE receipts SET chain_hash = ? WHERE seq = 1", (bytes(32),))
    assert_broken_at(db, 1)


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db, 5)
    tamper(db, "DELETE FROM receipts WHERE seq = 3", trigger="delete")
    assert_broken_at(db, 3)


async def test_a_tampered_body_no_longer_matches_its_digest_over_http(
    make_client: Callable[..., Any], db_path: Path
) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    async with make_client() as client:
        await post(client, body, FORM)
        await settle(client)
    assert (await cli("verify", "--db", db_path)).exit_code == 0
    flip_one_byte(db_path, 1, index=len(body) - 1)
    result = await cli("verify", "--db", db_path, "--json")
    assert result.exit_code == 1
    assert ok_json_any(result)["first_broken"] == 1
    async with make_client() as client:
        raw = await client.get("/v1/audit/receipts/1", params={"raw": "true"}, headers=AUTH)
    assert raw.status_code == 200
    assert raw.content != body
    assert raw.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()
    assert hashlib.sha256(raw.content).hexdigest() != raw.headers["x-body-sha256"]


async def test_a_receipt_whose_body_is_gone_is_named_over_http(
    make_client: Callable[..., Any], db_path: Path
) -> None:
    async with make_client() as client:
        await post(client, fixture_bytes("smtp2go", "hard_bounce.form"), FORM)
        await settle(client)
        tamper(db_path, "DELETE FROM bodies WHERE seq = 1", trigger=None)
        raw = await client.get("/v1/audit/receipts/1", headers=AUTH)
    assert raw.status_code == 500
    assert "ledger damaged: receipt 1: its body is not in body storage" in raw.json()["detail"]
    await asyncio.to_thread(assert_broken_at, db_path, 1)
