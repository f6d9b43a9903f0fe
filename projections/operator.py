"""Operator actions — manual suppress and release, and erasure — as receipts of source
`operator`.

They are appended to the ledger like any webhook, so a rebuild under any policy keeps
them; the policy's mappings and exclusions never apply to them. The body carries the
time of the action, so two identical actions are two receipts, not a redelivery. A
release also names the causes it lifts and the newest evidence receipt the operator
saw (projections/releases.py decides both; projections/fold.py applies them).

An erasure's record (projections/erasing.py writes it) names no address: only its keyed
hash (`subject`, projections/erasure_keys.py), the causes that were active, and the
bodies it removed or redacted (ledger/erasures.py: what `verify` holds them to).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ledger import NewReceipt, Store
from ledger.erasures import Removed
from projections.erasure_keys import is_subject
from projections.errors import DecodeFailed
from projections.recipients import normalize_recipient
from projections.state import Reason

SOURCE = "operator"
# The label an action's fact names each of its streams with (projections/streams.py).
STREAM_LABEL = "stream"
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
    # The streams it is about (projections/streams.py); none: every stream.
    streams: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.note.strip():
            raise ValueError("an operator action needs a note saying why")
        if not recipient(self.email):
            raise ValueError("an operator action needs an email address")


class Erasure(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The body of an erasure record: who erased whom (by keyed hash), when and why, the
    causes of suppression that were active (kept, under the keyed hash, by every later
    fold), and what it removed: bodies (`bodies`, in the ledger's words) and quarantined
    deliveries (`quarantined`, a count: they are outside the chain)."""

    action: Literal["erase"]
    subject: str
    actor: str
    note: str
    at: int
    request: str | None = None
    reasons: tuple[Reason, ...] = ()
    bodies: tuple[Removed, ...] = ()
    quarantined: int = 0

    def __post_init__(self) -> None:
        if not self.note.strip():
            raise ValueError("an erasure needs a note saying why")


class Retention(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The body of a retention record: the bodies the policy's `[retention]` let go (no
    address: the receipts and their digests), by whom, when, under which periods. It
    changes no verdict: only bodies that are no evidence of an active suppression go
    (projections/retention.py)."""

    action: Literal["retain"]
    actor: str
    note: str
    at: int
    periods: dict[str, str] = {}
    bodies: tuple[Removed, ...] = ()


class _Action(msgspec.Struct, frozen=True):
    action: str


def recipient(email: str) -> str:
    """Whom an action is about: a normalized address, or an erased address's keyed hash
    as it is (a release of an erased address names it so)."""
    return email if is_subject(email) else normalize_recipient(email)


_encode = msgspec.json.Encoder(order="deterministic").encode
_decode_action = msgspec.json.Decoder(_Action).decode
_decode = msgspec.json.Decoder(OperatorAction).decode
_decode_erasure = msgspec.json.Decoder(Erasure).decode
_decode_retention = msgspec.json.Decoder(Retention).decode


def action_body(
    action: Action,
    email: str,
    *,
    actor: str,
    note: str,
    at: int,
    lifts: tuple[Reason, ...] | None = None,
    seen: int | None = None,
    streams: tuple[str, ...] = (),
) -> bytes:
    """The receipt body for one operator action (ValueError when note or email is empty)."""
    return _encode(
        OperatorAction(
            action, recipient(email), actor, note.strip(), at, lifts, seen, tuple(sorted(streams))
        )
    )


def record_receipt(record: Erasure | Retention) -> NewReceipt:
    """The receipt of an erasure or retention record."""
    return NewReceipt(
        source=SOURCE, received_at=record.at, content_type=CONTENT_TYPE, body=_encode(record)
    )


def decode(body: bytes) -> OperatorAction | Erasure | Retention:
    """The action in an operator receipt's body."""
    try:
        action = _decode_action(body).action
        if action == "erase":
            return _decode_erasure(body)
        if action == "retain":
            return _decode_retention(body)
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
    streams: tuple[str, ...] = (),
) -> int:
    """Append one operator action to the ledger (for `streams` of the policy; none: every
    stream); returns its receipt's sequence number.

    Raises ValueError when the note or the address is empty (nothing is appended).
    """
    body = action_body(
        action, email, actor=actor, note=note, at=at, lifts=lifts, seen=seen, streams=streams
    )
    result = await store.append(
        NewReceipt(source=SOURCE, received_at=at, content_type=CONTENT_TYPE, body=body)
    )
    return result.seq
