"""I/O faults at commit time: no 2xx, nothing half-written, /readyz tells, service resumes.

Faults are injected inside the app (the test client runs it in-process, on its own loop
in another thread): the class is patched before the app is created, and the test flips
a switch. Two places:

- `batch`: SQLiteStore._write_batch raises before anything is written;
- `commit`: every write transaction (appends and the projector's alike, whether through
  `SQLiteStore.write` or in one hop through `in_transaction`) fails after its statements
  ran, where COMMIT would be — the INSERT is in the transaction and must be rolled back,
  as when the disk fails or fills under a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import ledger.sqlite as ledger_sqlite
from ledger.sqlite import SQLiteStore
from tests.api.helpers import hard_bounce, post_webhook, receipts, status
from tests.conftest import AUTH, settle

ERRORS = ("disk I/O error", "database or disk is full")


class Fault:
    """The switch: while `message` is set, the patched code raises OperationalError."""

    def __init__(self) -> None:
        self.message: str | None = None
        self.raised = 0

    def fire(self) -> None:
        if self.message is not None:
            self.raised += 1
            raise sqlite3.OperationalError(self.message)


def inject(monkeypatch: pytest.MonkeyPatch, where: str) -> Fault:
    fault = Fault()
    if where == "batch":
        original_batch = SQLiteStore._write_batch

        async def failing_batch(self: SQLiteStore, batch: list[Any]) -> Any:
            fault.fire()
            return await original_batch(self, batch)

        monkeypatch.setattr(SQLiteStore, "_write_batch", failing_batch)
    else:
        original_writing = SQLiteStore.writing

        @contextlib.asynccontextmanager
        async def failing_writing(self: SQLiteStore, *, durable: bool = True) -> AsyncIterator[Any]:
            async with original_writing(self, durable=durable) as tx:
                yield tx
                fault.fire()  # the statements ran; the commit fails

        monkeypatch.setattr(SQLiteStore, "writing", failing_writing)
        # the hot paths (group commits, projector steps) run their whole transaction on
        # the writer's thread: fail those after their statements ran, too
        original_transaction = ledger_sqlite.in_transaction

        def failing_transaction(conn: sqlite3.Connection, fn: Any, /, *args: Any) -> Any:
            def statements_then_fault(connection: sqlite3.Connection, *more: Any) -> Any:
                result = fn(connection, *more)
                fault.fire()
                return result

            return original_transaction(conn, statements_then_fault, *args)

        monkeypatch.setattr(ledger_sqlite, "in_transaction", failing_transaction)
    return fault


@pytest.fixture(params=["batch", "commit"])
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch, where: str) -> Fault:
    return inject(monkeypatch, where)


async def readiness(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz", headers=AUTH)
    return response.status_code, dict(response.json())


async def wait_ready(client: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code, body = await readiness(client)
        if code == 200:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz still {code} {body} {timeout} s after the fault cleared")
        await asyncio.sleep(0.05)


async def stored_bodies(db_path: Path) -> tuple[list[bytes], tuple[int, int | None]]:
    store = await SQLiteStore.open(db_path)
    try:
        return [r.body for r in await store.read(0, 10_000)], await store.verify()
    finally:
        await store.close()


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


@pytest.mark.parametrize("error", ERRORS)
async def test_failed_commit_is_503_leaves_nothing_and_recovers(
    make_client: Callable[..., Any], fault: Fault, db_path: Path, error: str
) -> None:
    before_fault = [hard_bounce(f"ok{n}@example.org") for n in range(3)]
    during = [hard_bounce(f"lost{n}@example.org") for n in range(8)]
    async with make_client() as client:
        for body in before_fault:
            assert (await post_webhook(client, body)).status_code == 200
        await settle(client)
        assert (await readiness(client))[0] == 200

        fault.message = error
        one = await post_webhook(client, during[0])
        together = await asyncio.gather(*(post_webhook(client, body) for body in during[1:]))
        for response in (one, *together):
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) > 0
            assert "seq" not in response.json()
        assert fault.raised >= 1

        code, ready = await readiness(client)
        assert code == 503
        assert ready["ready"] is False
        assert ready["problems"]["ledger_writable"], ready
        assert error in ready["problems"]["ledger_writable"]
        # nothing half-written is visible while the fault lasts
        assert await receipts(client) == len(before_fault)
        assert (await status(client, "lost0@example.org"))["suppressed"] is False

        fault.message = None
        # a retried delivery (the provider honours Retry-After) is accepted in full
        again = await post_webhook(client, during[0])
        assert again.status_code == 200, again.text
        assert again.json() == {"seq": len(before_fault) + 1, "events": 1, "duplicate": False}
        await wait_ready(client)
        await settle(client)
        assert (await status(client, "lost0@example.org"))["suppressed"] is True
        assert (await status(client, "lost1@example.org"))["suppressed"] is False
        assert (await status(client, "ok0@example.org"))["suppressed"] is True
        assert await receipts(client) == len(before_fault) + 1

    bodies, (checked, broken) = await stored_bodies(db_path)
    assert bodies == [*before_fault, during[0]]
    assert (checked, broken) == (len(bodies), None)
    assert not {digest(body) for body in during[1:]} & {digest(body) for body in bodies}


async def test_readyz_recovers_without_traffic_once_the_fault_clears(
    make_client: Callable[..., Any], fault: Fault
) -> None:
    """Behind a load balancer that routes by /readyz, no delivery arrives while it says
    503: it must turn 200 by itself once the disk works again, not wait for an append."""
    async with make_client() as client:
        assert (await post_webhook(client, hard_bounce("a@example.org"))).status_code == 200
        await settle(client)
        fault.message = ERRORS[0]
        assert (await post_webhook(client, hard_bounce("b@example.org"))).status_code == 503
        assert (await readiness(client))[0] == 503
        fault.message = None
        await wait_ready(client, timeout=5.0)


async def test_fault_during_a_stream_of_deliveries(
    make_client: Callable[..., Any], fault: Fault, db_path: Path
) -> None:
    """Concurrent senders while the fault comes and goes: every 200 is stored at the seq
    it was given, every 503 left nothing, and the chain verifies."""
    acknowledged: dict[bytes, int] = {}
    refused: list[bytes] = []

    async def sender(client: Any, name: str) -> None:
        for n in range(15):
            body = json.dumps(
                {"event": "bounce", "bounce": "soft", "id": f"{name}-{n}", "rcpt": f"{name}@x.org"}
            ).encode()
            response = await post_webhook(client, body)
            if response.status_code == 200:
                acknowledged[digest(body)] = response.json()["seq"]
            else:
                assert response.status_code == 503, response.text
                refused.append(body)
            await asyncio.sleep(0.002)

    async def flapper() -> None:
        for n in range(4):
            await asyncio.sleep(0.02)
            fault.message = ERRORS[n % 2]
            await asyncio.sleep(0.02)
            fault.message = None

    async with make_client() as client:
        await asyncio.gather(flapper(), *(sender(client, f"s{i}") for i in range(6)))
        fault.message = None
        assert (await post_webhook(client, hard_bounce("last@example.org"))).status_code == 200
        await wait_ready(client)

    assert acknowledged, "no delivery got through"
    assert refused, "the fault never met a delivery"
    bodies, (checked, broken) = await stored_bodies(db_path)
    assert broken is None
    assert checked == len(bodies)
    stored = {digest(body): seq for seq, body in enumerate(bodies, start=1)}
    assert {d: stored.get(d) for d in acknowledged} == acknowledged
    assert not {digest(body) for body in refused} & set(stored)
    assert len(bodies) == len(acknowledged) + 1
