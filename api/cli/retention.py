"""`bounceledger retention`: let go of the bodies the policy's `[retention]` no longer keeps."""

from __future__ import annotations

import time
from pathlib import Path

import click

from api import output
from api.cli.common import db_option, json_option, load, local_user, opened, policy_option, run
from projections.rebuild import active_policy
from projections.retention import RetentionReport, apply


@click.command(name="retention")
@db_option
@policy_option
@click.option("--dry-run", is_flag=True, help="Remove nothing; report what would go.")
@click.option(
    "--note",
    default="the policy's retention periods",
    show_default=True,
    help="Why (kept in the ledger's retention record).",
)
@json_option
def retention_command(
    db: Path | str, policy: Path | None, dry_run: bool, note: str, as_json: bool
) -> None:
    """Remove the bodies of receipts whose events are all of kinds the policy keeps for a
    period (`[retention]`: delivered, deferred, ignored), once that period has passed —
    never one that is evidence of an active suppression. Each run appends a retention
    record naming every body it removed, so `verify` still proves the ledger. Without
    --policy, the ledger's active policy's periods apply.

    \b
    Example:
        bounceledger retention --dry-run
        bounceledger retention --policy policy.toml --note "quarterly clean-up"
    """
    chosen = load(policy)

    async def go() -> RetentionReport:
        async with opened(db) as store:
            periods = chosen if chosen is not None else await active_policy(store)
            return await apply(
                store, periods, time.time_ns() // 1000, actor=f"local:{local_user()}",
                note=note, dry_run=dry_run,
            )  # fmt: skip

    output.emit(run(go()), as_json, output.retention_text)
