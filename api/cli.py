"""The `bounceledger` command line: a thin click layer over the same functions the API uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from api import output
from api.settings import DEFAULT_DB, SettingsInvalid, load_settings
from ledger import LedgerError, SQLiteStore
from projections import (
    KNOWN_SOURCES,
    Policy,
    PolicyInvalid,
    PolicyMismatch,
    Projector,
    load_policy,
    queries,
    rebuild,
)

F = TypeVar("F", bound=Callable[..., Any])


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


def _policy(path: Path | None) -> Policy:
    try:
        return load_policy(path, known_sources=KNOWN_SOURCES)
    except PolicyInvalid as exc:
        raise click.ClickException(str(exc)) from exc


def _run(coroutine: Any) -> Any:
    """Run a coroutine; library errors become one-line messages, exit status 1."""
    try:
        return asyncio.run(coroutine)
    except (LedgerError, PolicyMismatch, PolicyInvalid) as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.asynccontextmanager
async def _projection(db: Path, policy: Policy) -> AsyncIterator[tuple[SQLiteStore, str]]:
    """The store with its projection brought up to date under `policy`."""
    if not db.exists():
        raise click.ClickException(f"no ledger at {db}: start `bounceledger serve` or pass --db")
    store = await SQLiteStore.open(db)
    try:
        projector = Projector(store, policy)
        await projector.start()
        await projector.catch_up()
        yield store, projector.policy_hash
    finally:
        await store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="bounceledger")
def cli() -> None:
    """bounceledger: email-provider webhooks kept verbatim in a hash-chained ledger,
    folded into a suppression list you can rebuild and explain.

    \b
    Example:
        bounceledger serve --port 8000
        bounceledger status alice@example.org
        bounceledger rebuild --policy strict.toml --dry-run
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@db_option
@policy_option
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(host: str, port: int, db: Path, policy: Path | None, log_level: str) -> None:
    """Run the HTTP service: webhooks in, suppression queries out.

    Secrets and keys come from the environment: SMTP2GO_WEBHOOK_SECRET enables
    POST /v1/webhooks/smtp2go/events; BOUNCELEDGER_API_KEYS (comma-separated, optionally
    name:key) opens every other route to `Authorization: Bearer KEY`.

    \b
    Example:
        SMTP2GO_WEBHOOK_SECRET=s3cret BOUNCELEDGER_API_KEYS=ops:k3y bounceledger serve
    """
    import uvicorn

    from api.app import create_app

    try:
        settings = msgspec.structs.replace(load_settings(os.environ), db=db, policy=policy)
    except SettingsInvalid as exc:
        raise click.ClickException(str(exc)) from exc
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings, _policy(policy))
    if not settings.smtp2go_secret:
        click.echo(
            "note: SMTP2GO_WEBHOOK_SECRET is unset: the SMTP2GO endpoint answers 404", err=True
        )
    if not settings.api_keys:
        click.echo("note: BOUNCELEDGER_API_KEYS is unset: every query route answers 401", err=True)
    # access_log off: uvicorn's would print query strings, where a token may be.
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, log_level=log_level)


@cli.command()
@click.argument("email")
@db_option
@policy_option
@json_option
def status(email: str, db: Path, policy: Path | None, as_json: bool) -> None:
    """Is EMAIL suppressed? Why, since when, on which receipt's evidence?

    \b
    Example:
        bounceledger status alice@example.org --json
    """

    async def go() -> queries.Status:
        async with _projection(db, _policy(policy)) as (store, digest):
            return await queries.status(store, email, digest)

    result = _run(go())
    output.emit(result, as_json, output.status_text)


@cli.command()
@db_option
@policy_option
@json_option
def suppressions(db: Path, policy: Path | None, as_json: bool) -> None:
    """List every suppressed address with its reason and since when.

    \b
    Example:
        bounceledger suppressions --json > suppressed.json
    """

    async def go() -> list[queries.Suppression]:
        async with _projection(db, _policy(policy)) as (store, digest):
            return await queries.suppressions(store, digest)

    output.emit(_run(go()), as_json, output.suppressions_table)


@cli.command(name="rebuild")
@db_option
@policy_option
@click.option("--dry-run", is_flag=True, help="Change nothing; report who would change.")
@json_option
def rebuild_command(db: Path, policy: Path | None, dry_run: bool, as_json: bool) -> None:
    """Re-read all of history under a policy, replacing the projection.

    With --dry-run nothing is written: every address whose verdict would change is
    listed. Safe while the server ingests: receipts that arrive meanwhile are folded in.

    \b
    Example:
        bounceledger rebuild --policy strict.toml --dry-run
        bounceledger rebuild --policy strict.toml
    """
    if not db.exists():
        raise click.ClickException(f"no ledger at {db}: pass --db")
    chosen = _policy(policy)

    async def go() -> Any:
        store = await SQLiteStore.open(db)
        try:
            with output.progress("reading the ledger", enabled=sys.stderr.isatty()) as advance:
                return await rebuild(store, chosen, dry_run=dry_run, progress=advance)
        finally:
            await store.close()

    report = _run(go())
    output.emit(report, as_json, output.rebuild_text)
