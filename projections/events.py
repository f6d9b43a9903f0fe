"""Normalized events: what a provider's webhook means, one event per recipient.

A tagged union of frozen Structs; the tag (`kind`) is the stored name, never a class
name. Times are microseconds since the Unix epoch, UTC. `seq` and `ord` place the
event in the ledger: the receipt it came from and its position among that receipt's
events; (at, seq, ord) orders a recipient's history.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from projections.state import Reason

BounceClass = Literal["hard", "soft"]


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    recipient: str
    at: int
    seq: int
    ord: int = 0
    source: str
    raw_kind: str
    event_id: str | None = None
    message_id: str | None = None
    diagnostic: str | None = None
    scope: str | None = None  # the list/topic/tag/stream of an (un)subscribe
    flags: tuple[str, ...] = ()  # what an operator should know: ambiguous, time replaced
    shared: int = 0  # how many recipients the event names without saying which (0: its own)
    streams: tuple[str, ...] = ()  # the policy's streams its evidence belongs to (none: all)

    @property
    def position(self) -> tuple[int, int, int]:
        """Where the event sorts in its recipient's history: event time, then ledger order."""
        return (self.at, self.seq, self.ord)


class Delivered(_Event, frozen=True, tag="delivered"):
    """`delivered`: the receiving server accepted the message (250)."""


class Bounce(_Event, frozen=True, tag="bounce"):
    """`bounce`: the message bounced, hard (permanent) or soft (transient)."""

    bounce_class: BounceClass


class Complaint(_Event, frozen=True, tag="complaint"):
    """`complaint`: the recipient marked the message as spam."""


class Unsubscribe(_Event, frozen=True, tag="unsubscribe"):
    """`unsubscribe`: the recipient unsubscribed (from `scope` of `source`)."""


class Resubscribe(_Event, frozen=True, tag="resubscribe"):
    """`resubscribe`: the recipient subscribed again, lifting the unsubscribe of the
    same source and scope, and no other."""


class ProviderSuppressed(_Event, frozen=True, tag="provider_suppressed"):
    """`provider_suppressed`: the provider refused to send because the address is on
    its own suppression list, without saying why."""


class Deferred(_Event, frozen=True, tag="deferred"):
    """`deferred`: delivery was delayed and will be retried; no effect on state."""


class OperatorSuppress(_Event, frozen=True, tag="operator_suppress"):
    """`operator_suppress`: an operator suppressed the address by hand."""

    actor: str
    note: str


class OperatorRelease(_Event, frozen=True, tag="operator_release"):
    """`operator_release`: an operator lifted causes of the address's suppression.

    `lifts` names the causes it lifts (None: a release recorded before releases named
    them, which lifts the bounce-class causes and the one reason every view showed then,
    the strongest); `seen` is the newest evidence receipt the operator saw (None: every
    receipt before the release's own). Evidence after `seen` is never lifted.
    """

    actor: str
    note: str
    lifts: tuple[Reason, ...] | None = None
    seen: int | None = None


class OperatorErase(_Event, frozen=True, tag="operator_erase"):
    """`operator_erase`: an operator erased an address's data; its `recipient` is the
    address's keyed hash, which stays suppressed for `reasons` (the causes active when
    it was erased; none: by the erasure itself, as `manual`)."""

    actor: str
    note: str
    reasons: tuple[Reason, ...] = ()


class Ignored(_Event, frozen=True, tag="ignored"):
    """`ignored`: kept in the ledger and the timeline, without effect under this policy."""

    reason: str


NormalizedEvent = (
    Delivered
    | Bounce
    | Complaint
    | Unsubscribe
    | Resubscribe
    | ProviderSuppressed
    | Deferred
    | OperatorSuppress
    | OperatorRelease
    | OperatorErase
    | Ignored
)


def kind_of(event: NormalizedEvent) -> str:
    """The event's stored kind tag (`bounce`, `operator_release`, …)."""
    return str(type(event).__struct_config__.tag)
