"""Group commit, shared by the backends: requests queue their receipts and wait; one
flusher task writes everything queued in one transaction and resolves the waiters only
after the commit, so a 2xx always follows a durable commit. While a commit is in flight,
new requests queue for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from ledger.errors import AppendRejected, StoreUnavailable
from ledger.records import AppendResult, NewReceipt

MAX_BATCH = 1024


class CommitReport(msgspec.Struct, frozen=True, kw_only=True):
    """One group commit: what was written, how long the commit took, how long each waited."""

    receipts: list[NewReceipt]
    results: list[AppendResult]
    seconds: float
    waits: list[float]


WriteBatch = Callable[[list[NewReceipt]], Awaitable[list[AppendResult]]]
# A queued append: the receipt, its waiter, when it was queued (perf_counter).
_Queued = tuple[NewReceipt, "asyncio.Future[AppendResult]", float]

log = logging.getLogger("bounceledger.ledger")


class GroupCommit:
    """Queues appends and writes them in batches through `write_batch` (one transaction)."""

    def __init__(self, write_batch: WriteBatch) -> None:
        self._write_batch = write_batch
        self._pending: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self.appended = asyncio.Event()
        # Called after every group commit (for metrics); must not raise.
        self.on_commit: Callable[[CommitReport], None] | None = None
        self.write_error: str | None = None  # the last commit's failure, None once one succeeds

    async def append(self, receipt: NewReceipt) -> AppendResult:
        """Append one receipt; returns once it is committed (or raises StoreUnavailable)."""
        if not receipt.source:
            raise AppendRejected("a receipt needs a source")
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._pending.append((receipt, future, time.perf_counter()))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # shield: a client that hangs up must not cancel a commit others wait on
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait until every queued append is committed (or has failed)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        batch: list[_Queued] = []
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)
        finally:
            # Whatever ends the flusher early (a bug, the task cancelled at shutdown), no
            # waiter is left hanging, in its batch or queued behind it: each hears that
            # its receipt was not committed (no 2xx; the provider retries).
            stranded, self._pending = [*batch, *self._pending], []
            _fail(stranded, StoreUnavailable("the commit did not complete"))

    async def _commit(self, batch: list[_Queued]) -> None:
        receipts = [receipt for receipt, _, _ in batch]
        started = time.perf_counter()
        try:
            results = await self._write_batch(receipts)
            if len(results) != len(receipts):  # a backend's bug: answer no one wrongly
                raise StoreUnavailable(
                    f"the store answered {len(results)} results for {len(receipts)} receipts"
                )
        except Exception as exc:  # every waiter must hear of the failure: no 2xx
            error = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))
            self.write_error = str(error)
            _fail(batch, error)
            return
        self.write_error = None
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        self.appended.set()
        if self.on_commit is not None:
            done = time.perf_counter()
            report = CommitReport(
                receipts=receipts,
                results=results,
                seconds=done - started,
                waits=[done - queued for _, _, queued in batch],
            )
            try:
                self.on_commit(report)
            except Exception:  # metrics only: the commit stands and its waiters have it
                log.exception("the commit hook failed")


def _fail(batch: list[_Queued], error: StoreUnavailable) -> None:
    for _, future, _ in batch:
        if not future.done():
            future.set_exception(error)


class GroupCommitted:
    """What a store that appends through a GroupCommit shows the service: the commit hook
    for metrics and the last commit's failure (for /readyz)."""

    _group: GroupCommit

    @property
    def on_commit(self) -> Callable[[CommitReport], None] | None:
        """Called after every group commit (for metrics); must not raise."""
        return self._group.on_commit

    @on_commit.setter
    def on_commit(self, hook: Callable[[CommitReport], None] | None) -> None:
        self._group.on_commit = hook

    @property
    def write_error(self) -> str | None:
        """The last commit's failure; None once one succeeds."""
        return self._group.write_error

    @write_error.setter
    def write_error(self, error: str | None) -> None:
        self._group.write_error = error

    async def append(self, receipt: NewReceipt) -> AppendResult:
        """Append one receipt; returns once it is committed (or raises StoreUnavailable)."""
        return await self._group.append(receipt)

    async def drain(self) -> None:
        """Wait until every queued append is committed (or has failed)."""
        await self._group.drain()
