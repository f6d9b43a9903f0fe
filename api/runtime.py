"""What a running service holds: settings, policy, the store and its projector."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from api.metrics import Metrics
from api.settings import Settings
from ledger import SQLiteStore
from projections import Policy, PolicyMismatch, Projector, read_policy, rebuild
from projections.queries import suppression_counts

log = logging.getLogger("bounceledger")

STOP_GRACE = 10.0  # seconds each shutdown step may take


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

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop tailing, finish queued appends, close the store — each step bounded by
        `grace` seconds, so that a shutdown always ends (a step that overruns is logged:
        nothing acknowledged depends on it, every 2xx followed its commit)."""
        if self._task is not None:
            self._task.cancel()
            await self._bounded(self._task, "stopping the projector", grace)
        if self._store is not None:
            await self._bounded(self._store.close(), "closing the ledger", grace)

    @staticmethod
    async def _bounded(step: Awaitable[object], what: str, grace: float) -> None:
        # asyncio.wait, not a timeout around `await`: a task that will not end when
        # cancelled would hold an `await` (and the timeout around it) for ever.
        task = asyncio.ensure_future(step)
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.error("shutdown: %s took longer than %g s; going on", what, grace)
        elif not task.cancelled() and task.exception() is not None:
            log.error("shutdown: %s failed: %s", what, task.exception())

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
