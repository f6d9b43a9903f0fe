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


class Cause(msgspec.Struct, frozen=True, array_like=True):
    """One active suppression reason: the event that set it (`at`, `seq`), and the
    supporting event that reached the ledger last (`last_at`, `last_seq`).

    An operator release lifts a cause only when every event supporting it was in the
    ledger before the release (`last_seq` < the release's seq): evidence that arrives
    later, whatever its event time, keeps the address suppressed. `scope` tells apart
    unsubscribes from different lists (`source:list`; empty for every other reason),
    so that a resubscribe lifts only the unsubscribe it answers.
    """

    reason: Reason
    at: int
    seq: int
    scope: str = ""
    last_at: int = 0
    last_seq: int = 0


class Counted(msgspec.Struct, frozen=True, array_like=True):
    """A soft bounce that counts toward the threshold: its event time and receipt."""

    at: int
    seq: int


class RecipientState(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger says about one address, under one policy."""

    email: str
    causes: tuple[Cause, ...] = ()  # active reasons, strongest first
    since: int | None = None  # when the current, unbroken suppression began
    soft_bounces: tuple[Counted, ...] = ()  # the soft bounces that count, oldest first
    position: tuple[int, int, int] = (0, 0, -1)  # (at, seq, ord) of the last event folded
    events: int = 0  # events folded

    @property
    def suppressed(self) -> bool:
        return bool(self.causes)

    @property
    def reason(self) -> Reason | None:
        return self.causes[0].reason if self.causes else None


encode_state = msgspec.msgpack.Encoder().encode
decode_state = msgspec.msgpack.Decoder(RecipientState).decode
