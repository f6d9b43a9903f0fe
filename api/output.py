"""Rendering for the command line: JSON for machines, short text and tables for people."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from projections.queries import Status, Suppression
from projections.rebuild import RebuildReport, Verdict


def emit(value: Any, as_json: bool, render: Callable[[Any], str | Table]) -> None:
    """Print `value` as JSON, or as its human rendering."""
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2))
        return
    rendered = render(value)
    if isinstance(rendered, Table):
        Console().print(rendered)
    else:
        click.echo(rendered)


def status_text(status: Status) -> str:
    if not status.suppressed:
        head = f"{status.email}: not suppressed"
    else:
        head = (
            f"{status.email}: SUPPRESSED ({status.reason}) since {status.since}, "
            f"evidence in receipt {status.receipt}"
        )
    detail = f"  soft bounces: {status.soft_bounces}   events: {status.events}"
    if status.last_event_at:
        detail += f"   last event: {status.last_event_at}"
    return f"{head}\n{detail}"


def suppressions_table(items: list[Suppression]) -> Table | str:
    if not items:
        return "no suppressed addresses"
    table = Table("email", "reason", "since", "receipt", title=f"{len(items)} suppressed")
    for item in items:
        table.add_row(item.email, item.reason, item.since, str(item.receipt))
    return table


def _verdict(verdict: Verdict) -> str:
    return verdict.reason or "suppressed" if verdict.suppressed else "not suppressed"


def rebuild_text(report: RebuildReport) -> str:
    verb = "would change" if report.dry_run else "changed"
    lines = [
        f"{'dry run: ' if report.dry_run else ''}read {report.receipts} receipts, "
        f"{report.events} events, {report.recipients} recipients under policy "
        f"{report.policy_hash[:12]}: {report.suppressed} suppressed",
        f"{len(report.changed)} address(es) {verb}" + (":" if report.changed else ""),
    ]
    lines += [f"  {c.email}: {_verdict(c.before)} -> {_verdict(c.after)}" for c in report.changed]
    if report.dry_run:
        lines.append("nothing was written; run again without --dry-run to apply")
    return "\n".join(lines)


@contextlib.contextmanager
def progress(label: str, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; otherwise nothing."""
    if not enabled:
        yield None
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)
