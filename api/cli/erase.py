"""`bounceledger erase`: remove one person's data from the ledger; keep their "no"."""

from __future__ import annotations

import time
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, local_user, opened, run
from projections.erasing import ErasureReport, erase
from projections.erasure_keys import ErasureKey, require_key
from projections.errors import ErasureRefused
from projections.projector import Projector


def _key() -> ErasureKey:
    try:
        return require_key()
    except ErasureRefused as exc:
        raise click.ClickException(str(exc)) from exc


@click.command(name="erase")
@click.argument("email")
@click.option(
    "--note", required=True, help="Why, and who checked the request (kept in the ledger)."
)
@click.option(
    "--request", "request_ref", metavar="REF", help="The data-subject request's reference."
)
@db_option
@json_option
def erase_command(
    email: str, note: str, request_ref: str | None, db: Path | str, as_json: bool
) -> None:
    """Erase EMAIL's data (GDPR Art. 17): every body about it alone is removed, every body
    that also names others is redacted, its quarantined deliveries are deleted and the
    projection forgets it. An erasure record is appended: who, when, why, the request and
    the address's keyed hash, never the address. EMAIL stays suppressed, for the causes it
    had, under any later policy and rebuild. Needs BOUNCELEDGER_ERASURE_KEY (or
    BOUNCELEDGER_ERASURE_KEY_FILE): the same key every instance looks addresses up with.

    \b
    Example:
        bounceledger erase alice@example.org --note "DSAR 2026-118, identity checked" \\
            --request 2026-118
    """
    key = _key()

    async def go() -> ErasureReport:
        async with opened(db) as store:
            projector = Projector(store)
            await projector.start()
            return await erase(
                store, key, email, actor=f"local:{local_user()}", note=note,
                at=time.time_ns() // 1000, request=request_ref,
            )  # fmt: skip

    output.emit(run(go()), as_json, output.erasure_text)
