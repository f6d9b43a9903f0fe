"""A shutdown always ends: each of its steps is bounded, and one that overruns is logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from api.runtime import Runtime
from api.settings import Settings
from ledger import NewReceipt, open_store
from projections import views
from projections.queries import suppression_counts
from tests.api.helpers import hard_bounce


class _StuckStore:
    closed = False

    async def drain(self) -> None:
        await asyncio.sleep(3600)

    async def close(self) -> None:
        await asyncio.sleep(3600)


async def test_a_stuck_step_does_not_hold_the_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(Settings())
    store: Any = _StuckStore()
    runtime._store = store

    let_go = asyncio.Event()

    async def tail() -> None:
        while not let_go.is_set():  # a projector that does not stop when told
            with contextlib.suppress(asyncio.CancelledError):
                await let_go.wait()

    runtime._task = asyncio.create_task(tail())
    await asyncio.sleep(0)  # let it start
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="bounceledger"):
        await runtime.stop(grace=0.2)
    assert time.monotonic() - started < 2
    messages = [record.getMessage() for record in caplog.records]
    assert "shutdown: stopping the projector took longer than 0.2 s; going on" in messages
    assert "shutdown: projecting the last receipts took longer than 0.2 s; going on" in messages
    assert "shutdown: closing the ledger took longer than 0.2 s; going on" in messages
    let_go.set()
    await runtime._task


async def test_a_cancelled_shutdown_is_still_cancelled() -> None:
    runtime = Runtime(Settings())
    store: Any = _StuckStore()
    runtime._store = store
    stopping = asyncio.create_task(runtime.stop(grace=30))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping


@pytest.mark.both_backends
async def test_a_graceful_stop_leaves_the_projection_at_the_last_receipt(
    settings: Settings, backend: str
) -> None:
    """Receipts committed while the projector was behind are folded before the store
    closes: the next instance or command starts with nothing to fold (issue 11)."""
    runtime = Runtime(settings)
    await runtime.start()
    assert runtime._task is not None
    runtime._task.cancel()  # a projector that has fallen behind: it folds nothing more
    with contextlib.suppress(asyncio.CancelledError):
        await runtime._task
    runtime._task = None
    for n in range(30):
        await runtime.store.append(
            NewReceipt(
                source="smtp2go",
                received_at=time.time_ns() // 1000,
                content_type="application/json",
                body=hard_bounce(f"gone{n}@example.com"),
                headers={},
            )
        )
    head = await runtime.store.last_seq()
    assert runtime.projector.projected_seq < head
    await runtime.stop()

    store = await open_store(settings.db)
    try:
        async with store.reading() as tx:
            checkpoint = await views.read_checkpoint(tx)
        assert checkpoint is not None
        assert checkpoint[0] == head == await store.last_seq()
        assert (await suppression_counts(store)).get("hard_bounce") == 30
    finally:
        await store.close()
