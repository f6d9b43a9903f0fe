"""Suppression state of one recipient: a frozen value the fold returns anew."""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

# The suppression reasons, strongest first: of several active reasons, the strongest is
# the one reported.
Reason = Literal[
    "complaint",
    "hard_bounce",
    "manual",
    "unsubscribe",
    "provider_suppressed",
    "soft_bounce_threshold",
]

REASON_RANK: tuple[Reason, ...] = get_args(Reason)
# What a release lifts unless told otherwise: the causes that say the mailbox does not
# work. Every other cause is someone's "no" (a complaint, an unsubscribe, an operator's
# manual suppression, a provider's list that may hold complaints): a release lifts it
# only when it names it (projections/releases.py).
BOUNCE_CLASS: tuple[Reason, ...] = ("hard_bounce", "soft_bounce_threshold")
NAMED_ONLY: tuple[Reason, ...] = tuple(r for r in REASON_RANK if r not in BOUNCE_CLASS)


class Counted(msgspec.Struct, frozen=True, array_like=True):
    """An event that counts: its event time and its receipt."""

    at: int
    seq: int


class Cause(msgspec.Struct, frozen=True, array_like=True):
    """One active suppression reason and the evidence for it.

    `at` and `seq` point at the evidence shown (the earliest by event time); `support`
    holds every event that supports the reason, in history order (at most
    `SUPPORT_KEPT`). An operator release lifts a cause only when all of its support was
    in the ledger before the release (a lower seq): evidence that arrives later,
    whatever its event time, keeps the address suppressed. `scope` tells apart
    unsubscribes from different lists (`source:list`; empty for every other reason), so
    that a resubscribe lifts only the unsubscribe it answers. `streams` names the kinds
    of mail the evidence belongs to (the policy's streams its labels match: projections/
    streams.py); empty, it is global — every bounce is.
    """

    reason: Reason
    at: int
    seq: int
    scope: str = ""
    support: tuple[Counted, ...] = ()
    streams: tuple[str, ...] = ()


# How many supporting events a cause, and how many counted soft bounces a state, keeps
# at most: far more than any history needs for a release to count right, and bounded,
# so a mailbox that bounces for years does not grow its state without end.
SUPPORT_KEPT = 64


class RecipientState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the ledger says about one address, under one policy."""

    email: str
    causes: tuple[Cause, ...] = ()  # active reasons, strongest first
    since: int | None = None  # when the current, unbroken suppression began
    soft_bounces: tuple[Counted, ...] = ()  # the soft bounces that count, oldest first
    position: tuple[int, int, int] = (0, 0, -1)  # (at, seq, ord) of the last event folded
    events: int = 0  # events folded
    # Bounces folded that named several recipients (projections/mapping.py): while there
    # are any, a delivery of the same message may take one back, so the projector
    # refolds the address from its whole history when a delivery arrives.
    shared_bounces: int = 0

    @property
    def suppressed(self) -> bool:
        return bool(self.causes)

    @property
    def reason(self) -> Reason | None:
        return self.causes[0].reason if self.causes else None

    @property
    def newest_evidence(self) -> int:
        """The receipt of the newest evidence the state rests on (0: none) — what an
        operator saw before acting: a release may name it as its precondition, and is
        refused when newer evidence has arrived since."""
        supports = (c.seq for cause in self.causes for c in cause.support)
        return max((*supports, *(c.seq for c in self.soft_bounces)), default=0)


encode_state = msgspec.msgpack.Encoder().encode
decode_state = msgspec.msgpack.Decoder(RecipientState).decode
