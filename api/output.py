"""Rendering for the command line: JSON for machines, short text and tables for people."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from ledger import BodyStats
from projections import feed
from projections.audit import Explanation, ReceiptView, TimelineEntry
from projections.erasing import ErasureReport
from projections.erasure_history import ErasureEntry
from projections.feed import Verdict
from projections.policy_history import PolicyHistory
from projections.quarantine_replay import Kept, KeptBody, Replay
from projections.queries import CauseView, Status, Suppression
from projections.rebuild import RebuildReport
from projections.retention import RetentionReport

# C0 and C1 control characters but newline and tab: in stored text (a remote MTA's
# diagnostic, a recipient, a body) they would reach the operator's terminal as escape
# sequences, so human output shows them as `\x1b` instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters shown as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeTable(Table):
    """A rich table whose text cells are shown as they are: rich markup in stored text
    (`[/b]@example.com`) is escaped, not interpreted, and control characters are shown
    as escapes."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        cells = [escape(printable(c)) if isinstance(c, str) else c for c in renderables]
        super().add_row(*cells, **kwargs)


def emit(value: Any, as_json: bool, render: Callable[[Any], str | Table]) -> None:
    """Print `value` as JSON, or as its human rendering (stored text made printable)."""
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2))
        return
    rendered = render(value)
    if isinstance(rendered, Table):
        # Piped output is read by people and tools alike: never truncate a column there.
        # Titles are ours; cells are escaped by SafeTable.
        Console(width=None if sys.stdout.isatty() else 250).print(rendered)
    else:
        click.echo(printable(rendered))


def status_text(status: Status) -> str:
    where = f" for stream {status.stream}" if isinstance(status.stream, str) else ""
    if not status.suppressed:
        head = f"{status.email}: not suppressed{where}"
    else:
        first = status.causes[0] if status.causes else None
        streams = f" [{'+'.join(first.streams)}]" if first and first.streams else ""
        head = (
            f"{status.email}: SUPPRESSED{where} ({status.reason}{streams}) since "
            f"{status.since}, evidence in receipt {status.receipt}"
        )
    lines = [head]
    if len(status.causes) > 1:  # every active cause: a release lifts only those it names
        lines.append(f"  causes: {_causes(status.causes)}")
    if isinstance(status.other_causes, list) and status.other_causes:
        lines.append(f"  not blocking this stream: {_causes(status.other_causes)}")
    detail = f"  soft bounces: {status.soft_bounces}   events: {status.events}"
    if status.last_event_at:
        detail += f"   last event: {status.last_event_at}"
    if status.newest_evidence:
        detail += f"   newest evidence: receipt {status.newest_evidence}"
    lines.append(detail)
    if status.erased:
        lines.append(f"  erased: its data is gone; kept suppressed as {status.erased}")
    return "\n".join(lines)


def _causes(causes: list[CauseView]) -> str:
    return ", ".join(
        f"{c.reason}{f' ({c.scope})' if c.scope else ''}"
        f"{' [' + '+'.join(c.streams) + ']' if c.streams else ''} since {c.since} "
        f"(receipt {c.receipt})"
        for c in causes
    )


def erasure_text(report: ErasureReport) -> str:
    kept = ", ".join(report.reasons) or "manual (the erasure itself)"
    return (
        f"erased by receipt {report.seq}: {len(report.removed)} bodies removed, "
        f"{len(report.redacted)} redacted, {report.quarantined} quarantined deliveries "
        f"deleted\n  still suppressed ({kept}) as {report.subject}"
    )


def erasures_reapplied(reports: list[ErasureReport]) -> str:
    if not reports:
        return "no erasure to re-apply: every one is here already"
    return "\n".join(erasure_text(report) for report in reports)


def retention_text(report: RetentionReport) -> str:
    if not report.periods or all(kept == "forever" for kept in report.periods.values()):
        return "retention: the policy keeps every body forever (no [retention] periods)"
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_kind.items()))
    verb = "would be removed" if report.dry_run else "removed"
    line = f"retention: {report.bodies} bodies ({_size(report.bytes)}) {verb}"
    if kinds:
        line += f": {kinds}"
    if report.records:
        line += f"; recorded by receipt{'s' if len(report.records) > 1 else ''} "
        line += ", ".join(map(str, report.records))
    line += f"\n  {report.kept_as_evidence} kept as evidence of an active suppression"
    return line


def erasures_table(entries: list[ErasureEntry]) -> Table | str:
    if not entries:
        return "no erasures"
    table = SafeTable(
        "receipt", "at", "actor", "request", "note", "kept", "removed", "redacted",
        title=f"{len(entries)} erasures",
    )  # fmt: skip
    for entry in entries:
        table.add_row(
            str(entry.seq), entry.at, entry.actor, entry.request or "", entry.note,
            ", ".join(entry.reasons) or "manual", str(len(entry.removed)),
            str(len(entry.redacted)),
        )  # fmt: skip
    return table


def suppressions_table(items: list[Suppression]) -> Table | str:
    if not items:
        return "no suppressed addresses"
    table = SafeTable("email", "reasons", "since", "receipt", title=f"{len(items)} suppressed")
    for item in items:
        table.add_row(item.email, ", ".join(item.reasons), item.since, str(item.receipt))
    return table


def _verdict(verdict: Verdict) -> str:
    if not verdict.suppressed:
        return "not suppressed"
    return ", ".join(verdict.reasons) or verdict.reason or "suppressed"


def rebuild_text(report: RebuildReport) -> str:
    verb = "would change" if report.dry_run else "changed"
    lines = [
        f"{'dry run: ' if report.dry_run else ''}read {report.receipts} receipts, "
        f"{report.events} events, {report.recipients} recipients under policy "
        f"{report.policy_hash[:12]}: {report.suppressed} suppressed",
        f"{len(report.changed)} address(es) {verb}" + (":" if report.changed else ""),
    ]
    lines += [
        f"  {c.email}: {_verdict(c.before)} -> {_verdict(c.after)}"
        + (
            f"  (streams: {', '.join(c.streams)})"
            if isinstance(c.streams, list) and c.streams
            else ""
        )
        for c in report.changed
    ]
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
        streams = f" [{'+'.join(event.streams)}]" if isinstance(event.streams, tuple) else ""
        lines.append(
            f" {mark} {event.event_time}  receipt {event.receipt:<6} {event.source:<8} "
            f"{event.raw_kind:<12} {step.effect}{streams}"
        )
        if event.diagnostic:
            lines.append(f"{'':25}{event.diagnostic}")
        lines += [f"{'':25}! {flag}" for flag in event.flags]
    if explanation.evidence:
        lines.append("* = evidence the current verdict rests on")
    if isinstance(explanation.streams, list):
        lines.append("streams:")
        for verdict in explanation.streams:
            said = "SUPPRESSED" if verdict.suppressed else "may be mailed"
            lines.append(f"  {verdict.stream}: {said} — {verdict.rule}")
    return "\n".join(lines)


def timeline_table(entries: list[TimelineEntry]) -> Table | str:
    if not entries:
        return "no events for this address"
    table = SafeTable("event time", "receipt", "source", "event", "kind", "class", "note")
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


def policies_table(history: PolicyHistory) -> Table | str:
    active = history.active_hash[:12]
    if not history.recorded:
        origin = "not recorded: the built-in defaults, or set before policies were recorded"
        headline = f"active policy {active} ({origin})"
    else:
        headline = f"active policy {active}"
    if not history.changes:
        return f"{headline}; no policy change recorded"
    table = SafeTable("receipt", "at", "policy", "by", "note", "file", "", title=headline)
    for change in history.changes:
        table.add_row(
            str(change.receipt),
            change.at,
            change.policy_hash[:12],
            change.actor,
            change.note,
            change.origin,
            "active" if change.active else "",
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
    table = SafeTable("seq", "received", "source", "content type", "bytes", "sha256")
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


def head_text(seq: int | None, chain_hash: bytes | str | None) -> str:
    """The chain head to record elsewhere: only a head kept out of the ledger's reach
    proves that a ledger or an export is the one it was (the chain is unkeyed)."""
    if not seq or chain_hash is None:
        return "head: none (no receipts)"
    hex_hash = chain_hash.hex() if isinstance(chain_hash, bytes) else chain_hash
    return (
        f"head: receipt {seq}, chain hash {hex_hash} "
        "(compare with a head recorded elsewhere: only that proves it authentic)"
    )


def verification_text(result: Any) -> str:
    head = head_text(getattr(result, "head_seq", None), getattr(result, "head_chain_hash", None))
    bodies = getattr(result, "bodies", None)
    stored = f"\n{bodies_text(bodies)}" if bodies is not None else ""
    if result.intact:
        return f"ledger intact: {result.receipts} receipts, chain verified\n{head}{stored}"
    return (
        f"ledger BROKEN at receipt {result.first_broken}: "
        f"{result.receipts} receipts before it verified\nlast verified {head}{stored}"
    )


def bodies_text(stats: BodyStats) -> str:
    """One line on body storage: how much the bodies take, raw and stored, and the bodies
    erasures changed (with the records that did)."""
    ratio = f" ({stats.stored_bytes / stats.raw_bytes:.2f}x)" if stats.raw_bytes else ""
    line = (
        f"bodies: {stats.bodies} stored, {_size(stats.raw_bytes)} raw in "
        f"{_size(stats.stored_bytes)}{ratio}; {stats.plain} plain, "
        f"{stats.dictionaries} dictionar{'y' if stats.dictionaries == 1 else 'ies'}"
    )
    if stats.erased:
        records = ", ".join(map(str, stats.erased_by))
        line += (
            f"; {stats.erased} erased or redacted "
            f"(by receipt{'s' if len(stats.erased_by) > 1 else ''} {records})"
        )
    return line


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def quarantine_table(items: list[Kept]) -> Table | str:
    if not items:
        return "nothing in quarantine"
    table = SafeTable("id", "received", "source", "bytes", "seen", "reason", "replayed as")
    for item in items:
        replayed = str(item.replayed_seq) if item.replayed_seq is not None else ""
        table.add_row(
            str(item.id), item.received_at, item.source, str(item.size), str(item.seen),
            item.reason, replayed,
        )  # fmt: skip
    return table


def kept_text(item: KeptBody) -> str:
    replayed = f", replayed as receipt {item.replayed_seq}" if item.replayed_seq else ""
    body = item.body_text if item.body_text is not None else f"<{item.size} bytes, not UTF-8>"
    return (
        f"quarantined delivery {item.id} from {item.source}, received {item.received_at}, "
        f"seen {item.seen} time(s){replayed}\n"
        f"reason: {item.reason}\ncontent type: {item.content_type}\n\n{body}"
    )


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


def change_line(entry: feed.Entry) -> str:
    """One change-feed entry as a line for people (projections/feed.py)."""
    head = f"{entry.cursor}  {entry.at}"
    if isinstance(entry, feed.RebuildStarted):
        noted = f" — {entry.note!r} (receipt {entry.record})" if entry.note else ""
        previous = (entry.previous_policy_hash or "none")[:12]
        return (
            f"{head}  rebuild {entry.rebuild_id} started: {previous} → "
            f"{entry.policy_hash[:12]}{noted}"
        )
    if isinstance(entry, feed.RebuildCompleted):
        return (
            f"{head}  rebuild {entry.rebuild_id} completed: {entry.changed} changed, "
            f"{entry.suppressed} suppressed"
        )
    who = entry.email if entry.email is not None else f"(erased) {entry.subject}"
    cause: str = entry.cause
    if entry.action is not None:
        cause += f" {entry.action}"
    if entry.receipt is not None:
        cause += f", receipt {entry.receipt}"
    if entry.rebuild_id is not None:
        cause += f" {entry.rebuild_id}"
    return printable(
        f"{head}  {who}: {_verdict(entry.before)} → {_verdict(entry.after)}  ({cause})"
    )
