"""`bounceledger status`, `suppressions` and `explain`: reads of the projection."""

from __future__ import annotations

from pathlib import Path

import click

from api import output
from api.cli.common import (
    cli_erasure_key,
    db_option,
    json_option,
    load,
    policy_option,
    projection,
    run,
    stream_option,
    when,
)
from projections import queries, streams
from projections.audit import Explanation, explain, status_as_of


@click.command(name="status")
@click.argument("email")
@click.option(
    "--as-of",
    "as_of",
    metavar="TIME",
    help="What the service answered at TIME: the receipts received by then, under the "
    "policy in force then (evidence received later is left out, whatever its event time).",
)
@stream_option
@db_option
@policy_option
@json_option
def status_command(
    email: str,
    as_of: str | None,
    stream: str | None,
    db: Path | str,
    policy: Path | None,
    as_json: bool,
) -> None:
    """Is EMAIL suppressed? Why, since when, on which receipt's evidence?

    \b
    Example:
        bounceledger status alice@example.org --json
        bounceledger status alice@example.org --stream transactional
        bounceledger status alice@example.org --as-of 2026-05-01T00:00:00Z
    """
    chosen, moment = load(policy), when(as_of, "--as-of")

    async def go() -> queries.Status:
        async with projection(db, chosen) as (store, projector):
            if moment is not None:
                return await status_as_of(
                    store, email, projector.mapper, projector.policy_hash, moment, stream
                )
            scope = streams.scope(projector.mapper.policy, stream)
            key = cli_erasure_key()
            await queries.require_erasure_key(store, key)
            return await queries.status(store, email, projector.policy_hash, key, scope)

    output.emit(run(go()), as_json, output.status_text)


@click.command(name="suppressions")
@stream_option
@db_option
@policy_option
@json_option
def suppressions_command(
    stream: str | None, db: Path | str, policy: Path | None, as_json: bool
) -> None:
    """List every suppressed address with its reason and since when.

    \b
    Example:
        bounceledger suppressions --json > suppressed.json
        bounceledger suppressions --stream newsletter
    """
    chosen = load(policy)

    async def go() -> list[queries.Suppression]:
        async with projection(db, chosen) as (store, projector):
            scope = streams.scope(projector.mapper.policy, stream)
            return await queries.suppressions(store, projector.policy_hash, scope=scope)

    output.emit(run(go()), as_json, output.suppressions_table)


@click.command(name="explain")
@click.argument("email")
@stream_option
@db_option
@policy_option
@json_option
def explain_command(
    email: str, stream: str | None, db: Path | str, policy: Path | None, as_json: bool
) -> None:
    """Why is EMAIL suppressed (or not)? The policy and the events that decided it.

    Every event is listed with what it did; the evidence (marked *) is what the
    current verdict rests on, each pointing at its receipt (`bounceledger audit receipt N`).

    \b
    Example:
        bounceledger explain alice@example.org
        bounceledger explain alice@example.org --stream newsletter
    """
    chosen = load(policy)

    async def go() -> Explanation:
        async with projection(db, chosen) as (store, projector):
            return await explain(store, email, projector.mapper, projector.policy_hash, stream)

    output.emit(run(go()), as_json, output.explanation_text)
