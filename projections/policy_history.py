"""Policy changes as records in the ledger: who, when, why, and the TOML verbatim.

A change is a receipt of source `policy`, appended in the same transaction as the
rebuild's swap that puts it into effect (projections/rebuild.py): the ledger's latest
policy record and the live projection's policy never disagree, and every instance
serving the projection follows it without a restart. The fold ignores these receipts
(no recipient); `history` lists them, and a projection started afresh on a ledger that
has them (a migration, a restore) takes the latest.

(Called `policy_history`, not `policies`, beside `projections/policy.py`: that module is
the policy itself; this one is the record of its changes.)
"""

from __future__ import annotations

import msgspec

from ledger import NewReceipt, Store
from projections.errors import DecodeFailed
from projections.policy import Policy, policy_hash
from projections.recipients import format_time

SOURCE = "policy"
CONTENT_TYPE = "application/json"


class PolicyChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of a policy receipt."""

    policy_hash: str  # as the code of the day computed it
    policy: Policy  # what is folded from now on, decoded
    toml: str  # the file verbatim ("" when the policy did not come from a file)
    actor: str
    note: str
    at: int  # microseconds since the Unix epoch
    origin: str = ""  # the file's name, as given

    def __post_init__(self) -> None:
        if not self.note.strip():
            raise ValueError("a policy change needs a note saying why (--note)")
        if not self.actor.strip():
            raise ValueError("a policy change needs the name of who makes it")


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """A policy change as the ledger holds it: the receipt it is, and what it says."""

    seq: int
    received_at: int
    change: PolicyChange


_encode = msgspec.json.Encoder(order="deterministic").encode
_decode = msgspec.json.Decoder(PolicyChange).decode


def change_receipt(
    policy: Policy, toml: str, *, actor: str, note: str, at: int, origin: str = ""
) -> NewReceipt:
    """The receipt recording that `policy` (read from `toml`) is put into effect.

    Raises ValueError when the note or the actor is empty."""
    change = PolicyChange(
        policy_hash(policy), policy, toml, actor.strip(), note.strip(), at, origin
    )
    return NewReceipt(
        source=SOURCE, received_at=at, content_type=CONTENT_TYPE, body=_encode(change)
    )


def decode(body: bytes) -> PolicyChange:
    """The change in a policy receipt's body."""
    try:
        return _decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise DecodeFailed(f"not a policy change: {exc}") from exc


async def history(store: Store) -> list[Recorded]:
    """Every policy change in the ledger, oldest first (an unreadable one is skipped)."""
    found: list[Recorded] = []
    after = 0
    while page := await store.list_receipts(after_seq=after, limit=500, source=SOURCE):
        for receipt in page:
            try:
                change = decode(receipt.body)
            except DecodeFailed:
                continue
            found.append(Recorded(seq=receipt.seq, received_at=receipt.received_at, change=change))
        after = page[-1].seq
    return found


async def latest(store: Store) -> Policy | None:
    """The policy of the ledger's latest readable change, or None when it has none."""
    recorded = await history(store)
    return recorded[-1].change.policy if recorded else None


class PolicyEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One policy change as `audit policies` shows it."""

    receipt: int
    at: str
    policy_hash: str
    actor: str
    note: str
    origin: str
    active: bool
    toml: str


class PolicyHistory(msgspec.Struct, frozen=True, kw_only=True):
    """The active policy's hash, and every change that was recorded, oldest first."""

    active_hash: str
    recorded: bool  # whether the active policy is the latest recorded change
    changes: list[PolicyEntry]


async def history_view(store: Store, active: Policy) -> PolicyHistory:
    """The policy history, marking the change whose policy is the active one."""
    recorded = await history(store)
    current = bool(recorded) and recorded[-1].change.policy == active
    changes = [
        PolicyEntry(
            receipt=item.seq,
            at=format_time(item.change.at) or "",
            policy_hash=item.change.policy_hash,
            actor=item.change.actor,
            note=item.change.note,
            origin=item.change.origin,
            active=current and index == len(recorded) - 1,
            toml=item.change.toml,
        )
        for index, item in enumerate(recorded)
    ]
    return PolicyHistory(active_hash=policy_hash(active), recorded=current, changes=changes)
