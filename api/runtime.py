"""What a running service holds: settings, policy, the store and its projector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from api.metrics import Metrics
from api.settings import Settings
from ledger import SQLiteStore
from projections import Policy, PolicyMismatch, Projector, read_policy, rebuild
from projections.queries import suppression_counts

log = logging.getLogger("bounceledger")


class Runtime:
    """Opens the store, brings the projection up to date, and tails the ledger."""

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or read_policy(settings.policy)
        self._store: SQLiteStore | None = None
        self._projector: Projector | None = None
        self._task: asyncio.Task[None] | None = None
        self.metrics = Metrics()

    @property
    def store(self) -> SQLiteStore:
        if self._store is None:
            raise RuntimeError("runtime not started")
        return self._store

    @property
    def projector(self) -> Projector:
        if self._projector is None:
            raise RuntimeError("runtime not started")
        return self._projector

    async def start(self) -> None:
        """Open the ledger; a projection built under another policy is rebuilt first."""
        self._store = await SQLiteStore.open(self.settings.db)
        self._store.on_commit = self.metrics.record_commit
        self._projector = Projector(self._store, self.policy)
        try:
            await self._projector.start()
        except PolicyMismatch as exc:
            log.warning("%s; rebuilding under the configured policy before serving", exc)
            started = time.perf_counter()
            report = await rebuild(self._store, self.policy)
            self.metrics.rebuild_seconds.set(time.perf_counter() - started)
            log.info("rebuilt %d receipts, %d suppressed", report.receipts, report.suppressed)
            await self._projector.start()
        await self._projector.catch_up()
        self._task = asyncio.create_task(self._projector.run(), name="projector")

    async def stop(self) -> None:
        """Stop tailing, finish queued appends, close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._store is not None:
            await self._store.close()

    async def suppression_counts(self) -> dict[str, int]:
        return await suppression_counts(self.store)

    async def readiness(self) -> dict[str, str | None]:
        """Why the service is not ready, per check (None = fine)."""
        if self.store.write_error is not None:
            await self.store.recheck_writable()
        head = await self.store.last_seq()
        lag = head - self.projector.projected_seq
        return {
            "ledger_writable": self.store.write_error,
            "projection_policy": self.projector.error,
            "projector_caught_up": None if lag <= 1000 else f"{lag} receipts behind",
        }
