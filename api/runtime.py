"""What a running service holds: settings, policy, the store and its projector."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from api.settings import Settings
from ledger import SQLiteStore
from projections import KNOWN_SOURCES, Policy, PolicyMismatch, Projector, load_policy, rebuild

log = logging.getLogger("bounceledger")


class Runtime:
    """Opens the store, brings the projection up to date, and tails the ledger."""

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or load_policy(settings.policy, known_sources=KNOWN_SOURCES)
        self._store: SQLiteStore | None = None
        self._projector: Projector | None = None
        self._task: asyncio.Task[None] | None = None

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
        self._projector = Projector(self._store, self.policy)
        try:
            await self._projector.start()
        except PolicyMismatch as exc:
            log.warning("%s; rebuilding under the configured policy before serving", exc)
            report = await rebuild(self._store, self.policy)
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
