"""What a running service holds: settings, the store, its projector and the policy."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide

from api.feed_watch import FeedWatch
from api.metrics import Metrics
from api.push import deliverer
from api.push.deliverer import Deliverer
from api.settings import Settings
from ledger import NewReceipt, Store, StoreUnavailable, open_store
from projections import (
    Policy,
    PolicyConflict,
    PolicyMismatch,
    Projector,
    policy_hash,
    policy_history,
    queries,
    read_policy,
    rebuild,
)
from projections.queries import oldest_unprojected, suppression_counts
from projections.rebuild import active_policy

log = logging.getLogger("bounceledger")

STOP_GRACE = 10.0  # seconds each shutdown step may take


class Runtime:
    """Opens the store, brings the projection up to date, and tails the ledger.

    The instance serves the ledger's active policy and follows its changes. `policy`
    (serve --policy) is what this instance expects: put into effect (and recorded) on a
    ledger that has no policy history yet, refused (PolicyConflict) on one whose active
    policy is another — a change goes through `bounceledger rebuild --note`.
    """

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        if policy is None and settings.policy is not None:
            policy = read_policy(settings.policy)
        self.expected = policy
        self._store: Store | None = None
        self._projector: Projector | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._feed_watch: FeedWatch | None = None
        self._feed_task: asyncio.Task[None] | None = None
        # Pushes the change feed to the endpoints (only with an endpoint key).
        self._deliverer: Deliverer | None = None
        self.metrics = Metrics()
        # Why lookups answer 503 now: the projection trails the ledger by more than
        # settings.max_projection_lag (None: it does not). Kept by `watch`.
        self.behind: str | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("runtime not started")
        return self._store

    @property
    def projector(self) -> Projector:
        if self._projector is None:
            raise RuntimeError("runtime not started")
        return self._projector

    @property
    def feed_watch(self) -> FeedWatch:
        """The change feed's head, shared by every stream client (api/changes.py)."""
        if self._feed_watch is None:
            raise RuntimeError("runtime not started")
        return self._feed_watch

    @property
    def policy(self) -> Policy:
        """The policy served now (the ledger's active one)."""
        return self.projector.policy

    async def start(self) -> None:
        """Open the ledger, settle the policy, catch up, and start tailing."""
        settings = self.settings
        store = self._store = await open_store(
            settings.db, pool_min=settings.pg_pool_min, pool_max=settings.pg_pool_max
        )
        store.on_commit = self.metrics.record_commit
        for warning in await store.exposure():
            log.warning("%s", warning)
        projector = self._projector = Projector(store)
        try:
            await projector.start()
        except PolicyMismatch as exc:  # folded by another version of this code
            log.warning("%s; rebuilding under the same policy before serving", exc)
            await self._rebuild(await active_policy(store), None)
            await projector.start()
        if self.expected is not None and self.expected != projector.policy:
            await self._put_into_effect(self.expected)
            await projector.start()
        await projector.catch_up()
        await queries.require_erasure_key(store, settings.erasure_key)
        # from here on: what arrives while serving (not the backlog folded at start)
        watch = self._feed_watch = FeedWatch(store, settings.changes_keep)
        await watch.poll()

        def stepped(arrived: list[int]) -> None:
            self.metrics.record_projection(arrived)
            watch.nudge()  # the feed may have moved: stream clients and pushes go now

        projector.on_step = stepped
        projector.on_set_aside = self.metrics.record_set_aside
        # a lease holder that does not fold is taken over well before lookups answer 503
        takeover = settings.max_projection_lag / 2
        self._task = asyncio.create_task(projector.run(takeover_after=takeover), name="projector")
        self._watch_task = asyncio.create_task(self._watch(), name="projection watch")
        self._deliverer = await deliverer.started(  # outbound webhooks (with a key)
            store,
            settings.endpoint_key,
            settings.push_schedule,
            self.metrics.record_push,
            wake=watch.changed,
        )
        self._feed_task = asyncio.create_task(watch.run(), name="feed watch")

    async def _put_into_effect(self, policy: Policy) -> None:
        """The expected policy, on a ledger without a policy history: recorded, rebuilt."""
        history = await policy_history.history(self.store)
        if history:
            last = history[-1].change
            given = self.settings.policy or "the policy given"
            raise PolicyConflict(
                f"the ledger's active policy is {self.projector.policy_hash[:12]} (set by "
                f"{last.actor}: {last.note!r}); this instance was started with {given} "
                f"({policy_hash(policy)[:12]}). Put it into effect for every "
                f"instance with `bounceledger rebuild --policy {given} --note WHY`, or "
                "start without --policy to serve the active one"
            )
        origin = self.settings.policy
        toml = Path(origin).read_text() if origin else ""
        change = policy_history.change_receipt(
            policy,
            toml,
            actor=f"serve@{socket.gethostname()}",
            note="the policy this instance was started with (--policy / BOUNCELEDGER_POLICY)",
            at=time.time_ns() // 1000,
            origin=str(origin or ""),
        )
        log.warning("putting the configured policy into effect: rebuilding before serving")
        await self._rebuild(policy, change)

    async def _rebuild(self, policy: Policy, change: NewReceipt | None) -> None:
        started = time.perf_counter()
        report = await rebuild(self.store, policy, record=change)
        self.metrics.rebuild_seconds.set(time.perf_counter() - started)
        log.info("rebuilt %d receipts, %d suppressed", report.receipts, report.suppressed)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop tailing, finish queued appends, project them, close the store — each step
        bounded by `grace` seconds, so that a shutdown always ends (a step that overruns
        is logged: nothing acknowledged depends on it, every 2xx followed its commit).

        The server has stopped taking requests by then, so the projection is left at the
        last receipt: the next command or instance starts with nothing to fold.
        """
        if self._deliverer is not None:  # an abandoned delivery is sent again later
            await self._bounded(self._deliverer.stop(), "stopping the webhook deliveries", grace)
        tasks = (
            (self._feed_task, "feed watch"),
            (self._watch_task, "watch"),
            (self._task, "projector"),
        )
        for task, what in tasks:
            if task is not None:
                task.cancel()
                await self._bounded(task, f"stopping the {what}", grace)
        if self._store is not None:
            await self._bounded(self._drain(), "projecting the last receipts", grace)
            await self._bounded(self._store.close(), "closing the ledger", grace)

    async def _drain(self) -> None:
        """Commit what is queued, then fold it (only where this instance projects: on
        PostgreSQL another instance may hold the projector lease)."""
        store, projector = self.store, self._projector
        await store.drain()
        if projector is not None and projector.leading and projector.error is None:
            folded = await projector.catch_up()
            if folded:
                log.info("projected the last %d receipts before stopping", folded)

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
        try:
            await self.store.last_seq()  # the ledger answers
        except StoreUnavailable as exc:
            return {
                "ledger_reachable": str(exc),
                "ledger_writable": None,
                "projection_policy": None,
                "projector_caught_up": None,
            }
        if self.store.write_error is not None:
            await self.store.recheck_writable()
        return {
            "ledger_reachable": None,
            "ledger_writable": self.store.write_error,
            "projection_policy": self.projector.error,
            "projector_caught_up": self.behind,
        }

    async def _watch(self, every: float = 1.0) -> None:
        """Check the projection's lag every `every` seconds, until cancelled."""
        while True:
            try:
                await self.check_lag()
            except StoreUnavailable:
                pass  # readiness reports the ledger itself
            except Exception:  # the watch must outlive any one failure
                log.exception("checking the projection's lag failed")
            await asyncio.sleep(every)

    async def check_lag(self) -> float:
        """How long the oldest receipt not yet folded has waited (seconds; 0 when none
        waits), by the stored checkpoint — whichever instance holds the projector's
        lease. Beyond settings.max_projection_lag the service is behind: lookups answer
        503 and /readyz fails, and a log line and a metric name the cause."""
        oldest = await oldest_unprojected(self.store)
        lag = 0.0 if oldest is None else max(0.0, time.time() - oldest[1] / 1e6)
        self.metrics.record_lag(
            lag, behind=lag > self.settings.max_projection_lag, stalled=self.projector.stalled
        )
        if lag <= self.settings.max_projection_lag:
            if self.behind is not None:
                log.warning("the projection caught up: lookups are answered again")
            self.behind = None
            return lag
        projector = self.projector
        if projector.error is not None:
            cause = f"the projector here is paused: {projector.error}"
        elif not projector.leading:
            cause = (
                "another instance, or another role connected to the database, holds the "
                "projector lease and is not folding"
            )
        else:
            cause = "the projector folds more slowly than receipts arrive"
        waiting = oldest[0] if oldest else 0
        message = (
            f"the projection is {lag:.0f} s behind the ledger (receipt {waiting} waits; "
            f"the bound is {self.settings.max_projection_lag:g} s): {cause}"
        )
        if self.behind is None:
            log.error("%s; lookups answer 503 until it catches up", message)
        self.behind = message
        return lag


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    """The app's runtime, which create_app keeps in the app's state.

    Route handlers take it as their `runtime` dependency (RUNTIME); this is for what
    litestar gives no dependencies: the guards, the console's before_request, and the
    helpers its pages and cookies share."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


def _provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)


# The `runtime` dependency (create_app): a route handler asks for it with a parameter
# `runtime: NamedDependency[Runtime]`.
RUNTIME = Provide(_provide_runtime, sync_to_thread=False)
