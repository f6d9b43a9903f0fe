"""Operator actions — manual suppress and release — as receipts of source `operator`.

They are appended to the ledger like any webhook, so a rebuild under any policy keeps
them; the policy's mappings and exclusions never apply to them. The body carries the
time of the action, so two identical actions are two receipts, not a redelivery. A
release also names the causes it lifts and the newest evidence receipt the operator
saw (projections/releases.py decides both; projections/fold.py applies them).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ledger import NewReceipt, Store
from projections.errors import DecodeFailed
from projections.recipients import normalize_recipient
from projections.state import Reason

SOURCE = "operator"
CONTENT_TYPE = "application/json"

Action = Literal["suppress", "release"]


class OperatorAction(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The body of an operator receipt. A release's `lifts` and `seen` are left out of
    bodies written before releases named them (those lift what projections/fold.py
    says a release of that time lifted)."""

    action: Action
    email: str
    actor: str
    note: str
    at: int  # microseconds since the Unix epoch: when the operator acted
    lifts: tuple[Reason, ...] | None = None  # release: the causes it lifts
    seen: int | None = None  # release: the newest evidence receipt the operator saw

    def __post_init__(self) -> None:
        if not self.note.strip():
            raise ValueError("an operator action needs a note saying why")
        if not normalize_recipient(self.email):
            raise ValueError("an operator action needs an email address")


_encode = msgspec.json.Encoder(order="deterministic").encode
_decode = msgspec.json.Decoder(OperatorAction).decode


def action_body(
    action: Action,
    email: str,
    *,
    actor: str,
    note: str,
    at: int,
    lifts: tuple[Reason, ...] | None = None,
    seen: int | None = None,
) -> bytes:
    """The receipt body for one operator action (ValueError when note or email is empty)."""
    return _encode(
        OperatorAction(action, normalize_recipient(email), actor, note.strip(), at, lifts, seen)
    )


def decode(body: bytes) -> OperatorAction:
    """The action in an operator receipt's body."""
    try:
        return _decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DecodeFailed(f"not an operator action: {exc}") from exc


async def record(
    store: Store,
    action: Action,
    email: str,
    *,
    actor: str,
    note: str,
    at: int,
    lifts: tuple[Reason, ...] | None = None,
    seen: int | None = None,
) -> int:
    """Append one operator action to the ledger; returns its receipt's sequence number.

    Raises ValueError when the note or the address is empty (nothing is appended).
    """
    body = action_body(action, email, actor=actor, note=note, at=at, lifts=lifts, seen=seen)
    result = await store.append(
        NewReceipt(source=SOURCE, received_at=at, content_type=CONTENT_TYPE, body=body)
    )
    return result.seq
