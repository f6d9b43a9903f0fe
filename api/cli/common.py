"""What every command shares: the --db/--policy/--json options, the run wrapper, the projection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from api.settings import DEFAULT_DB
from ledger import LedgerError, SQLiteStore
from projections import Policy, PolicyInvalid, PolicyMismatch, Projector, read_policy
from projections.errors import DecodeFailed
from projections.recipients import parse_time

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def db_option(func: F) -> F:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BOUNCELEDGER_DB",
        default=DEFAULT_DB,
        show_default=True,
        help="The ledger's SQLite file (env BOUNCELEDGER_DB).",
    )(func)


def policy_option(func: F) -> F:
    return click.option(
        "--policy",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BOUNCELEDGER_POLICY",
        default=None,
        help="Policy TOML file (env BOUNCELEDGER_POLICY); built-in defaults without one.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def load(path: Path | None) -> Policy:
    """The policy at `path` (defaults when None); a bad file is a one-line error."""
    try:
        return read_policy(path)
    except PolicyInvalid as exc:
        raise click.ClickException(str(exc)) from exc


def when(text: str | None, option: str) -> int | None:
    """A time given on the command line, as microseconds."""
    if text is None:
        return None
    micros = parse_time(text)
    if micros is None:
        raise click.BadParameter(f"not a time: {text!r} (use ISO-8601)", param_hint=option)
    return micros


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; library errors become one-line messages with exit status 1."""
    try:
        return asyncio.run(coroutine)
    except (LedgerError, PolicyMismatch, PolicyInvalid, DecodeFailed, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def require_ledger(db: Path) -> None:
    if not db.exists():
        raise click.ClickException(f"no ledger at {db}: start `bounceledger serve` or pass --db")


@contextlib.asynccontextmanager
async def opened(db: Path, *, create: bool = False) -> AsyncIterator[SQLiteStore]:
    """The store at `db`, which must exist unless `create`."""
    if not create:
        require_ledger(db)
    store = await SQLiteStore.open(db)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def projection(
    db: Path, policy: Policy, *, create: bool = False
) -> AsyncIterator[tuple[SQLiteStore, Projector]]:
    """The store with its projection brought up to date under `policy`.

    Refuses (PolicyMismatch) when the projection was built under another policy.
    """
    async with opened(db, create=create) as store:
        projector = Projector(store, policy)
        await projector.start()
        await projector.catch_up()
        yield store, projector
