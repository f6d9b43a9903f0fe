"""The store interface every ledger backend implements, and opening one by its address."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from ledger.records import AppendResult, NewReceipt, Receipt


class Store(Protocol):
    """An append-only, hash-chained log of receipts."""

    async def append(self, receipt: NewReceipt) -> AppendResult: ...
    async def append_verbatim(
        self, receipts: Iterable[Receipt], progress: Callable[[int], None] | None = None
    ) -> int: ...
    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]: ...
    async def get(self, seq: int) -> Receipt | None: ...
    async def last_seq(self) -> int: ...
    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]: ...
    async def close(self) -> None: ...


def is_url(target: str | Path) -> bool:
    """Whether a `--db` value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


async def open_store(target: str | Path) -> Store:
    """The ledger at `target`: a `postgresql://` URL, or the path of a SQLite file."""
    if is_url(target):
        from ledger.postgres import PostgresStore  # asyncpg only when it is used

        return await PostgresStore.open(str(target))
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
