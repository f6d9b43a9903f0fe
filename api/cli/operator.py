"""`bounceledger suppress` and `release`: operator actions, appended to the ledger."""

from __future__ import annotations

import time
from pathlib import Path

import click

from api import output
from api.cli.common import (
    cli_erasure_key,
    db_option,
    json_option,
    load,
    local_user,
    policy_option,
    projection,
    run,
)
from projections import operator, queries, releases, streams
from projections.policy import Policy
from projections.state import Reason


def _actor() -> str:
    """Who suppresses or releases, as the ledger records it: `local:USER`."""
    return f"local:{local_user()}"


def _suppress(
    email: str, note: str, chosen_streams: tuple[str, ...], db: Path | str, policy: Path | None
) -> queries.Status:
    chosen = load(policy)

    async def go() -> queries.Status:
        # An operator may suppress before the service ever ran: the ledger is created.
        async with projection(db, chosen, create=True) as (store, projector):
            shown = _scopes(projector.mapper.policy, chosen_streams)
            await operator.record(
                store, "suppress", email, actor=_actor(), note=note, at=time.time_ns() // 1000,
                streams=chosen_streams,
            )  # fmt: skip
            await projector.catch_up()  # folds everything up to the head, this suppression included
            return await queries.status(store, email, projector.policy_hash, scope=shown)

    return run(go())


def _scopes(policy: Policy, chosen: tuple[str, ...]) -> streams.Scope | None:
    """Each named stream checked against the policy (UnknownStream); the view to show
    the result in: the one stream named, else every stream."""
    scopes = [streams.scope(policy, name) for name in chosen]
    return scopes[0] if len(scopes) == 1 else None


def _release(
    email: str,
    note: str,
    also: tuple[Reason, ...],
    expect: int | None,
    chosen_streams: tuple[str, ...],
    db: Path | str,
    policy: Path | None,
) -> queries.Status:
    chosen = load(policy)

    async def go() -> queries.Status:
        async with projection(db, chosen) as (store, projector):
            _scopes(projector.mapper.policy, chosen_streams)

            async def settle(_: int) -> bool:
                await projector.catch_up()  # folds everything up to the head
                return True

            return await releases.release(
                store, projector.policy_hash, email, actor=_actor(), note=note, also=also,
                expect=expect, now=time.time_ns() // 1000, settle=settle, key=cli_erasure_key(),
                streams=chosen_streams,
            )  # fmt: skip

    return run(go())


def _also(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[Reason, ...]:
    try:
        return releases.parse_also([value or ""])
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _nonblank(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A blank note is a usage error, like a missing one (exit 2, nothing appended)."""
    if not value.strip():
        raise click.BadParameter("must say why (it is kept in the ledger)", ctx=ctx, param=param)
    return value


_note = click.option(
    "--note", required=True, callback=_nonblank, help="Why (required; kept in the ledger)."
)
_streams = click.option(
    "--stream",
    "chosen_streams",
    metavar="NAME",
    multiple=True,
    help="Only for this stream of the policy ([streams.NAME]; repeat for several). "
    "Without it, every stream.",
)


@click.command(name="suppress")
@click.argument("email")
@_note
@_streams
@db_option
@policy_option
@json_option
def suppress_command(
    email: str,
    note: str,
    chosen_streams: tuple[str, ...],
    db: Path | str,
    policy: Path | None,
    as_json: bool,
) -> None:
    """Suppress EMAIL by hand (reason `manual`), recorded in the ledger with who and why.

    \b
    Example:
        bounceledger suppress bob@example.com --note "asked by phone, ticket 4711"
        bounceledger suppress bob@example.com --stream newsletter --note "no more news"
    """
    found = _suppress(email, note, chosen_streams, db, policy)
    output.emit(found, as_json, output.status_text)


@click.command(name="release")
@click.argument("email")
@_note
@click.option(
    "--also",
    metavar="CAUSES",
    callback=_also,
    help="Lift these causes too (comma-separated): complaint, unsubscribe, manual, "
    "provider_suppressed, or all. Without it only bounces are lifted.",
)
@click.option(
    "--expect",
    type=click.IntRange(min=0),
    metavar="RECEIPT",
    help="The newest evidence you saw (`newest evidence` in `status`): the release is "
    "refused, and nothing recorded, if newer evidence has arrived since.",
)
@_streams
@db_option
@policy_option
@json_option
def release_command(
    email: str,
    note: str,
    also: tuple[Reason, ...],
    expect: int | None,
    chosen_streams: tuple[str, ...],
    db: Path | str,
    policy: Path | None,
    as_json: bool,
) -> None:
    """Lift EMAIL's bounce suppression (hard_bounce, soft_bounce_threshold), recorded in
    the ledger with who and why. A complaint, an unsubscribe, a manual or a provider's
    suppression is someone's "no": it is lifted only when named with --also. Only the
    evidence already in the ledger is lifted: a later bounce suppresses again. With
    --stream, only the causes of those streams alone are lifted (bounces are global).

    \b
    Example:
        bounceledger status alice@example.org        # every cause, and the newest evidence
        bounceledger release alice@example.org --note "mailbox fixed, confirmed by user"
        bounceledger release bob@example.org --also unsubscribe --expect 812 \\
            --note "re-subscribed by phone, ticket 4711"
    """
    found = _release(email, note, also, expect, chosen_streams, db, policy)
    output.emit(found, as_json, output.status_text)
