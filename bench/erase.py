"""Erasure and raw reads on a built ledger, in process (a copy: the cached ledger is not
changed): one receipt read back with its body (what `audit receipt SEQ --raw` does, its
dictionary cached), and erasing one address (issue 21's targets: p50 <= 5 ms, < 1 s).
Baselines measured in the same run: reading the head's sequence number (a query's floor),
and an operator suppression of one address (one append, folded)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import payloads
from bench.report import Results, Row
from ledger.sqlite import SQLiteStore
from projections import Projector, operator
from projections.erasing import erase
from projections.erasure_keys import ErasureKey

KEY = ErasureKey(b"bench-erasure-key-of-at-least-32-bytes")


def run(db: Path, events: int, work: Path, results: Results, reads: int = 1000) -> None:
    copy = work / "erase.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{copy}{suffix}").exists():
            Path(f"{copy}{suffix}").unlink()
    shutil.copyfile(db, copy)
    # On disk before anything is timed: else the first erasure's checkpoint (an fsync)
    # writes the whole copy out of the page cache (1.1 s of a first erasure at 5,000,000
    # receipts, 0.3 s at 1,000,000; 6-11 ms once the copy was synced).
    with copy.open("rb") as written:
        os.fsync(written.fileno())
    asyncio.run(_measure(copy, events, results, reads))
    copy.unlink()


async def _measure(db: Path, events: int, results: Results, reads: int) -> None:
    store = await SQLiteStore.open(db)
    try:
        projector = Projector(store)
        await projector.start()
        await projector.catch_up()
        rng = random.Random(21)
        last = await store.last_seq()
        seqs = [rng.randint(1, last) for _ in range(reads)]
        raw = await _each(lambda seq: store.get(seq), seqs)
        floor = await _each(lambda _: store.last_seq(), seqs)
        results.add(Row(
            "erase", f"receipt read with its body, p50 ({last:,} receipts)",
            statistics.median(raw), "ms", statistics.median(floor), "last_seq",
            ("<=", 5, "value"), note=f"{reads} random receipts, in process",
        ))  # fmt: skip
        population = payloads.population(events)
        people = [payloads.recipient(rng.randrange(population)) for _ in range(6)]
        timings, bodies = [], []
        for email in people[:3]:
            started = time.perf_counter()
            report = await erase(
                store, KEY, email, actor="bench", note="bench", at=time.time_ns() // 1000
            )
            timings.append((time.perf_counter() - started) * 1000)
            bodies.append(len(report.removed) + len(report.redacted))
        suppress = []
        for email in people[3:]:
            started = time.perf_counter()
            await operator.record(
                store, "suppress", email, actor="bench", note="bench", at=time.time_ns() // 1000
            )
            await projector.catch_up()
            suppress.append((time.perf_counter() - started) * 1000)
        print(
            f"  erase: {statistics.median(timings):.0f} ms per address "
            f"({statistics.mean(bodies):.0f} bodies each); raw read p50 "
            f"{statistics.median(raw):.3f} ms",
            flush=True,
        )
        results.add(Row(
            "erase", f"erase one address ({last:,} receipts)", statistics.median(timings), "ms",
            statistics.median(suppress), "suppress one", ("<=", 1000, "value"),
            note=f"median of 3; {statistics.mean(bodies):.0f} bodies changed each; all: "
            + ", ".join(f"{t:.0f}" for t in timings),
        ))  # fmt: skip
    finally:
        await store.close()


async def _each(call: Callable[[int], Awaitable[object]], seqs: list[int]) -> list[float]:
    out = []
    for seq in seqs:
        started = time.perf_counter()
        await call(seq)
        out.append((time.perf_counter() - started) * 1000)
    return out
