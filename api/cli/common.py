"""What every command shares: the --db/--policy/--json options, the run wrapper, the projection."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from api.settings import DEFAULT_DB
from ledger import LedgerError, Store, as_target, is_database_url, open_store
from ledger.urls import redact, url_problem
from projections import Policy, PolicyInvalid, ProjectionError, Projector, read_policy
from projections.erasure_keys import ErasureKey, load_key
from projections.recipients import parse_time

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def local_user() -> str:
    """Who runs this command, for what it records: the login name, or "unknown" where
    there is none (`getpass.getuser()` raises in a container without a passwd entry or
    $USER, and a command must not fail for that)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class StoreAddress(click.ParamType):  # type: ignore[type-arg]
    """A `--db` value: a `postgresql://` URL (kept as text), or a SQLite file's path."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        text = str(value).strip()
        if not text:
            self.fail("empty: give a SQLite file's path or a postgresql:// URL", param, ctx)
        if text.lower().startswith(("postgres:", "postgresql:")) and not is_database_url(text):
            self.fail(
                f"not a PostgreSQL URL: {where(text)} (postgresql://USER@HOST:PORT/DB)", param, ctx
            )
        problem = url_problem(text) if is_database_url(text) else None
        if problem is not None:
            # refused before the driver reads it: its error could quote the password
            self.fail(f"not a readable PostgreSQL URL: {problem}: {where(text)}", param, ctx)
        target = as_target(text)
        if isinstance(target, Path) and target.is_dir():
            self.fail(f"{text} is a directory: give the ledger's file", param, ctx)
        return target


def db_option(func: F) -> F:
    return click.option(
        "--db",
        type=StoreAddress(),
        envvar="BOUNCELEDGER_DB",
        default=DEFAULT_DB,
        show_default=True,
        help="The ledger: a SQLite file, or a postgresql:// URL (env BOUNCELEDGER_DB).",
    )(func)


def policy_option(func: F) -> F:
    return click.option(
        "--policy",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BOUNCELEDGER_POLICY",
        default=None,
        help="Policy TOML file (env BOUNCELEDGER_POLICY); without one, the ledger's active policy.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def stream_option(func: F) -> F:
    return click.option(
        "--stream",
        metavar="NAME",
        help="The kind of mail to answer for: a stream of the policy ([streams.NAME]). "
        "Without it, every stream: suppressed when any cause is active.",
    )(func)


def load(path: Path | None) -> Policy | None:
    """The policy at `path`, or None (follow the ledger's active policy) when no file is
    given; a bad file is a one-line error."""
    if path is None:
        return None
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
    except (LedgerError, ProjectionError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def cli_erasure_key() -> ErasureKey | None:
    """The erasure key the environment configures (None: erased addresses are not looked
    up); a configured but unusable one is an error."""
    try:
        return load_key()
    except ProjectionError as exc:
        raise click.ClickException(str(exc)) from exc


def require_ledger(db: Path | str) -> None:
    if isinstance(db, Path) and not db.exists():
        raise click.ClickException(f"no ledger at {db}: start `bounceledger serve` or pass --db")


def where(db: Path | str) -> str:
    """The ledger's address for messages: a file's path, or a URL without its password
    or any other credential (`ledger.urls.redact`, the one way a URL is shown)."""
    return redact(db) if isinstance(db, str) else str(db)


@contextlib.asynccontextmanager
async def opened(db: Path | str, *, create: bool = False) -> AsyncIterator[Store]:
    """The store at `db` (a SQLite file, which must exist unless `create`, or a URL)."""
    if not create:
        require_ledger(db)
    store = await open_store(db, pool_min=1, pool_max=4)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def projection(
    db: Path | str, policy: Policy | None, *, create: bool = False
) -> AsyncIterator[tuple[Store, Projector]]:
    """The store with its projection brought up to date: under the ledger's active
    policy, or pinned to `policy` — refused (PolicyMismatch) when the projection was
    built under another."""
    async with opened(db, create=create) as store:
        projector = Projector(store, policy)
        await projector.start()
        await projector.catch_up()
        yield store, projector
