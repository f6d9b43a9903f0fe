"""The store's interface, split by the role each consumer needs, with every method's
contract written here once (the backends carry no copies):

- `ReceiptLog`: append receipts and read them back — the door, the CLI, the audit;
- `Tailing`: follow what is appended — the projector;
- `Transactions`: transactions on the tables kept beside the log (the projection, the
  quarantine, the console's sign-outs) in the same database, through `ledger.sql.Tx`;
- `Lifecycle`: what the service watches and ends — commits, writability, exposure, close.

`Store` is all four; every backend implements it (ledger/sqlite.py, ledger/postgres.py,
most of it once in ledger/sqlstore.py), and one contract suite holds every backend to
these words (tests/contract).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ledger.body_store import BodyStats
from ledger.group import CommitReport
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sql import Tx

# The door identity of a stored delivery (source, body) -> identity or None
# (api/door_identity.py).
Identify = Callable[[str, bytes], str | None]


class ReceiptLog(Protocol):
    """An append-only, hash-chained log of receipts."""

    async def append(self, receipt: NewReceipt) -> AppendResult:
        """Append one receipt; returns once it is durably committed (group-committed with
        others), or raises StoreUnavailable — a caller never acknowledges a receipt this
        did not return for. A body already stored from the same source is a redelivery:
        the first copy's sequence number, `duplicate`; a door identity already stored with
        other bytes is a replay: `conflict`, nothing stored."""
        ...

    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult:
        """Append one receipt inside a durable `writing()` transaction of this store (it
        commits with it); TypeError for any other transaction."""
        ...

    async def append_verbatim(
        self,
        receipts: Iterable[Receipt],
        progress: Callable[[int], None] | None = None,
        identify: Identify | None = None,
    ) -> int:
        """Append already-chained receipts (an import, a migration), each continuing the
        chain, all in one transaction: AppendRejected names the first that does not (or
        whatever `receipts` raises), and nothing is written then. `progress` hears the
        running count after each chunk; `identify` gives the door identities to record
        beside them. Returns how many were appended."""
        ...

    def erasing(self) -> AbstractAsyncContextManager[Tx]:
        """A durable write transaction that holds the log's head: nothing is appended
        by anyone until it ends, so what it reads of the log is all of it (an erasure)."""
        ...

    async def erase_in(
        self, tx: Tx, record: NewReceipt, changes: Mapping[int, bytes | None]
    ) -> AppendResult:
        """Inside an `erasing()` transaction: append the erasure record `record` and
        replace each body `changes` names (seq -> the redacted copy to keep; None:
        nothing is kept), each then naming the record (`Receipt.erased_by`). The record's
        body must name exactly these changes with the digests the chain holds
        (ledger/erasures.py): AppendRejected otherwise, and nothing is written. A body an
        earlier record redacted may be changed again: the newest record answers for it."""
        ...

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]:
        """Receipts with seq > after_seq, in order, at most `limit` (a body an erasure
        removed is empty, one it redacted is the copy kept: `Receipt.erased_by`)."""
        ...

    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]:
        """Receipts in sequence order after `after_seq`, of `source` when given, received
        in [since, until)."""
        ...

    async def get(self, seq: int) -> Receipt | None:
        """One receipt by sequence number."""
        ...

    async def last_seq(self) -> int:
        """The newest receipt's sequence number (0 when empty)."""
        ...

    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]:
        """Recompute the chain and read back every body: (receipts checked, the first
        whose stored hash does not match its fields and its predecessor's hash, or whose
        body is missing, cannot be read back or does not hash to its digest — unless an
        erasure record that follows it names that body and what it left in its place —
        or None)."""
        ...

    async def body_stats(self) -> BodyStats:
        """What body storage holds (ledger/body_store.py)."""
        ...

    async def train_bodies(self, sources: Iterable[str] | None = None) -> dict[str, bool]:
        """Train a body dictionary for each of `sources` (None: each source due one: it
        has TRAIN_AFTER bodies stored without one) on its newest bodies; that source's
        new bodies are compressed with it from then on. The store does this by itself,
        in the background, after a commit makes one due. Whether each got one (too few
        bodies: not yet)."""
        ...


class Tailing(Protocol):
    """Following the log as it grows: sequence numbers are dense and in commit order, so a
    reader that remembers the last one it saw never skips one that commits later."""

    async def arrivals(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, int]]:
        """(seq, received_at) of the receipts with seq > after_seq, in order, at most
        `limit`: what a tailer needs of receipts whose contents it already holds."""
        ...

    async def wait_for_appends(self, timeout: float) -> None:
        """Wait until something was appended — by this process, or by another one on the
        same database where the backend can hear it — or `timeout` seconds."""
        ...

    async def leader_lease(self) -> bool:
        """Whether this process holds the lease that lets one process of many do the
        tailing work (taking it when it is free). Correctness must never rest on it."""
        ...


class Transactions(Protocol):
    """Transactions on the tables kept beside the log, in the same database."""

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        """A read transaction: every statement inside sees the same committed state."""
        ...

    def writing(self, *, durable: bool = True) -> AbstractAsyncContextManager[Tx]:
        """A write transaction, committed when the block ends, rolled back if it raises;
        database errors surface as StoreUnavailable (ValueRefused for a value the
        database refuses). `durable=False` (derived data only) may commit without waiting
        for the disk: atomic and in order all the same, synced with the next durable
        commit; a crash may take back the last such commits, re-derived from the log."""
        ...


class Lifecycle(Protocol):
    """What the service watches of a store, and how it ends."""

    @property
    def write_error(self) -> str | None:
        """The last group commit's failure; None once one succeeds."""
        ...

    @property
    def on_commit(self) -> Callable[[CommitReport], None] | None:
        """Called after every group commit (for metrics); must not raise."""
        ...

    @on_commit.setter
    def on_commit(self, hook: Callable[[CommitReport], None] | None) -> None: ...

    async def recheck_writable(self) -> bool:
        """After a failed commit: try a real (empty) append and a one-row write again, and
        clear `write_error` when both succeed."""
        ...

    async def exposure(self) -> list[str]:
        """What lets others interfere with this ledger (warnings for the operator)."""
        ...

    async def forget_freed(self) -> None:
        """After an erasure: leave nothing it removed readable in the database's own files
        where the backend can (SQLite: the WAL is checkpointed and truncated; freed pages
        are zeroed as they are freed); StoreUnavailable when it could not."""
        ...

    async def drain(self) -> None:
        """Wait until every queued append is committed (or has failed)."""
        ...

    async def close(self) -> None:
        """Finish queued appends, then close every connection."""
        ...


class Store(ReceiptLog, Tailing, Transactions, Lifecycle, Protocol):
    """A ledger backend: the receipt log, tailing, transactions and lifecycle."""
