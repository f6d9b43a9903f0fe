"""Bodies removed by a recorded act: what the ledger needs to know of an erasure record.

The chain covers each body's digest, not its bytes (ledger/chain.py), so a body can leave
body storage without breaking the chain — but only by a record that is itself in the
chain. An erasure (projections/operator.py writes it) is a receipt whose JSON body holds
`bodies`: each receipt it removed or redacted, with that body's digest and, for a
redacted one, the digest of the copy kept in its place. The row in `bodies` then says
which record changed it (`erased_by`), and `verify` accepts the change only when that
record names the receipt, its digest and what was kept: a body missing or altered
without such a record is a broken ledger, as before.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

_Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class Removed(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One body an erasure record removed: its receipt, its digest (hex), and the digest of
    the redacted copy kept in its place (None: nothing is kept)."""

    seq: int
    sha256: _Digest
    kept: _Digest | None = None


class _Record(msgspec.Struct, frozen=True):
    bodies: tuple[Removed, ...] = ()


_decode = msgspec.json.Decoder(_Record).decode


def removals(body: bytes) -> tuple[Removed, ...]:
    """The bodies a record's body says it removed (none when it is not such a record)."""
    try:
        return _decode(body).bodies
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ()


class Erased(msgspec.Struct, frozen=True):
    """What `verify` holds a body changed by record `by` to: the digest the chain covers
    and the digest of the copy kept (None: no copy is kept, the stored body is empty)."""

    by: int
    sha256: bytes
    kept: bytes | None


def confirmed(records: dict[int, bytes], erased: dict[int, int]) -> dict[int, Erased]:
    """Of the bodies `erased` says were changed (seq -> the record's seq), those the record
    (seq -> its body, `records`) names, and how: a body whose record does not name it, or
    comes before it, is left out (and fails verification)."""
    named: dict[int, Erased] = {}
    for by, body in records.items():
        for removed in removals(body):
            if removed.seq < by and erased.get(removed.seq) == by:
                kept = None if removed.kept is None else bytes.fromhex(removed.kept)
                named[removed.seq] = Erased(by, bytes.fromhex(removed.sha256), kept)
    return named
