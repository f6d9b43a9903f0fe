"""Helpers for the audit tests: SMTP2GO bodies, posting, direct appends, the CLI, dumps.

CLI commands call asyncio.run, so from an async test they run in a worker thread
(`await cli(...)`); the app under test is always closed before the CLI touches its
database, so only one process-side writer is ever active.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from click.testing import CliRunner, Result

from api.cli import cli as bounceledger
from ledger import NewReceipt
from ledger.sqlite import SQLiteStore
from projections.recipients import parse_time
from tests.conftest import AUTH, SECRET
from tests.stored import stored_bodies

WEBHOOK = "/v1/webhooks/smtp2go/events"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
LOCAL_USER = "auditor"


def smtp2go_event(
    kind: str,
    rcpt: str,
    time: str,
    event_id: str,
    *,
    bounce: str | None = None,
    message: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """One SMTP2GO event as its fields (before encoding as JSON or form)."""
    fields = {"event": kind, "id": event_id, "email_id": f"mail-{event_id}", "time": time}
    fields["rcpt"] = rcpt
    if bounce is not None:
        fields["bounce"] = bounce
    if message is not None:
        fields["message"] = message
    fields.update(extra)
    return fields


def as_json(fields: dict[str, str]) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def as_form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


async def post(client: Any, body: bytes, content_type: str = JSON) -> int:
    """POST one SMTP2GO delivery; returns its receipt's sequence number."""
    response = await client.post(
        WEBHOOK, content=body, params={"token": SECRET}, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["seq"])


async def get_json(client: Any, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params or None, headers=AUTH)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def receipt(
    body: bytes, *, received_at: str, source: str = "smtp2go", ctype: str = JSON
) -> NewReceipt:
    """A NewReceipt as the door would hand it to the store."""
    micros = parse_time(received_at)
    assert micros is not None
    return NewReceipt(source=source, received_at=micros, content_type=ctype, body=body)


async def append(db: Path, receipts: Iterable[NewReceipt]) -> list[int]:
    """Append receipts one after another (sequence order = iteration order)."""
    store = await SQLiteStore.open(db)
    try:
        return [(await store.append(item)).seq for item in receipts]
    finally:
        await store.close()


def append_sync(db: Path, receipts: Iterable[NewReceipt]) -> list[int]:
    return asyncio.run(append(db, list(receipts)))


def invoke(*args: str | Path, user: str = LOCAL_USER) -> Result:
    """Run `bounceledger ARGS` in-process, with no configuration leaking in from outside."""
    runner = CliRunner(
        env={
            "BOUNCELEDGER_DB": None,
            "BOUNCELEDGER_POLICY": None,
            "LOGNAME": user,
            "USER": user,
            "LNAME": user,
            "USERNAME": user,
        }
    )
    return runner.invoke(bounceledger, [str(arg) for arg in args], catch_exceptions=False)


async def cli(*args: str | Path) -> Result:
    """`invoke` from an async test: in a worker thread, which may call asyncio.run."""
    return await asyncio.to_thread(invoke, *args)


def ok_json(result: Result) -> Any:
    """The JSON a successful `--json` command printed."""
    assert result.exit_code == 0, (result.exit_code, result.output)
    return json.loads(result.stdout)


def rows(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows read with the stdlib sqlite3 module, bypassing the store."""
    connection = sqlite3.connect(db)
    try:
        return list(connection.execute(sql, params))
    finally:
        connection.close()


def ledger_rows(db: Path) -> list[tuple[Any, ...]]:
    """Every receipt's chained columns and its body as it reads back, in order: what two
    ledgers holding the same receipts agree on, however their bodies are compressed."""
    bodies = stored_bodies(db)
    chained = rows(
        db,
        "SELECT seq, received_at, source, content_type, headers, peer, body_sha256, chain_hash "
        "FROM receipts ORDER BY seq",
    )
    return [(*row, bodies.get(int(row[0]))) for row in chained]


def receipt_count(db: Path) -> int:
    return int(rows(db, "SELECT COUNT(*) FROM receipts")[0][0])


def projection_dump(db: Path) -> bytes:
    """A canonical dump of the projection: the recipient index, states and suppressions."""
    facts = rows(db, "SELECT email, at, seq, ord, key, fact FROM recipient_facts ORDER BY key")
    states = rows(db, "SELECT email, state FROM recipient_state ORDER BY email")
    suppressed = rows(db, "SELECT email, reason, since, seq FROM suppressions ORDER BY email")
    return msgspec.msgpack.encode([facts, states, suppressed])


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
