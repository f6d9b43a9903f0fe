"""Reaching the test PostgreSQL server: one database per run, one schema per test.

The server's address comes from BOUNCELEDGER_TEST_PG (default: the local server the
project's machines run). Each run creates its own database `bl_test_<pid>_<hex>` and
drops it at the end; each test gets a fresh schema in it, selected through the URL
(`?search_path=t_<hex>`, which asyncpg passes on as a server setting) and dropped after.

Without a server, the tests that need one are skipped and the run says so in one line,
unless BOUNCELEDGER_TEST_PG_REQUIRED=1 (CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import asyncpg

ENV_URL = "BOUNCELEDGER_TEST_PG"
ENV_REQUIRED = "BOUNCELEDGER_TEST_PG_REQUIRED"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT = 3.0  # seconds, for every connection the harness opens
SKIP_PREFIX = "PostgreSQL tests skipped"

T = TypeVar("T")


def server_url() -> str:
    return os.environ.get(ENV_URL) or DEFAULT_URL


def required() -> bool:
    return os.environ.get(ENV_REQUIRED, "") not in ("", "0")


def redacted(url: str) -> str:
    """The URL without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server and options, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def with_search_path(url: str, schema: str) -> str:
    """The same database, with `schema` as the search path of every connection."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def connect(url: str) -> asyncpg.Connection:
    """A raw asyncpg connection to `url`, giving up after CONNECT_TIMEOUT seconds."""
    import asyncpg

    return await asyncio.wait_for(
        asyncpg.connect(url, timeout=CONNECT_TIMEOUT), CONNECT_TIMEOUT + 1
    )


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a fresh event loop in a thread of its own.

    Sync fixtures use this, so they never touch the event loop pytest-asyncio manages.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        async def main() -> T:
            return await make()

        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-harness")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def execute(url: str, *statements: str) -> None:
    conn = await connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class _State:
    """What the session learned about the server (for the one-line summary)."""

    unavailable: str | None = None


STATE = _State()


def _unreachable(url: str, exc: BaseException) -> str:
    import asyncpg

    where = redacted(url)
    detail = f"{type(exc).__name__}: {str(exc).strip() or 'no detail'}"
    if isinstance(exc, asyncpg.PostgresError):  # a server answered, but said no
        return f"the server at {where} cannot be used for tests ({detail})"
    if isinstance(exc, TimeoutError):
        detail = f"no answer in {CONNECT_TIMEOUT:g} s"
    return f"no server at {where} ({detail})"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this test run (URL), dropped WITH (FORCE) at the end."""
    server = server_url()
    name = f"bl_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        run_sync(lambda: execute(server, f"CREATE DATABASE {quote_ident(name)}"))
    except Exception as exc:
        reason = _unreachable(server, exc)
        if required():
            pytest.fail(
                f"PostgreSQL is required ({ENV_REQUIRED}=1) but there is {reason}; "
                f"start it, or point {ENV_URL} at one",
                pytrace=False,
            )
        STATE.unavailable = reason
        pytest.skip(f"{SKIP_PREFIX}: {reason}")
    try:
        yield with_database(server, name)
    finally:
        run_sync(
            lambda: execute(server, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        )


@pytest.fixture
def pg_fresh_url(pg_database: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty schemas for this test (URLs with `?search_path=t_<hex>`),
    every one dropped after the test."""
    schemas: list[str] = []

    def make() -> str:
        schema = f"t_{secrets.token_hex(6)}"
        run_sync(lambda: execute(pg_database, f"CREATE SCHEMA {schema}"))
        schemas.append(schema)
        return with_search_path(pg_database, schema)

    yield make
    if schemas:
        # A connection the test leaked could hold locks: do not wait on it for long, the
        # database is dropped WITH (FORCE) at the end of the run anyway.
        drops = [f"DROP SCHEMA IF EXISTS {schema} CASCADE" for schema in schemas]
        try:
            run_sync(lambda: execute(pg_database, "SET lock_timeout = '5s'", *drops))
        except Exception as exc:
            if "lock timeout" not in str(exc):
                raise


@pytest.fixture
def pg_url(pg_fresh_url: Callable[[], str]) -> str:
    """A fresh, empty schema for this test: the database URL with `?search_path=t_<hex>`."""
    return pg_fresh_url()


def terminal_summary(terminalreporter: Any) -> None:
    """One line when tests were skipped for want of a server, saying how to enable them."""
    if STATE.unavailable is None:
        return
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if SKIP_PREFIX in str(getattr(report, "longrepr", ""))
    ]
    terminalreporter.write_line(
        f"{SKIP_PREFIX} ({len(skipped)}): {STATE.unavailable}. "
        f"Set {ENV_URL}=postgresql://USER@HOST:PORT/DB, or run `make pg`.",
        yellow=True,
    )
