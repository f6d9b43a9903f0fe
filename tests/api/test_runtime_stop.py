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


class _StuckStore:
    closed = False

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
