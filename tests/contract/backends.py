"""The backends the contract suites run on: a `Ledgers` opens store instances on named
ledgers of one backend (the same name is the same ledger: a reopen, or a second
instance beside the first), runs SQL on a ledger with the database's own client past
the store (`execute_raw`), and closes every store it opened at the end."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ledger import Store
from ledger.sqlite import SQLiteStore
from tests import pg


class Ledgers:
    """Opens store instances on named ledgers of one backend; closes them all at the end."""

    # What the database's own client raises when a statement is refused.
    refused: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._open: list[Store] = []
        self._fresh = itertools.count()

    async def _open_instance(self, name: str) -> Store:
        raise NotImplementedError

    async def execute_raw(self, name: str, sql: str) -> None:
        raise NotImplementedError

    async def open(self, name: str) -> Store:
        store = await self._open_instance(name)
        self._open.append(store)
        return store

    async def fresh(self) -> Store:
        return await self.open(f"fresh-{next(self._fresh)}")

    async def close(self, store: Store) -> None:
        self._open.remove(store)
        await store.close()

    async def close_all(self) -> None:
        while self._open:
            await self._open.pop().close()


class SQLiteLedgers(Ledgers):
    refused = (sqlite3.DatabaseError,)

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.db"

    async def _open_instance(self, name: str) -> Store:
        return await SQLiteStore.open(self.path(name))

    async def execute_raw(self, name: str, sql: str) -> None:
        conn = sqlite3.connect(self.path(name), timeout=10)
        try:
            with conn:
                conn.execute(sql)
        finally:
            conn.close()


class PostgresLedgers(Ledgers):
    """Each ledger name is a fresh schema in the run's test database."""

    def __init__(self, fresh_url: Callable[[], str]) -> None:
        super().__init__()
        import asyncpg

        self.refused = (asyncpg.PostgresError,)
        self._fresh_url = fresh_url
        self._urls: dict[str, str] = {}

    def url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self._fresh_url()
        return self._urls[name]

    async def _open_instance(self, name: str) -> Store:
        from ledger.postgres import PostgresStore

        return await PostgresStore.open(self.url(name))

    async def execute_raw(self, name: str, sql: str) -> None:
        conn = await pg.connect(self.url(name))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


class OnSQLite:
    """Mixin: a contract class's `ledgers` are SQLite files in the test's directory."""

    @pytest.fixture
    async def ledgers(self, tmp_path: Path) -> AsyncIterator[Ledgers]:
        ledgers = SQLiteLedgers(tmp_path)
        yield ledgers
        await ledgers.close_all()


class OnPostgres:
    """Mixin: a contract class's `ledgers` are fresh schemas in the run's PostgreSQL
    database (mark the class `postgres`)."""

    @pytest.fixture
    async def ledgers(self, pg_fresh_url: Callable[[], str]) -> AsyncIterator[Ledgers]:
        ledgers = PostgresLedgers(pg_fresh_url)
        yield ledgers
        await ledgers.close_all()
