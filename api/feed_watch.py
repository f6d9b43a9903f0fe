"""What a running service knows of the change feed: its newest entry, read for every
stream client and the deliverer at once — at once when this instance's projector commits
a step (`nudge`), and every `every` seconds for what other instances commit on
PostgreSQL — and the retention that deletes entries older than `keep` seconds
(projections/feed.py, `prune`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ledger import Store, StoreUnavailable
from projections import feed

log = logging.getLogger("bounceledger.feed")

PRUNE_EVERY = 3600.0  # seconds between deletions of entries past the retention


class FeedWatch:
    """The feed's head, polled every `every` seconds while `run` runs."""

    def __init__(self, store: Store, keep: float, every: float = 0.25) -> None:
        self.store = store
        self.keep = keep
        self.every = every
        self.head = 0
        self._moved = asyncio.Event()
        self._nudged = asyncio.Event()
        self._pruned_at = 0.0

    def nudge(self) -> None:
        """Look at the head now (this instance's projector just committed a step)."""
        self._nudged.set()

    async def changed(self, timeout: float) -> None:
        """Wait until the head moves, or `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._moved.wait()

    async def poll(self) -> int:
        """Read the head now; wake whoever waits when it moved."""
        async with self.store.reading() as tx:
            head = (await feed.position(tx)).head
        if head != self.head:
            self.head = head
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()
        return head

    async def wait_past(
        self, after: int, timeout: float, cancelled: asyncio.Future[None] | None = None
    ) -> bool:
        """Wait until the head is past entry `after` (True), `timeout` seconds pass or
        `cancelled` is done (False)."""
        moved = self._moved
        if self.head > after:
            return True
        waiter = asyncio.ensure_future(moved.wait())
        waiting: list[asyncio.Future[Any]] = [waiter, *([cancelled] if cancelled else [])]
        try:
            await asyncio.wait(
                waiting,
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
        return self.head > after

    async def prune(self, now: float | None = None) -> int:
        """Delete the entries older than the retention; how many."""
        cutoff = int(((time.time() if now is None else now) - self.keep) * 1_000_000)
        async with self.store.writing() as tx:
            count = await feed.prune(tx, cutoff)
        if count:
            log.info("deleted %d feed entries older than %g days", count, self.keep / 86400)
        return count

    async def run(self) -> None:
        """Poll the head, and prune once an hour, until cancelled."""
        while True:
            try:
                await self.poll()
                if time.monotonic() - self._pruned_at >= PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    await self.prune()
            except StoreUnavailable:
                pass  # readiness reports the ledger itself
            except Exception:  # the watch must outlive any one failure
                log.exception("watching the change feed failed")
            with contextlib.suppress(TimeoutError):  # a nudge, or the next poll
                async with asyncio.timeout(self.every):
                    await self._nudged.wait()
            self._nudged.clear()
