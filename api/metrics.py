"""Prometheus metrics: one registry per app, gauges refreshed at scrape time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from api.push import endpoints
from ledger.group import CommitReport
from projections import queries, streams
from projections.operator import SOURCE as OPERATOR_SOURCE
from projections.providers import PROVIDERS
from projections.state import REASON_RANK

if TYPE_CHECKING:
    from api.runtime import Runtime

# The `_created` series only add noise to every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

log = logging.getLogger("bounceledger.ledger")

# Every label value comes from a fixed set: a value taken from a request (a path segment,
# a header) would make a new series per distinct value, and series are never freed.
UNKNOWN = "unknown"
OTHER = "other"
SOURCES = frozenset({*PROVIDERS, OPERATOR_SOURCE, "api", UNKNOWN})
OUTCOMES = frozenset({"appended", "duplicate", "conflict"})
REFUSAL_REASONS = frozenset(
    {
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
        "timeout",
        "too_large",
        "rate_limited",
        "unavailable",
        "error",
        OTHER,
    }
)
SUPPRESSION_REASONS = frozenset(REASON_RANK)
PUSH_OUTCOMES = frozenset({"delivered", "failed", "disabled"})

M = TypeVar("M", Counter, Gauge)


class Bounded(Generic[M]):
    """A labelled metric whose label values are mapped into fixed sets: a value outside
    its set is recorded as that label's fallback (`unknown`, `other`)."""

    def __init__(self, metric: M, *allowed: tuple[frozenset[str], str]) -> None:
        self.metric: M = metric
        self._allowed = allowed

    def labels(self, *values: object) -> M:
        if len(values) != len(self._allowed):
            raise ValueError(f"{len(self._allowed)} label values expected, not {len(values)}")
        child: M = self.metric.labels(*_bound(values, self._allowed))
        return child


def _bound(values: Iterable[object], allowed: Iterable[tuple[frozenset[str], str]]) -> list[str]:
    return [
        value if isinstance(value, str) and value in fixed else fallback
        for value, (fixed, fallback) in zip(values, allowed, strict=True)
    ]


_SOURCE = (SOURCES, UNKNOWN)

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_DELAY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """What an operator graphs and alerts on."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.receipts = Bounded(
            Counter(
                "bounceledger_receipts",
                "Webhook deliveries acknowledged",
                ["source", "outcome"],
                registry=r,
            ),
            _SOURCE,
            (OUTCOMES, OTHER),
        )
        self.refusals = Bounded(
            Counter(
                "bounceledger_refusals",
                "Requests refused, by reason",
                ["source", "reason"],
                registry=r,
            ),
            _SOURCE,
            (REFUSAL_REASONS, OTHER),
        )
        self.append_seconds = Histogram(
            "bounceledger_append_seconds",
            "Queue wait plus commit, per receipt",
            buckets=_LATENCY,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "bounceledger_commit_seconds", "One group commit", buckets=_LATENCY, registry=r
        )
        self.commit_batch = Histogram(
            "bounceledger_commit_batch_size", "Receipts per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=r,
        )  # fmt: skip
        self.lag_receipts = Gauge(
            "bounceledger_projector_lag_receipts", "Receipts not yet projected", registry=r
        )
        self.lag_seconds = Gauge(
            "bounceledger_projector_lag_seconds",
            "Age of the oldest unprojected receipt",
            registry=r,
        )
        self.behind = Gauge(
            "bounceledger_projection_behind",
            "1 while the projection trails the ledger by more than the bound "
            "(BOUNCELEDGER_MAX_PROJECTION_LAG): lookups answer 503",
            registry=r,
        )
        self.lease_stalled = Gauge(
            "bounceledger_projector_lease_stalled",
            "1 while this instance folds without the projector lease, because its holder "
            "(another instance, or another role of the database) does not",
            registry=r,
        )
        self.set_aside = Counter(
            "bounceledger_projection_set_aside",
            "Receipts the projector could not fold and set aside (see the log and the receipt)",
            registry=r,
        )
        self.projection_delay = Histogram(
            "bounceledger_projection_delay_seconds",
            "Per receipt folded by this instance: from its arrival to the projector's commit",
            buckets=_DELAY,
            registry=r,
        )
        self.rebuild_seconds = Gauge(
            "bounceledger_rebuild_seconds",
            "Duration of the last rebuild by this process",
            registry=r,
        )
        self.suppressions = Bounded(
            Gauge(
                "bounceledger_suppressions",
                "Suppressed addresses, by reason",
                ["reason"],
                registry=r,
            ),
            (SUPPRESSION_REASONS, OTHER),
        )
        # Labelled by the policy's streams (at most MAX_STREAMS: projections/policy.py);
        # a stream a rebuild removed is removed here.
        self.stream_suppressions = Gauge(
            "bounceledger_stream_suppressions",
            "Addresses each stream of the policy may not mail",
            ["stream"],
            registry=r,
        )
        self._stream_counts: tuple[tuple[int, str], dict[str, int]] | None = None
        self._stream_names: set[str] = set()
        self.unattributed = Bounded(
            Counter(
                "bounceledger_unattributed_events",
                "Events that name no recipient (engagement aside): kept, folded into no state",
                ["source"],
                registry=r,
            ),
            _SOURCE,
        )
        self.ambiguous = Bounded(
            Counter(
                "bounceledger_ambiguous_events",
                "Events that name several recipients and not which one they are about",
                ["source"],
                registry=r,
            ),
            _SOURCE,
        )
        self.ledger_receipts = Gauge(
            "bounceledger_ledger_receipts", "Receipts in the ledger", registry=r
        )
        # Outbound webhooks: labelled by the endpoints' ids (configured; a removed
        # endpoint's series are removed) and by fixed outcomes.
        self.endpoint_failing = Gauge(
            "bounceledger_endpoint_failing",
            "1 while an outbound webhook endpoint gets nothing until an operator resumes it: "
            "every retry of an entry failed (failing), or it answered 410 (disabled)",
            ["endpoint"],
            registry=r,
        )
        self.endpoint_lag = Gauge(
            "bounceledger_endpoint_lag_entries",
            "Change-feed entries not yet delivered to an outbound webhook endpoint",
            ["endpoint"],
            registry=r,
        )
        self._endpoint_ids: set[str] = set()
        self.push_deliveries = Bounded(
            Counter(
                "bounceledger_push_deliveries",
                "Outbound webhook attempts by this instance, by outcome",
                ["outcome"],
                registry=r,
            ),
            (PUSH_OUTCOMES, OTHER),
        )

    def record_commit(self, report: CommitReport) -> None:
        """The store's on_commit hook."""
        log.debug(
            "group commit: %d receipts in %.2f ms",
            len(report.receipts),
            report.seconds * 1000,
            extra={"receipts": len(report.receipts), "ms": round(report.seconds * 1000, 3)},
        )
        self.commit_seconds.observe(report.seconds)
        self.commit_batch.observe(len(report.receipts))
        for receipt, result, wait in zip(
            report.receipts, report.results, report.waits, strict=True
        ):
            outcome = (
                "conflict" if result.conflict else "duplicate" if result.duplicate else "appended"
            )
            self.receipts.labels(receipt.source, outcome).inc()
            self.append_seconds.observe(wait)

    def record_projection(self, received_at: list[int]) -> None:
        """The projector's on_step hook: arrival times (µs since the epoch) just folded."""
        now = time.time()
        observe = self.projection_delay.observe
        for micros in received_at:
            observe(max(0.0, now - micros / 1e6))

    def record_set_aside(self, seq: int, reason: str) -> None:
        """The projector's on_set_aside hook."""
        self.set_aside.inc()

    def record_lag(self, seconds: float, *, behind: bool, stalled: bool) -> None:
        """The projection's lag, as the runtime's watch measured it, and whether this
        instance folds without the lease."""
        self.lag_seconds.set(seconds)
        self.behind.set(1 if behind else 0)
        self.lease_stalled.set(1 if stalled else 0)

    def refuse(self, source: str, reason: str) -> None:
        """Count a refusal; a source or reason outside the fixed sets is `unknown`/`other`."""
        self.refusals.labels(source, reason).inc()

    def record_push(self, outcome: str) -> None:
        """The deliverer's on_outcome hook: `delivered`, `failed` or `disabled`."""
        self.push_deliveries.labels(outcome).inc()

    async def _endpoints(self, runtime: Runtime) -> None:
        """Set the endpoints' gauges from their table (whichever instance delivers)."""
        listed = await endpoints.listing(runtime.store)
        for gone in self._endpoint_ids - {endpoint.id for endpoint in listed}:
            self.endpoint_failing.remove(gone)
            self.endpoint_lag.remove(gone)
        for endpoint in listed:
            stopped = endpoint.state in ("failing", "disabled")
            self.endpoint_failing.labels(endpoint.id).set(1 if stopped else 0)
            self.endpoint_lag.labels(endpoint.id).set(endpoint.lag)
        self._endpoint_ids = {endpoint.id for endpoint in listed}

    async def render(self, runtime: Runtime) -> bytes:
        """Refresh the gauges from the store, then the exposition text."""
        head = await runtime.store.last_seq()
        projected = runtime.projector.projected_seq
        self.ledger_receipts.set(head)
        self.lag_receipts.set(max(0, head - projected))
        await runtime.check_lag()
        counts = await runtime.suppression_counts()
        for reason in REASON_RANK:
            self.suppressions.labels(reason).set(counts.get(reason, 0))
        await self._per_stream(runtime)
        await self._endpoints(runtime)
        return generate_latest(self.registry)

    async def _per_stream(self, runtime: Runtime) -> None:
        """Set the per-stream gauge, counted again only when the projection moved (the
        count reads the whole list, grouped)."""
        policy = runtime.projector.mapper.policy
        at = (runtime.projector.projected_seq, runtime.projector.policy_hash)
        if self._stream_counts is None or self._stream_counts[0] != at:
            scopes = [scope for name in policy.streams if (scope := streams.scope(policy, name))]
            counts = await queries.stream_counts(runtime.store, scopes) if scopes else {}
            self._stream_counts = (at, counts)
        counts = self._stream_counts[1]
        for gone in self._stream_names - counts.keys():
            self.stream_suppressions.remove(gone)
        for name, count in counts.items():
            self.stream_suppressions.labels(name).set(count)
        self._stream_names = set(counts)
