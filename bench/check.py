"""Check: POST /v1/suppressions/check with 10,000 addresses against 1,000,000 suppressed rows.

The projection rows are written directly with the projection's own code (the projector
creates the tables and records the default policy; `views.write_states` writes states
and suppressions), over an empty ledger. Half of each request is suppressed, half
unknown, shuffled; every call sends a different sample, and every suppressed address
sent must be reported (so a projection the server did not serve is noticed).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from bench.reads import Client, _pct, _timed, hello
from bench.report import Results, Row
from bench.service import bounceledger
from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, Projector, views
from projections.state import Cause, Reason, RecipientState

REASONS: tuple[tuple[Reason, int], ...] = (
    ("hard_bounce", 60),
    ("soft_bounce_threshold", 15),
    ("complaint", 10),
    ("unsubscribe", 10),
    ("manual", 5),
)
CHUNK = 50_000


def suppressed(k: int) -> str:
    return f"sup{k:07d}@example{k % 9}.org"


def unknown(k: int) -> str:
    return f"fresh{k:07d}@example{k % 9}.net"


async def build(path: Path, rows: int) -> None:
    """The projector creates the tables and records the default policy; the states are
    written with `views.write_states` in the store's `writing()` transactions. (To put a
    figure beside an older commit's, run that commit's own bench.)"""
    store = await SQLiteStore.open(path)
    try:
        await Projector(store, DEFAULT_POLICY).start()
        for states in _states(rows):
            async with store.writing() as tx:
                await views.write_states(tx, states)
    finally:
        await store.close()


def _states(rows: int) -> Iterator[list[RecipientState]]:
    rng = random.Random(11)
    reasons, weights = [r for r, _ in REASONS], [w for _, w in REASONS]
    for start in range(0, rows, CHUNK):
        states = []
        for k in range(start, min(rows, start + CHUNK)):
            at = 1_746_000_000_000_000 + k * 1_000_000
            reason = rng.choices(reasons, weights)[0]
            cause = Cause(reason, at, k + 1)
            states.append(
                RecipientState(
                    email=suppressed(k),
                    causes=(cause,),
                    since=at,
                    position=(at, k + 1, 0),
                    events=1,
                )
            )
        yield states


def run(work: Path, results: Results, *, rows: int, size: int, calls: int, warm: int = 2) -> None:
    db = work / f"check-{rows}.db"
    started = time.perf_counter()
    asyncio.run(build(db, rows))
    print(
        f"  check: {rows:,} suppressed rows written in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    rng = random.Random(13)
    half = size // 2
    bodies = []
    for _ in range(calls + warm):
        emails = [suppressed(rng.randrange(rows)) for _ in range(half)]
        emails += [unknown(rng.randrange(10 * rows)) for _ in range(size - half)]
        rng.shuffle(emails)
        bodies.append(json.dumps({"emails": emails}).encode())
    expected = [len({e for e in json.loads(b)["emails"] if e.startswith("sup")}) for b in bodies]
    requests = [("POST", "/v1/suppressions/check", body) for body in bodies]
    counts: list[int] = []

    def check(status: int, data: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {data[:200]!r}"
        counts.append(len(json.loads(data)["suppressed"]))
        return None

    with bounceledger(db, work) as srv:
        client = Client(srv)
        try:
            mine = _timed(client, requests, warm, check, results)
        finally:
            client.close()
    floor = hello(bodies, warm, work, results)
    if counts != expected:
        wrong = sum(a != b for a, b in zip(counts, expected, strict=True))
        results.problem(
            f"check: {wrong} of {len(counts)} calls found a different number of "
            f"suppressed addresses than were sent (e.g. {counts[0]} vs {expected[0]})"
        )
    p50, p99 = statistics.median(mine), _pct(mine, 0.99)
    print(f"  check: median {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    note = f"{size:,} addresses ({half:,} suppressed) x {calls} calls, {rows:,} suppressed rows"
    results.add(
        Row(
            "check",
            "median",
            p50,
            "ms",
            statistics.median(floor),
            "hello same body",
            ("<=", 50, "value"),
            note=note,
        )
    )
    results.add(Row("check", "p99", p99, "ms", _pct(floor, 0.99), "hello same body"))
