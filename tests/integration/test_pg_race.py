"""The race test (issue 9): several writer processes and tasks append to one PostgreSQL
ledger while other sessions hold the head row lock, insert and roll back, a tailer
follows the ledger by checkpoint, and projectors on two more instances (one running as
`serve` does, with the lease; one catching up over and over, as CLI commands do) fold
it at the same time.

At the end the tailer must have seen exactly what was committed — every acknowledged
append, once, nothing rolled back — in order and without a gap, the sequence numbers
must be dense, the chain must verify, and the projection must hold exactly the committed
events: each body is one hard bounce of its own address, folded once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt, Receipt
from tests import pg

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(30)]

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
PER_PROCESS = 150
IN_PROCESS = 100
SHARED = 5  # bodies every writer sends (redeliveries reaching different instances)
SPREAD = 2.0  # seconds over which each writer spreads its appends
SOURCE = "smtp2go"
RECIPIENTS = 13


def bounce(key: str) -> str:
    """The body of one soft bounce (event id `key`) for one of RECIPIENTS addresses: many
    events per address, so a step folded twice, or lost, changes a count."""
    rcpt = f"r{zlib.crc32(key.encode()) % RECIPIENTS}@example.org"
    return json.dumps({"event": "bounce", "bounce": "soft", "id": key, "rcpt": rcpt,
                       "time": "2026-05-04T10:15:02Z", "email_id": "race"})  # fmt: skip


# One writer process: its own PostgresStore (its own pool) on the shared URL. Appends
# start together at the wall-clock time given, spread over SPREAD seconds, and the
# outcome of each (seq and duplicate flag, or the error) is printed as one JSON document.
WRITER = r"""
import asyncio, json, random, sys, time, zlib
RECIPIENTS = int(sys.argv[7])
from ledger import NewReceipt
from ledger.postgres import PostgresStore

async def main(url, name, count, shared, start, spread):
    store = await PostgresStore.open(url, max_size=3)
    def bounce(key):
        rcpt = f"r{zlib.crc32(key.encode()) % RECIPIENTS}@example.org"
        return json.dumps({"event": "bounce", "bounce": "soft", "id": key, "rcpt": rcpt,
                           "time": "2026-05-04T10:15:02Z", "email_id": "race"})
    bodies = [bounce(f"{name}-{i}") for i in range(count)]
    bodies += [bounce(f"shared-{k}") for k in range(shared)]
    random.shuffle(bodies)

    async def one(body):
        await asyncio.sleep(max(0.0, start - time.time()) + random.random() * spread)
        receipt = NewReceipt(
            source="smtp2go", received_at=time.time_ns() // 1000,
            content_type="application/json", body=body.encode(),
        )
        try:
            result = await store.append(receipt)
        except Exception as exc:
            return {"body": body, "error": repr(exc)}
        return {"body": body, "seq": result.seq, "duplicate": result.duplicate}

    try:
        outcomes = await asyncio.gather(*(one(body) for body in bodies))
    finally:
        await store.close()
    print(json.dumps(outcomes))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                 float(sys.argv[5]), float(sys.argv[6])))
"""


async def _writer_process(url: str, name: str, start: float) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        url,
        name,
        str(PER_PROCESS),
        str(SHARED),
        str(start),
        str(SPREAD),
        str(RECIPIENTS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"writer {name} did not finish in 20 s") from None
    assert proc.returncode == 0, f"writer {name} failed:\n{err.decode()}"
    outcomes: list[dict[str, Any]] = json.loads(out)
    return outcomes


async def _in_process_writer(store: Any, start: float) -> list[dict[str, Any]]:
    """Writer tasks in this process, on the tailer's instance, beside the processes."""
    bodies = [bounce(f"tasks-{i}") for i in range(IN_PROCESS)]
    bodies += [bounce(f"shared-{k}") for k in range(SHARED)]

    async def one(index: int, body: str) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start - time.time()) + SPREAD * index / len(bodies))
        result = await store.append(
            NewReceipt(
                source=SOURCE,
                received_at=time.time_ns() // 1000,
                content_type="application/json",
                body=body.encode(),
            )
        )
        return {"body": body, "seq": result.seq, "duplicate": result.duplicate}

    return list(await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies))))


async def _until(done: asyncio.Event, step: Callable[[], Awaitable[None]]) -> int:
    """Run `step` over and over until `done`; how many times it ran."""
    rounds = 0
    while not done.is_set():
        await step()
        rounds += 1
    return rounds


async def test_tailer_sees_exactly_what_was_committed_in_order(pg_url: str) -> None:
    import asyncpg

    from ledger.postgres import PostgresStore
    from projections import Projector, queries

    writers_store = await PostgresStore.open(pg_url)
    tail_store = await PostgresStore.open(pg_url)
    serving_store, cli_store = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    serving, cli = Projector(serving_store), Projector(cli_store)
    await serving.start()
    await cli.start()
    lock_conn = await pg.connect(pg_url)
    scratch_conn = await pg.connect(pg_url)
    phantom_conn = await pg.connect(pg_url)
    try:
        await scratch_conn.execute("CREATE TABLE scratch (n integer, junk bytea)")
        writers_done = asyncio.Event()
        seen: list[Receipt] = []
        out_of_order: list[str] = []

        async def hold_head_lock() -> None:
            # another session sits on the head row for 0.5 s: every append waits on it
            tx = lock_conn.transaction()
            await tx.start()
            await lock_conn.fetchrow("SELECT * FROM ledger_head WHERE id = 1 FOR UPDATE")
            await asyncio.sleep(0.5)
            await tx.rollback()
            await asyncio.sleep(0.2)

        async def roll_back_scratch() -> None:
            # a transaction that writes elsewhere and rolls back
            tx = scratch_conn.transaction()
            await tx.start()
            await scratch_conn.execute(
                "INSERT INTO scratch SELECT g, sha256(g::text::bytea) "
                "FROM generate_series(1, 200) g"
            )
            await asyncio.sleep(0.1)
            await tx.rollback()

        async def roll_back_phantom_receipt() -> None:
            # a row past the head, inserted behind the store's back and rolled back: an
            # append that wants the same seq waits on it; the tailer must never see it
            head = await phantom_conn.fetchval("SELECT max(seq) FROM receipts")
            tx = phantom_conn.transaction()
            await tx.start()
            try:
                await phantom_conn.execute(
                    "INSERT INTO receipts (seq, received_at, source, content_type, headers, "
                    "peer, body_sha256, chain_hash) VALUES ($1, 0, 'phantom', 'x', '{}', NULL, "
                    "sha256('\\x00'::bytea), '\\x00'::bytea)",
                    (head or 0) + 1,
                )
                await asyncio.sleep(0.2)
            except asyncpg.UniqueViolationError:  # the seq was taken meanwhile
                pass
            finally:
                await tx.rollback()
            await asyncio.sleep(0.2)

        async def tail_once() -> None:
            checkpoint = seen[-1].seq if seen else 0
            batch = await tail_store.read(after_seq=checkpoint, limit=50)
            for record in batch:
                if record.seq != checkpoint + 1:
                    out_of_order.append(f"after {checkpoint} the tailer saw {record.seq}")
                checkpoint = record.seq
                seen.append(record)
            if not batch:
                await asyncio.sleep(0.005)

        lockers = [
            asyncio.create_task(_until(writers_done, hold_head_lock)),
            asyncio.create_task(_until(writers_done, roll_back_scratch)),
            asyncio.create_task(_until(writers_done, roll_back_phantom_receipt)),
        ]
        tailer = asyncio.create_task(_until(writers_done, tail_once))
        projecting = asyncio.create_task(serving.run(idle=0.05, coalesce=0.005))
        catching_up = asyncio.create_task(_until(writers_done, cli.catch_up))

        start = time.time() + 1.5  # the processes need a moment to import and connect
        writing = [
            *(_writer_process(pg_url, f"p{n}", start) for n in range(PROCESSES)),
            _in_process_writer(writers_store, start),
        ]
        try:
            per_writer = await asyncio.wait_for(asyncio.gather(*writing), timeout=22)
        finally:
            writers_done.set()
            lock_rounds, *_ = await asyncio.gather(*lockers)
            await tailer
            cli_rounds = await catching_up
            projecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await projecting
        while True:  # whatever committed after the tailer's last look
            before = len(seen)
            await tail_once()
            if len(seen) == before:
                break

        outcomes = [outcome for outcomes in per_writer for outcome in outcomes]
        errors = [outcome for outcome in outcomes if "error" in outcome]
        assert errors == [], f"{len(errors)} appends failed, e.g. {errors[:3]}"
        assert lock_rounds >= 2, "the head-lock holder should have interfered"

        stored = await writers_store.read(limit=100_000)
        total = PROCESSES * PER_PROCESS + IN_PROCESS + SHARED
        # dense, in order, nothing rolled back, every distinct body once
        assert [r.seq for r in stored] == list(range(1, total + 1))
        assert all(r.source == SOURCE for r in stored)
        assert len({r.body for r in stored}) == total
        # the tailer saw exactly what was committed, in commit order, with no gap
        assert out_of_order == []
        assert [(r.seq, r.body) for r in seen] == [(r.seq, r.body) for r in stored]
        # every acknowledged append is there under the seq it was acknowledged with
        by_body = {r.body.decode(): r.seq for r in stored}
        for outcome in outcomes:
            assert by_body[outcome["body"]] == outcome["seq"], outcome
        # each shared body: one append, every other copy acknowledged as a duplicate
        for k in range(SHARED):
            body = bounce(f"shared-{k}")
            copies = [o for o in outcomes if o["body"] == body]
            assert len(copies) == PROCESSES + 1
            assert sorted(o["duplicate"] for o in copies) == [False] + [True] * PROCESSES
        assert await tail_store.last_seq() == total
        assert await tail_store.verify() == (total, None)
        assert await tail_store.verify(chunk=97) == (total, None)

        # the projection holds exactly the committed events, each folded once
        assert cli_rounds >= 2
        await serving.catch_up()
        assert serving.projected_seq == total
        committed = collections.Counter(json.loads(r.body)["rcpt"] for r in stored)
        assert len(committed) == RECIPIENTS
        for email, events in committed.items():
            state = await queries.status(serving_store, email, serving.policy_hash)
            assert (state.events, state.reason) == (events, "soft_bounce_threshold"), email
    finally:
        for conn in (lock_conn, scratch_conn, phantom_conn):
            await conn.close()
        for store in (tail_store, writers_store, serving_store, cli_store):
            await store.close()
