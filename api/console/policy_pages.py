"""Console policy page: the active policy and its history, a candidate's preview (who
would change: a dry-run rebuild), the full diff as CSV, and applying it with a note.

Applying does what `bounceledger rebuild --policy FILE --note WHY` does: the change is
recorded in the ledger (actor: the signed-in key's name; origin "console") in the same
transaction as the rebuild's swap, and every instance follows it. Before answering,
this instance waits (briefly) until its projector has adopted the new policy, so that
the page it redirects to is not answered under the old one.

A candidate travels between the pages as its text in a form field: browsers send the
line breaks of form fields as CRLF, so line breaks are read as LF throughout (the TOML
recorded is the text with LF line breaks).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections import Counter
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from api.console.render import back, operator, page
from api.runtime import Runtime
from ledger import NewReceipt, StoreUnavailable
from projections import PolicyInvalid, PolicyMismatch, policy_history, rebuild
from projections.feed import Verdict
from projections.mapping import KNOWN_SOURCES, check_event_names
from projections.policy import Policy, parse_policy, policy_hash
from projections.rebuild import Change, RebuildReport, active_policy

MAX_TOML = 256 * 1024  # characters of a candidate policy
PREVIEW_ROWS = 500  # addresses listed on the preview page (the CSV has them all)
MAX_NOTE = 2000
ADOPT_TIMEOUT = 3.0  # seconds to wait for this instance's projector to follow a change
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_APPLYING = "console_policy_applying"  # app.state: one apply at a time per instance


class CandidateError(Exception):
    """A candidate policy that cannot be previewed or applied (shown to the operator)."""


class Candidate(msgspec.Struct, frozen=True):
    """A policy given on the console: its text (LF line breaks) and what it decodes to."""

    text: str
    policy: Policy
    hash: str


def verdict_text(verdict: Verdict) -> str:
    """A verdict as the preview and the CSV show it: the reason, or `not suppressed`."""
    if not verdict.suppressed:
        return "not suppressed"
    return verdict.reason or "suppressed"


def csv_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection: a leading quote)."""
    return "'" + text if text.startswith(_CSV_TRIGGERS) else text


def streams_text(change: Change) -> str:
    """The streams whose verdict a change affects ("" when the policy has no streams)."""
    return " ".join(change.streams) if isinstance(change.streams, list) else ""


def changes_csv(changed: list[Change]) -> str:
    """Who changes; with a `streams` column (each stream whose verdict changes) when the
    candidate policy has streams."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    streamed = any(isinstance(change.streams, list) for change in changed)
    writer.writerow(["email", "before", "after", *(["streams"] if streamed else [])])
    for change in changed:
        writer.writerow(
            [
                csv_cell(change.email),
                csv_cell(verdict_text(change.before)),
                csv_cell(verdict_text(change.after)),
                *([csv_cell(streams_text(change))] if streamed else []),
            ]
        )
    return out.getvalue()


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def _given_text(form: Any) -> str:
    """The candidate's text: the uploaded file when one was given, else the text field."""
    upload = form.get("file")
    if isinstance(upload, UploadFile):
        try:
            data = await upload.read(MAX_TOML * 4 + 1)
        finally:
            await upload.close()
        if data:
            if len(data) > MAX_TOML * 4:
                raise CandidateError(f"the file is too large (at most {MAX_TOML} characters)")
            try:
                return _lf(data.decode("utf-8-sig"))
            except UnicodeDecodeError:
                raise CandidateError(f"{upload.filename or 'the file'} is not UTF-8 text") from None
    text = form.get("toml")
    return _lf(text) if isinstance(text, str) else ""


def parse_candidate(text: str) -> Candidate:
    """The candidate policy in `text`, checked as `rebuild --policy` checks a file."""
    if not text.strip():
        raise CandidateError(
            "no candidate policy: paste its TOML or upload a file "
            "(an empty policy would be the built-in defaults: say so with a comment line)"
        )
    if len(text) > MAX_TOML:
        raise CandidateError(f"the policy is too large (at most {MAX_TOML} characters)")
    try:
        policy = parse_policy(text, known_sources=KNOWN_SOURCES, origin="candidate policy")
        policy = check_event_names(policy, "candidate policy")
    except PolicyInvalid as exc:
        raise CandidateError(str(exc)) from exc
    return Candidate(text, policy, policy_hash(policy))


async def _overview(runtime: Runtime) -> dict[str, Any]:
    """What the policy page shows: the active policy and the history."""
    active = runtime.policy
    history = await policy_history.history_view(runtime.store, active)
    current = history.changes[-1] if history.recorded and history.changes else None
    return {
        "active": active,
        "active_hash": history.active_hash,
        "active_toml": current.toml if current is not None else None,
        "active_entry": current,
        "changes": list(reversed(history.changes)),
    }


async def _policy_page(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    text: str | None,
    error: str | None,
    status_code: int,
) -> Template:
    overview = await _overview(runtime)
    if text is None:  # a fresh page: the active policy's recorded text, to edit
        text = overview["active_toml"] or ""
    return page(
        request,
        "policy.html",
        "policy",
        status_code=status_code,
        text=text,
        error=error,
        **overview,
    )


async def _preview_page(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    candidate: Candidate,
    error: str | None = None,
    status_code: int = 200,
    note: str = "",
) -> Template:
    report = await rebuild(runtime.store, candidate.policy, dry_run=True)
    transitions = Counter(
        (verdict_text(change.before), verdict_text(change.after)) for change in report.changed
    )
    return page(
        request,
        "policy_preview.html",
        "policy",
        status_code=status_code,
        candidate=candidate,
        same=candidate.policy == runtime.policy,
        active_hash=runtime.projector.policy_hash,
        report=report,
        transitions=sorted(transitions.items(), key=lambda item: (-item[1], item[0])),
        rows=[
            (
                change.email,
                verdict_text(change.before),
                verdict_text(change.after),
                streams_text(change),
            )
            for change in report.changed[:PREVIEW_ROWS]
        ],
        streamed=bool(candidate.policy.streams),
        limit=PREVIEW_ROWS,
        error=error,
        note=note,
    )


@get("/policy", name="console-policy")
async def policy_page(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Template:
    return await _policy_page(request, runtime, None, None, 200)


@post("/policy/preview", status_code=200)
async def preview(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Template:
    form = await request.form()
    text = form.get("toml")
    kept = _lf(text) if isinstance(text, str) else ""
    try:
        kept = await _given_text(form)
        candidate = parse_candidate(kept)
    except CandidateError as exc:
        return await _policy_page(request, runtime, kept, str(exc), 400)
    return await _preview_page(request, runtime, candidate)


async def _candidate(
    request: Request[Any, Any, Any], runtime: Runtime, form: Any
) -> Candidate | Response[Any]:
    """The candidate policy a form carries, or the policy page with why it is refused."""
    try:
        return parse_candidate(await _given_text(form))
    except CandidateError as exc:
        text = form.get("toml")
        return await _policy_page(
            request, runtime, text if isinstance(text, str) else "", str(exc), 400
        )


@post("/policy/preview.csv", status_code=200)
async def preview_csv(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    form = await request.form()
    candidate = await _candidate(request, runtime, form)
    if isinstance(candidate, Response):
        return candidate
    report = await rebuild(runtime.store, candidate.policy, dry_run=True)
    return Response(
        changes_csv(report.changed).encode(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="policy-{candidate.hash[:12]}-changes.csv"'
            ),
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _adopted(runtime: Runtime, digest: str) -> bool:
    """Wait until this instance's projector follows policy `digest` (False on timeout)."""
    projector = runtime.projector
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ADOPT_TIMEOUT
    while projector.policy_hash != digest:
        if loop.time() > deadline:
            return False
        with contextlib.suppress(PolicyMismatch, StoreUnavailable):  # try again
            await projector.follow()
        if projector.policy_hash != digest:
            await asyncio.sleep(0.05)
    return True


@post("/policy/apply", status_code=303)
async def apply(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    form = await request.form()
    candidate = await _candidate(request, runtime, form)
    if isinstance(candidate, Response):
        return candidate
    raw_note = form.get("note")
    note = raw_note.strip() if isinstance(raw_note, str) else ""
    if not note:
        return await _preview_page(
            request,
            runtime,
            candidate,
            "nothing applied: say why the policy changes (the note is recorded with your name)",
            400,
        )
    if len(note) > MAX_NOTE:
        return await _preview_page(
            request,
            runtime,
            candidate,
            f"nothing applied: the note is too long (at most {MAX_NOTE})",
            400,
        )
    lock = request.app.state.get(_APPLYING)
    if lock is None:
        lock = request.app.state[_APPLYING] = asyncio.Lock()
    async with lock:
        return await _apply(request, runtime, candidate, note)


async def _apply(
    request: Request[Any, Any, Any], runtime: Runtime, candidate: Candidate, note: str
) -> Redirect:
    actor = operator(request)
    current = await active_policy(runtime.store)
    if candidate.policy == current:
        return back(
            request, "/console/policy", "nothing changed: that is already the active policy"
        )
    change: NewReceipt = policy_history.change_receipt(
        candidate.policy,
        candidate.text,
        actor=actor,
        note=note,
        at=time.time_ns() // 1000,
        origin="console",
    )
    report: RebuildReport = await rebuild(runtime.store, candidate.policy, record=change)
    recorded = await policy_history.history(runtime.store)
    seq = next(
        (item.seq for item in reversed(recorded) if item.change.policy_hash == report.policy_hash),
        None,
    )
    followed = await _adopted(runtime, report.policy_hash)
    count = len(report.changed)
    notice = (
        f"policy {report.policy_hash[:12]} applied by {actor}"
        f"{f', recorded as receipt {seq}' if seq else ''}: "
        f"{count} address{'' if count == 1 else 'es'} changed"
    )
    if not followed:
        notice += " (this instance is still switching over: reload in a moment)"
    return back(request, "/console/policy", notice)


HANDLERS = [policy_page, preview, preview_csv, apply]
