"""Console: the suppression list — filtered, sorted, paged by keyset, exported as CSV —
and releasing several addresses at once (confirmed, with a required note, each release
recorded as an operator receipt with the signed-in key's name as its actor).

Filters (query string, every one optional): `reason`, `provider` (the source of the
evidence receipt), `since` and `until` (days, YYYY-MM-DD in UTC, on the suppression's
`since`; `until` includes the day it names), `q` (text the address contains), `sort`
(`email`, `since`, `-since`), `stream` (when the policy defines streams: the addresses
that stream may not mail, each with the reasons that block it — as GET /v1/suppressions
answers), and `after` (the cursor of the page before). A page holds 100 rows; the count
shown is the page's own (no count of the whole list per view).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Stream, Template

from api.console.pages import named_causes
from api.console.render import Streamed, back, operator, page
from api.freshness import FRESH
from api.logs import note
from api.runtime import Runtime
from projections import queries, releases, search
from projections.recipients import normalize_recipient
from projections.state import Reason

PAGE = 100  # rows on a page
MAX_RELEASE = 1000  # addresses released at once
MAX_NOTE = 2000  # characters of a note (as the API takes)
CSV_CHUNK = 5000  # rows read per transaction while exporting
# `reason` is the strongest cause; `reasons` every active one, space-separated.
CSV_HEADER = ("email", "reason", "provider", "since", "receipt", "last_event", "reasons")
LIST = "/console/suppressions"
CSV = "/console/suppressions.csv"
_FORMULA = frozenset("=+-@\t\r")  # first characters a spreadsheet may run as a formula


def csv_cell(text: str) -> str:
    """Text as a CSV cell a spreadsheet shows as text: one starting with = + - @ (or a
    tab or carriage return) gets a leading single quote, so it is never a formula."""
    return "'" + text if text[:1] in _FORMULA else text


def _given(values: dict[str, str | None]) -> dict[str, str]:
    """The filter as given (non-empty values only), for links and the form."""
    return {key: value.strip() for key, value in values.items() if value and value.strip()}


def _kept(given: dict[str, str], chosen: Streamed) -> dict[str, str]:
    """The filter and the stream as given: what the page's links keep."""
    return {**given, "stream": chosen.given} if chosen.given else given


def _url(base: str, given: dict[str, str], sort: str, after: str | None = None) -> str:
    """`base` with the filter `given`, the sort (left out when it is the default) and a
    cursor."""
    query = dict(given)
    if sort != "email":
        query["sort"] = sort
    if after:
        query["after"] = after
    return f"{base}?{urlencode(query)}" if query else base


@get("/suppressions", name="console-suppressions", guards=FRESH)
async def suppressions(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    reason: FromQuery[str | None] = None,
    provider: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    after: FromQuery[str | None] = None,
    stream: FromQuery[str | None] = None,
) -> Template:
    """The suppression list: the filter form, a page of rows to tick for release."""
    given = _given({"reason": reason, "provider": provider, "since": since, "until": until, "q": q})
    chosen = Streamed.of(runtime, stream)
    given_sort = (sort or "").strip() or "email"
    error = chosen.error
    result = search.Page(items=[], next=None)
    try:
        wanted = search.parse_filter(**given, sort=given_sort)
        if error is None:
            result = await search.search(
                runtime.store,
                runtime.projector.policy_hash,
                search.for_stream(wanted, chosen.scope),
                after=after or None,
                limit=PAGE,
            )
    except search.BadFilter as exc:
        note(exc.param, exc.why, exc.shown)
        error = str(exc)
        given_sort = given_sort if given_sort in search.SORTS else "email"
    kept = _kept(given, chosen)
    return page(
        request,
        "suppressions.html",
        "suppressions",
        status_code=400 if error else 200,
        error=error,
        given=given,
        chosen=chosen,
        sort=given_sort,
        reasons=search.REASONS,
        providers=search.PROVIDER_NAMES,
        rows=result.items,
        first_link=_url(LIST, kept, given_sort) if after and not error else None,
        next_link=_url(LIST, kept, given_sort, result.next) if result.next else None,
        sort_email=_url(LIST, kept, "email"),
        sort_since=_url(LIST, kept, "-since" if given_sort == "since" else "since"),
        csv_link=_url(CSV, kept, given_sort),
        max_release=MAX_RELEASE,
    )


@get("/suppressions.csv", name="console-suppressions-csv")
async def suppressions_csv(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    reason: FromQuery[str | None] = None,
    provider: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    stream: FromQuery[str | None] = None,
) -> Response[Any]:
    """Every row of the filter (for the stream, when one is named) as CSV, in the page's
    order, streamed chunk by chunk."""
    given = _given({"reason": reason, "provider": provider, "since": since, "until": until, "q": q})
    chosen = Streamed.of(runtime, stream)
    if chosen.error is not None:
        return Response(f"{chosen.error}\n", status_code=400, media_type="text/plain")
    try:
        wanted = search.for_stream(search.parse_filter(**given, sort=sort), chosen.scope)
    except search.BadFilter as exc:
        note(exc.param, exc.why, exc.shown)
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    # checked before the first byte too, so that a mismatch is an error answer (503)
    await search.check_policy(runtime.store, runtime.projector.policy_hash)
    return Stream(
        _csv(search.stream(runtime.store, runtime.projector.policy_hash, wanted, chunk=CSV_CHUNK)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


async def _csv(chunks: AsyncIterator[list[search.Entry]]) -> AsyncIterator[bytes]:
    """The CSV, a chunk of rows at a time. Every text cell is guarded by `csv_cell`; the
    times are written as `YYYY-MM-DDTHH:MM:SSZ` and the receipt as a number, which never
    start with a formula character."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    yield out.getvalue().encode()
    async for entries in chunks:
        out.seek(0)
        out.truncate()
        writer.writerows(
            (
                csv_cell(e.email),
                csv_cell(e.reason),
                csv_cell(e.provider),
                e.since,
                e.receipt,
                e.last_event,
                csv_cell(" ".join(e.reasons)),
            )
            for e in entries
        )
        yield out.getvalue().encode()


class Selection(msgspec.Struct, frozen=True):
    """What a release form sent: the addresses ticked (normalized, each once, in the
    order given), with the newest evidence the confirmation page showed for each (None
    on the list page, which shows no evidence), the causes ticked beyond the bounces,
    and the note."""

    emails: list[str]
    expects: dict[str, int | None]
    also: tuple[Reason, ...]
    note: str


async def _selected(request: Request[Any, Any, Any]) -> Selection:
    form = await request.form()
    given = [v for v in form.getall("email", []) if isinstance(v, str)]
    shown = [v for v in form.getall("expect", []) if isinstance(v, str)]
    expects: dict[str, int | None] = {}
    for index, value in enumerate(given):
        address = normalize_recipient(value)
        if address and address not in expects:
            seen = shown[index].strip() if index < len(shown) else ""
            expects[address] = int(seen) if seen.isdigit() else None
    note = form.get("note", "")
    return Selection(
        emails=list(expects),
        expects=expects,
        also=releases.parse_also([str(v) for v in form.getall("also", [])]),
        note=note.strip() if isinstance(note, str) else "",
    )


async def _confirm_page(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    emails: list[str],
    error: str | None,
    status: int = 200,
) -> Template:
    too_many = len(emails) > MAX_RELEASE
    rows: list[tuple[str, queries.Status | None]] = []
    if not too_many:
        found = await queries.statuses(
            runtime.store, emails, runtime.projector.policy_hash, runtime.settings.erasure_key
        )
        rows = [(email, found.get(email)) for email in emails]
    return page(
        request,
        "release_confirm.html",
        "suppressions",
        status_code=400 if too_many else status,
        count=len(emails),
        emails=[] if too_many else emails,
        rows=rows,
        named=named_causes([found for _, found in rows]),
        error=error,
        too_many=too_many,
        max_release=MAX_RELEASE,
    )


def _too_many(count: int) -> str:
    return (
        f"{count:,} addresses were selected: at most {MAX_RELEASE:,} can be released at once. "
        "Narrow the filter, or release them in several steps."
    )


@post("/suppressions/release", status_code=200, guards=FRESH)
async def release_selected(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    """Step one: show every cause of the addresses ticked on the list, and ask why."""
    selection = await _selected(request)
    if not selection.emails:
        return back(request, LIST, "nothing released: no address was selected")
    count = len(selection.emails)
    error = _too_many(count) if count > MAX_RELEASE else None
    return await _confirm_page(request, runtime, selection.emails, error)


@post("/suppressions/release/confirm", status_code=303, guards=FRESH)
async def release_confirmed(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    """Step two: one operator release per address, with the note and the operator's name,
    each checked against the evidence the confirmation page showed."""
    try:
        selection = await _selected(request)
    except ValueError as exc:
        return back(request, LIST, f"nothing released: {exc}")
    emails, note = selection.emails, selection.note
    if not emails:
        return back(request, LIST, "nothing released: no address was selected")
    if len(emails) > MAX_RELEASE:
        return await _confirm_page(request, runtime, emails, _too_many(len(emails)))
    if not note:
        return await _confirm_page(
            request, runtime, emails, "nothing released: a release needs a note saying why", 400
        )
    if len(note) > MAX_NOTE:
        return await _confirm_page(
            request,
            runtime,
            emails,
            f"nothing released: a note holds at most {MAX_NOTE} characters",
            400,
        )
    if any(seen is None for seen in selection.expects.values()):
        return await _confirm_page(
            request,
            runtime,
            emails,
            "nothing released: confirm on this page, which shows every cause",
            400,
        )
    return await _release(request, runtime, selection)


async def _release(
    request: Request[Any, Any, Any], runtime: Runtime, selection: Selection
) -> Redirect:
    actor = operator(request)
    outcomes = await releases.release_many(
        runtime.store,
        runtime.projector.policy_hash,
        [releases.Asked(email, selection.expects[email]) for email in selection.emails],
        actor=actor,
        note=selection.note,
        also=selection.also,
        now=time.time_ns() // 1000,
        settle=lambda seq: runtime.projector.wait_until(seq, timeout=5.0),
    )
    seqs = [outcome.receipt for outcome in outcomes if outcome.receipt is not None]
    refused = [outcome for outcome in outcomes if outcome.refused is not None]
    notice = f"released {len(seqs)} address(es) by {actor}"
    if seqs:
        notice += f", receipts #{min(seqs)} to #{max(seqs)}"
    if refused:
        first = refused[0]
        notice += (
            f"; {len(refused)} not released, nothing recorded for them "
            f"(first: {first.email}: {first.refused})"
        )
    return back(request, LIST, notice)


HANDLERS = [suppressions, suppressions_csv, release_selected, release_confirmed]
