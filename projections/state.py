"""Suppression state of one recipient: a frozen value the fold returns anew."""

from __future__ import annotations

from typing import Literal

import msgspec

Reason = Literal["complaint", "hard_bounce", "manual", "unsubscribe", "soft_bounce_threshold"]

# The strongest active reason is the one reported; order of this tuple is the ranking.
REASON_RANK: tuple[Reason, ...] = (
    "complaint",
    "hard_bounce",
    "manual",
    "unsubscribe",
    "soft_bounce_threshold",
)


class Cause(msgspec.Struct, frozen=True, array_like=True):
    """One active suppression reason and the event that set it."""

    reason: Reason
    at: int
    seq: int


class RecipientState(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger says about one address, under one policy."""

    email: str
    causes: tuple[Cause, ...] = ()  # active reasons, strongest first
    since: int | None = None  # when the current, unbroken suppression began
    soft_bounces: tuple[int, ...] = ()  # event times of the soft bounces that count
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
