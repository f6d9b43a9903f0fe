"""Fact rows derived from receipts, on this thread or, for a large re-derivation, in
worker processes.

Deriving a receipt's facts is Python through and through (decode the body, read the
provider's fields, normalize the address, parse the times, hash the dedup key): the bound
of a cold rebuild once writing overlapped it (bench/README.md, "Measured reasons").
Above `PARALLEL_FROM` receipts, chunks are derived by a pool of processes, one per CPU,
in order of submission: the results are the same rows, taken in the same order (tests/
unit/test_derivation.py), so "the first copy of a key wins" holds as before. Workers are
spawned, never forked: the parent runs threads (the database connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from ledger import Receipt
from projections import views
from projections.facts import derive

PARALLEL_FROM = 200_000  # receipts to derive; fewer are not worth starting processes for

Row = tuple[Any, ...]


def fact_rows(receipts: list[Receipt]) -> list[Row]:
    """The fact index rows of `receipts`, in their order (a worker's task)."""
    return [views.fact_row(keyed) for receipt in receipts for keyed in derive(receipt)]


class Deriver:
    """Derives chunks here, or in `executor`'s processes when there is one."""

    def __init__(self, executor: Executor | None) -> None:
        self._executor = executor

    @property
    def parallel(self) -> bool:
        return self._executor is not None

    def submit(self, receipts: list[Receipt]) -> asyncio.Future[list[Row]]:
        """The rows of `receipts`, as a future (already done when derived here)."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            done: asyncio.Future[list[Row]] = loop.create_future()
            done.set_result(fact_rows(receipts))
            return done
        return loop.run_in_executor(self._executor, fact_rows, receipts)


@contextlib.asynccontextmanager
async def deriver(receipts: int) -> AsyncIterator[Deriver]:
    """A Deriver for a re-derivation of `receipts` receipts: worker processes when there
    are enough receipts and more than one CPU, this thread otherwise."""
    workers = min(os.cpu_count() or 1, 4)
    if receipts < PARALLEL_FROM or workers < 2:
        yield Deriver(None)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield Deriver(pool)
    finally:
        stop = functools.partial(pool.shutdown, wait=True, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, stop)
