"""Rendering for the command line: JSON for machines, short text and tables for people."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from projections.audit import Explanation, ReceiptView, TimelineEntry
from projections.quarantine import Kept, Replay
from projections.queries import Status, Suppression
from projections.rebuild import RebuildReport, Verdict


def emit(value: Any, as_json: bool, render: Callable[[Any], str | Table]) -> None:
    """Print `value` as JSON, or as its human rendering."""
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2))
        return
    rendered = render(value)
    if isinstance(rendered, Table):
        # Piped output is read by people and tools alike: never truncate a column there.
        Console(width=None if sys.stdout.isatty() else 250).print(rendered)
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


def explanation_text(explanation: Explanation) -> str:
    policy = explanation.policy
    window = f", window {policy.soft_bounce_window}" if policy.soft_bounce_window else ""
    clears = "clears" if policy.delivery_clears_soft_bounces else "does not clear"
    lines = [
        status_text(explanation.status),
        f"policy {policy.hash[:12]}: soft-bounce threshold {policy.soft_bounce_threshold}"
        f"{window}; delivery {clears} soft bounces",
    ]
    if not explanation.steps:
        lines.append("no events for this address")
    for step in explanation.steps:
        event = step.event
        mark = "*" if step.decisive else " "
        lines.append(
            f" {mark} {event.event_time}  receipt {event.receipt:<6} {event.source:<8} "
            f"{event.raw_kind:<12} {step.effect}"
        )
        if event.diagnostic:
            lines.append(f"{'':25}{event.diagnostic}")
        lines += [f"{'':25}! {flag}" for flag in event.flags]
    if explanation.evidence:
        lines.append("* = evidence the current verdict rests on")
    return "\n".join(lines)


def timeline_table(entries: list[TimelineEntry]) -> Table | str:
    if not entries:
        return "no events for this address"
    table = Table("event time", "receipt", "source", "event", "kind", "class", "note")
    for entry in entries:
        note = entry.ignored_reason or entry.note or entry.diagnostic or ""
        note = "; ".join([note, *(f"! {flag}" for flag in entry.flags)]).strip("; ")
        table.add_row(
            entry.event_time,
            str(entry.receipt),
            entry.source,
            entry.raw_kind,
            entry.kind,
            entry.bounce_class or "",
            note,
        )
    return table


def receipt_text(view: ReceiptView) -> str:
    lines = [
        f"receipt {view.seq} from {view.source}, received {view.received_at}",
        f"  content type: {view.content_type or '(none)'}   {view.size} bytes"
        f"   peer: {view.peer or '-'}",
        f"  sha256: {view.body_sha256}",
        f"  chain:  {view.chain_hash}",
    ]
    lines += [f"  {name}: {value}" for name, value in sorted(view.headers.items())]
    if view.reading is not None:
        found = ", ".join(f"{e.raw_kind} {e.recipient}" for e in view.reading.events)
        lines.append(f"  events: {len(view.reading.events)}{': ' + found if found else ''}")
        if view.reading.unattributed:
            lines.append(
                f"  ! {len(view.reading.unattributed)} event(s) name no recipient: "
                + ", ".join(view.reading.unattributed)
            )
    if view.body_text is not None:
        lines += ["", view.body_text]
    else:
        lines += ["", "(binary body: use --raw)"]
    return "\n".join(lines)


def receipts_table(views: list[ReceiptView]) -> Table | str:
    if not views:
        return "no receipts"
    table = Table("seq", "received", "source", "content type", "bytes", "sha256")
    for view in views:
        table.add_row(
            str(view.seq),
            view.received_at,
            view.source,
            view.content_type,
            str(view.size),
            view.body_sha256[:16],
        )
    return table


def verification_text(result: Any) -> str:
    if result.intact:
        return f"ledger intact: {result.receipts} receipts, chain verified"
    return (
        f"ledger BROKEN at receipt {result.first_broken}: "
        f"{result.receipts} receipts before it verified"
    )


def quarantine_table(items: list[Kept]) -> Table | str:
    if not items:
        return "nothing in quarantine"
    table = Table("id", "received", "source", "bytes", "seen", "reason", "replayed as")
    for item in items:
        replayed = str(item.replayed_seq) if item.replayed_seq is not None else ""
        table.add_row(
            str(item.id), item.received_at, item.source, str(item.size), str(item.seen),
            item.reason, replayed,
        )  # fmt: skip
    return table


def replay_text(outcomes: list[Replay]) -> str:
    lines = []
    for outcome in outcomes:
        if outcome.error:
            lines.append(f"{outcome.id}: not replayed: {outcome.error}")
        else:
            again = " (the same bytes were already in the ledger)" if outcome.duplicate else ""
            lines.append(f"{outcome.id}: replayed as receipt {outcome.seq}{again}")
    return "\n".join(lines) or "nothing to replay"


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
