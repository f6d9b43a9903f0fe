"""The store interface every ledger backend implements, and opening one by its address."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from ledger.group import CommitReport
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sql import Tx

# The door identity of a stored delivery (source, body) -> identity or None (api/replays.py).
Identify = Callable[[str, bytes], str | None]


class Store(Protocol):
    """An append-only, hash-chained log of receipts, and transactions on the tables
    kept beside it (the projection, the quarantine) in the same database."""

    async def append(self, receipt: NewReceipt) -> AppendResult: ...
    async def drain(self) -> None: ...
    async def append_verbatim(
        self,
        receipts: Iterable[Receipt],
        progress: Callable[[int], None] | None = None,
        identify: Identify | None = None,
    ) -> int: ...
    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult: ...
    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]: ...
    async def arrivals(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, int]]: ...
    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]: ...
    async def get(self, seq: int) -> Receipt | None: ...
    async def last_seq(self) -> int: ...
    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]: ...
    async def wait_for_appends(self, timeout: float) -> None: ...
    async def recheck_writable(self) -> bool: ...
    async def projector_lease(self) -> bool: ...
    def reading(self) -> AbstractAsyncContextManager[Tx]: ...
    def writing(self, *, durable: bool = True) -> AbstractAsyncContextManager[Tx]: ...
    async def close(self) -> None: ...

    @property
    def write_error(self) -> str | None: ...
    @property
    def on_commit(self) -> Callable[[CommitReport], None] | None: ...
    @on_commit.setter
    def on_commit(self, hook: Callable[[CommitReport], None] | None) -> None: ...


def is_url(target: str | Path) -> bool:
    """Whether a `--db` value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def as_target(text: str | Path) -> str | Path:
    """A `--db` value as a store address: a URL stays text, anything else is a path."""
    return text if is_url(text) else Path(text)


async def open_store(target: str | Path, *, pool_min: int = 2, pool_max: int = 10) -> Store:
    """The ledger at `target`: a `postgresql://` URL (with a pool of `pool_min` to
    `pool_max` connections), or the path of a SQLite file."""
    if is_url(target):
        from ledger.postgres import PostgresStore  # asyncpg only when it is used

        return await PostgresStore.open(str(target), min_size=pool_min, max_size=pool_max)
    from ledger.sqlite import SQLiteStore

    return await SQLiteStore.open(Path(target))


def redact(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if user else f"{scheme}://{host}"
