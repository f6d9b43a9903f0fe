"""The receipt: one accepted HTTP delivery, kept verbatim."""

from __future__ import annotations

import msgspec


class NewReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the door hands to the store: the request exactly as it was accepted.

    `headers` holds only the headers that matter for audit (signature headers, user
    agent); the door never puts `Authorization` or any secret here.
    """

    source: str
    received_at: int  # microseconds since the Unix epoch, UTC, from the door's clock
    content_type: str
    body: bytes
    headers: dict[str, str] = {}
    peer: str | None = None
    # The door's identity of the delivery (SNS `MessageId`, Mailgun token), read from
    # the signed part of the body. Not chained and not stored in the receipt row: the
    # store keeps (source, identity) -> (seq, digest) beside it, so the same identity
    # with other bytes can be refused (a replay) after a restart or on another instance.
    identity: str | None = None


class Receipt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A committed receipt, as stored and chained. `erased_by` names the erasure record
    that removed its body (then empty) or replaced it with a redacted copy
    (ledger/erasures.py); the chain still covers the original's digest."""

    seq: int
    source: str
    received_at: int
    content_type: str
    body: bytes
    headers: dict[str, str]
    peer: str | None
    body_sha256: bytes
    chain_hash: bytes
    erased_by: int | None = None


class AppendResult(msgspec.Struct, frozen=True):
    """The outcome of one append: the receipt's sequence number, whether it was a
    byte-identical redelivery acknowledged without a second append, and whether its
    identity came with other bytes before (refused)."""

    seq: int
    duplicate: bool
    # The delivery's identity is already in the ledger (receipt `seq`) with other bytes:
    # nothing was appended (`duplicate` is true too), and the door refuses it.
    conflict: bool = False
