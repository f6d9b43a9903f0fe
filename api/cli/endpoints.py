"""`bounceledger endpoints`: the outbound webhook endpoints the change feed is pushed to."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.table import Table

from api import output
from api.cli.common import db_option, json_option, local_user, opened, run
from api.push import endpoints
from api.push.deliverer import Probe, probe
from api.push.endpoints import Created, Endpoint
from api.push.signing import load_key
from ledger import Store

T = TypeVar("T")

_FROM = (
    "Where it starts reading the feed: `now` (the default: entries appended from now on), "
    "`0` (from the beginning) or a cursor (`bounceledger changes --json` shows them)."
)


def _with_table(db: Path | str, act: Callable[[Store], Awaitable[T]]) -> T:
    """Run `act` on the store at `db`, its endpoints' table created if need be."""

    async def go() -> T:
        async with opened(db) as store:
            await endpoints.ensure(store)
            return await act(store)

    return run(go())


def _when(text: str | None) -> str:
    return text or "-"


def _added_text(created: Created) -> str:
    return "\n".join(
        (
            f"added {created.id}: {created.url}",
            f"  delivers the entries after {created.cursor or created.delivered} "
            f"({created.lag} waiting)",
            f"  secret (shown this once, never again): {created.secret}",
        )
    )


def _table(items: list[Endpoint]) -> Table | str:
    if not items:
        return "no endpoints (add one: bounceledger endpoints add URL)"
    table = output.SafeTable(title="Outbound webhook endpoints")
    for column in ("id", "state", "url", "delivered", "lag", "failing since", "next attempt"):
        table.add_column(column)
    table.add_column("last answer")
    for item in items:
        last = item.last_error or (str(item.last_status) if item.last_status else "-")
        table.add_row(
            item.id, item.state, item.url, str(item.delivered), str(item.lag),
            _when(item.failing_since), _when(item.next_attempt), last,
        )  # fmt: skip
    return table


def _state_text(item: Endpoint) -> str:
    text = f"{item.id}: {item.state}, delivered up to {item.delivered} ({item.lag} waiting)"
    return text + (f"; last error: {item.last_error}" if item.last_error else "")


def _probe_text(result: Probe) -> str:
    if result.ok:
        return (
            f"{result.endpoint}: test message accepted (HTTP {result.status}, {result.seconds} s)"
        )
    return f"{result.endpoint}: test message not accepted: {result.error}"


@click.group(name="endpoints")
def endpoints_group() -> None:
    """Push the change feed to your own HTTP endpoints (outbound webhooks).

    Each entry of the feed is POSTed to each endpoint, in order, one per request, as
    `{"type", "timestamp", "data"}`, signed as Standard Webhooks prescribes: verify the
    `webhook-signature` with the endpoint's secret (any Standard Webhooks library does)
    and use `webhook-id` to drop duplicates. A failed delivery is retried 5 s, 5 min,
    30 min, 2 h, 5 h, 10 h and 10 h later; after that the endpoint is `failing` until you
    resume it, and an endpoint that answers 410 is `disabled`. A running service
    delivers; these commands change what it delivers.

    Secrets are derived from BOUNCELEDGER_ENDPOINT_KEY (or BOUNCELEDGER_ENDPOINT_KEY_FILE),
    never stored: adding and testing need the same key as the service.

    \b
    Example:
        bounceledger endpoints add https://mirror.example.org/hooks --description mirror
        bounceledger endpoints list
        bounceledger endpoints test ep_0123456789ab
        bounceledger endpoints resume ep_0123456789ab
    """


@endpoints_group.command(name="add")
@click.argument("url")
@click.option("--description", default="", help="What the endpoint is for.")
@click.option("--from", "start", metavar="now|0|CURSOR", default=None, help=_FROM)
@db_option
@json_option
def add_command(
    url: str, description: str, start: str | None, db: Path | str, as_json: bool
) -> None:
    """Add an endpoint at URL (http or https, no credentials in it) and print its secret:
    it is shown this once.

    \b
    Example:
        bounceledger endpoints add https://mirror.example.org/hooks --from 0 --json
    """

    async def act(store: Store) -> Created:
        return await endpoints.add(
            store, load_key(), url, description=description, actor=f"local:{local_user()}",
            start=start, now=time.time_ns() // 1000,
        )  # fmt: skip

    output.emit(_with_table(db, act), as_json, _added_text)


@endpoints_group.command(name="list")
@db_option
@json_option
def list_command(db: Path | str, as_json: bool) -> None:
    """List the endpoints and how their deliveries stand: the last entry delivered, how
    many wait, since when they fail, the next attempt, the last answer (never a secret)."""
    output.emit(_with_table(db, endpoints.listing), as_json, _table)


@endpoints_group.command(name="remove")
@click.argument("endpoint_id", metavar="ID")
@db_option
def remove_command(endpoint_id: str, db: Path | str) -> None:
    """Remove endpoint ID: nothing more is sent to it."""

    async def act(store: Store) -> None:
        await endpoints.remove(store, endpoint_id)

    _with_table(db, act)
    click.echo(f"removed {endpoint_id}")


@endpoints_group.command(name="pause")
@click.argument("endpoint_id", metavar="ID")
@db_option
@json_option
def pause_command(endpoint_id: str, db: Path | str, as_json: bool) -> None:
    """Stop deliveries to endpoint ID until it is resumed."""

    async def act(store: Store) -> Endpoint:
        return await endpoints.pause(store, endpoint_id)

    output.emit(_with_table(db, act), as_json, _state_text)


@endpoints_group.command(name="resume")
@click.argument("endpoint_id", metavar="ID")
@click.option(
    "--from",
    "start",
    metavar="0|CURSOR",
    default=None,
    help="Start from here instead of the entry after the last one delivered (after its "
    "entries expired and the receiver resynchronised from the list).",
)
@db_option
@json_option
def resume_command(endpoint_id: str, start: str | None, db: Path | str, as_json: bool) -> None:
    """Deliver to endpoint ID again (paused, failing or disabled), at once, from the entry
    after the last one it acknowledged, with the whole retry schedule ahead."""

    async def act(store: Store) -> Endpoint:
        return await endpoints.resume(store, endpoint_id, start=start, now=time.time_ns() // 1000)

    output.emit(_with_table(db, act), as_json, _state_text)


@endpoints_group.command(name="test")
@click.argument("endpoint_id", metavar="ID")
@db_option
@json_option
@click.pass_context
def test_command(ctx: click.Context, endpoint_id: str, db: Path | str, as_json: bool) -> None:
    """Send endpoint ID one signed `endpoint.test` message now and say what it answered
    (exit 1 unless 2xx). Its place in the feed does not move."""

    async def act(store: Store) -> Probe:
        return await probe(store, load_key(), endpoint_id)

    result = _with_table(db, act)
    output.emit(result, as_json, _probe_text)
    if not result.ok:
        ctx.exit(1)
