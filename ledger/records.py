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


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """A committed receipt, as stored and chained."""

    seq: int
    source: str
    received_at: int
    content_type: str
    body: bytes
    headers: dict[str, str]
    peer: str | None
    body_sha256: bytes
    chain_hash: bytes


class AppendResult(msgspec.Struct, frozen=True):
    """The outcome of one append: the receipt's sequence number, and whether it was a
    byte-identical redelivery acknowledged without a second append."""

    seq: int
    duplicate: bool
