"""`bounceledger suppress` and `release`: operator actions, appended to the ledger."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, load, policy_option, projection, run
from projections import operator, queries


def _act(
    action: operator.Action, email: str, note: str, db: Path | str, policy: Path | None
) -> queries.Status:
    chosen = load(policy)

    async def go() -> queries.Status:
        # An operator may suppress before the service ever ran: the ledger is created.
        async with projection(db, chosen, create=True) as (store, projector):
            await operator.record(
                store, action, email, actor=f"local:{getpass.getuser()}", note=note,
                at=time.time_ns() // 1000,
            )  # fmt: skip
            await projector.catch_up()  # folds everything up to the head, `seq` included
            return await queries.status(store, email, projector.policy_hash)

    return run(go())


def _nonblank(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A blank note is a usage error, like a missing one (exit 2, nothing appended)."""
    if not value.strip():
        raise click.BadParameter("must say why (it is kept in the ledger)", ctx=ctx, param=param)
    return value


_note = click.option(
    "--note", required=True, callback=_nonblank, help="Why (required; kept in the ledger)."
)


@click.command()
@click.argument("email")
@_note
@db_option
@policy_option
@json_option
def suppress(email: str, note: str, db: Path | str, policy: Path | None, as_json: bool) -> None:
    """Suppress EMAIL by hand (reason `manual`), recorded in the ledger with who and why.

    \b
    Example:
        bounceledger suppress bob@example.com --note "asked by phone, ticket 4711"
    """
    output.emit(_act("suppress", email, note, db, policy), as_json, output.status_text)


@click.command()
@click.argument("email")
@_note
@db_option
@policy_option
@json_option
def release(email: str, note: str, db: Path | str, policy: Path | None, as_json: bool) -> None:
    """Lift EMAIL's current suppression, whatever its reason; a later bounce suppresses again.

    \b
    Example:
        bounceledger release alice@example.org --note "mailbox fixed, confirmed by user"
    """
    output.emit(_act("release", email, note, db, policy), as_json, output.status_text)
