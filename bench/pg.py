"""PostgreSQL for the bench: one fresh database per use, always dropped afterwards.

The server comes from BENCH_PG (default: the local server the project's machines run,
trust authentication). Each use creates `bl_bench_<pid>_<n>` on it and drops it in a
`finally` (WITH (FORCE): a server child that did not let go is no reason to leave it
behind). When the server cannot be reached, or its user may not create databases,
`unavailable` says why in one line and the steps skip their PostgreSQL rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ledger import open_store
from ledger.urls import redact

if TYPE_CHECKING:
    import asyncpg

ENV = "BENCH_PG"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT = 5.0  # seconds, for every connection the harness opens itself
_numbers = itertools.count(1)


def server_url() -> str:
    """The server to create databases on (any database of it: it is only connected to)."""
    return os.environ.get(ENV, "").strip() or DEFAULT_URL


def shown() -> str:
    """The server's URL without its password, for messages."""
    return redact(server_url())


def with_database(url: str, name: str) -> str:
    """The same server, user and options; another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _connect(url: str) -> asyncpg.Connection:
    import asyncpg  # a dependency of the project, but only the PostgreSQL rows need it

    return await asyncio.wait_for(
        asyncpg.connect(url, timeout=CONNECT_TIMEOUT), CONNECT_TIMEOUT + 1
    )


@functools.cache
def unavailable() -> str | None:
    """Why the PostgreSQL rows cannot be measured (one line), or None when they can:
    the server answers, its user may create databases, and commits are durable (a
    server with synchronous_commit off is refused by `bounceledger serve`)."""

    async def probe() -> str | None:
        conn = await _connect(server_url())
        try:
            may = await conn.fetchval(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            durable = await conn.fetchval("SHOW synchronous_commit")
        finally:
            await conn.close()
        if not may:
            return f"the user of {shown()} may not create databases"
        if durable == "off":
            return f"{shown()} has synchronous_commit = off (bounceledger refuses it)"
        return None

    try:
        return asyncio.run(probe())
    except (OSError, TimeoutError) as exc:
        return f"cannot reach {shown()} ({type(exc).__name__}: {exc}; set {ENV})"
    except Exception as exc:  # asyncpg's own: authentication, no such database, …
        return f"cannot use {shown()} ({type(exc).__name__}: {exc}; set {ENV})"


def skipped(step: str) -> bool:
    """Whether `step` skips its PostgreSQL rows; says why in one line when it does."""
    why = unavailable()
    if why is not None:
        print(f"  {step}: PostgreSQL rows skipped: {why}", flush=True)
    return why is not None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _admin(statement: str) -> None:
    conn = await _connect(server_url())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh, empty database on the server; yields its URL, drops it at the end."""
    name = f"bl_bench_{os.getpid()}_{next(_numbers)}"
    asyncio.run(_admin(f"CREATE DATABASE {_quote(name)}"))
    try:
        yield with_database(server_url(), name)
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))


def receipts(url: str) -> int:
    """The receipts in the ledger at `url` (sequence numbers are dense: the head's)."""

    async def count() -> int:
        store = await open_store(url, pool_min=1, pool_max=1)
        try:
            return await store.last_seq()
        finally:
            await store.close()

    return asyncio.run(count())


@dataclass(frozen=True)
class Size:
    """The database's size on disk (tables, indexes, TOAST; not the server's WAL),
    against the bodies it keeps."""

    receipts: int
    body_bytes: int
    database_bytes: int
    by_table: dict[str, int]  # bytes per table with its indexes and TOAST


def size(url: str) -> Size:
    """The database at `url` as it is (must not run while a server writes)."""

    async def measure() -> Size:
        conn = await _connect(url)
        try:
            count = await conn.fetchval("SELECT COUNT(*) FROM receipts")
            body = await conn.fetchval("SELECT COALESCE(SUM(size), 0) FROM bodies")
            total = await conn.fetchval("SELECT pg_database_size(current_database())")
            rows = await conn.fetch(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY 2 DESC"
            )
        finally:
            await conn.close()
        return Size(int(count), int(body), int(total), {r[0]: int(r[1]) for r in rows})

    return asyncio.run(measure())


def projected(url: str) -> tuple[int | None, int | None]:
    """(the projection's checkpoint, the last receipt's seq) of the database at `url`, in
    the schema its search path names (where `bounceledger serve` created the tables);
    None for what is not there. Must run after every server on it stopped."""

    async def read() -> tuple[int | None, int | None]:
        conn = await _connect(url)
        try:
            last = await conn.fetchval("SELECT MAX(seq) FROM receipts")
            checkpoint = None
            if await conn.fetchval("SELECT to_regclass('projection_meta') IS NOT NULL"):
                checkpoint = await conn.fetchval("SELECT seq FROM projection_meta WHERE id = 1")
        finally:
            await conn.close()
        return (
            None if checkpoint is None else int(checkpoint),
            None if last is None else int(last),
        )

    return asyncio.run(read())
