"""Suppression queries: one address, the list (keyset pages, filtered and sorted), a
campaign check."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from api.runtime import Runtime
from api.schemas import (
    CheckRequest,
    CheckResult,
    OperatorNote,
    Status,
    SuppressionPage,
    parse_when,
)
from projections import operator, queries, search
from projections.audit import Explanation, explain, status_as_of
from projections.state import Reason


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/v1/suppressions/{email:str}", summary="Is this address suppressed, and why?")
async def get_suppression(
    email: FromPath[str],
    request: Request[Any, Any, Any],
    as_of: Annotated[
        str | None, QueryParameter(description="the state as it was at this event time")
    ] = None,
) -> Status:
    runtime = _runtime(request)
    when = parse_when(as_of, "as_of")
    if when is not None:
        return await status_as_of(
            runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash, when
        )
    return await queries.status(runtime.store, email, runtime.projector.policy_hash)


@get("/v1/suppressions/{email:str}/explain", summary="Why: the events and policy behind a verdict")
async def explain_suppression(email: FromPath[str], request: Request[Any, Any, Any]) -> Explanation:
    runtime = _runtime(request)
    return await explain(
        runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash
    )


async def _operator_action(
    action: operator.Action, email: str, note: str, request: Request[Any, Any, Any]
) -> Status:
    runtime = _runtime(request)
    actor = str(request.state.get("api_key_name", "api"))
    try:
        seq = await operator.record(
            runtime.store, action, email, actor=actor, note=note, at=time.time_ns() // 1000
        )
    except ValueError as exc:
        raise ValidationException(str(exc)) from exc
    await runtime.projector.wait_until(seq)
    return await queries.status(runtime.store, email, runtime.projector.policy_hash)


@put("/v1/suppressions/{email:str}", summary="Suppress an address by hand (reason `manual`)")
async def suppress(
    email: FromPath[str], data: JSONBody[OperatorNote], request: Request[Any, Any, Any]
) -> Status:
    return await _operator_action("suppress", email, data.note, request)


@delete(
    "/v1/suppressions/{email:str}",
    status_code=200,
    summary="Lift an address's current suppression (a later hard bounce suppresses again)",
)
async def release(
    email: FromPath[str],
    request: Request[Any, Any, Any],
    data: JSONBody[OperatorNote | None] = None,
    note: Annotated[
        str | None,
        QueryParameter(description="why, when the client cannot send a body with DELETE"),
    ] = None,
) -> Status:
    why = data.note if data is not None else note
    if not why or not why.strip():
        raise ValidationException('a release needs a note saying why ({"note": …} or ?note=)')
    return await _operator_action("release", email, why, request)


@get(
    "/v1/suppressions",
    summary="The suppression list: keyset pages, optionally filtered and sorted",
    description=(
        "Without filters: every suppressed address in address order, as before. Filters "
        "(each optional, combined with AND): `reason`; `provider`, the source of the "
        "evidence receipt (`operator` for a manual one); `since` and `until`, days "
        "(YYYY-MM-DD, UTC) on when the suppression began, `until` included; `q`, text "
        "the address contains. `sort`: `email` (default), `since` (oldest first) or "
        "`-since` (newest first). Pass `next` as `after` for the following page (with "
        "the same filters and sort); `next` is null on the last page."
    ),
)
async def list_suppressions(
    request: Request[Any, Any, Any],
    after: Annotated[
        str | None, QueryParameter(description="the `next` of the previous page")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    reason: Annotated[Reason | None, QueryParameter(description="only this reason")] = None,
    provider: Annotated[
        str | None,
        QueryParameter(description="only evidence from this source: a provider, or operator"),
    ] = None,
    since: Annotated[
        str | None, QueryParameter(description="suppressed on or after this day (YYYY-MM-DD)")
    ] = None,
    until: Annotated[
        str | None, QueryParameter(description="suppressed on or before this day (YYYY-MM-DD)")
    ] = None,
    q: Annotated[
        str | None, QueryParameter(description="text the address contains", max_length=320)
    ] = None,
    sort: Annotated[search.Sort, QueryParameter(description="the order of the list")] = "email",
) -> SuppressionPage:
    runtime = _runtime(request)
    try:
        wanted = search.parse_filter(
            reason=reason, provider=provider, since=since, until=until, q=q, sort=sort
        )
        found = await search.search(
            runtime.store, runtime.projector.policy_hash, wanted, after=after, limit=limit
        )
    except search.BadFilter as exc:
        raise ValidationException(str(exc)) from exc
    return SuppressionPage(items=found.items, next=found.next)


@post("/v1/suppressions/check", status_code=200, summary="Which of these addresses are suppressed?")
async def check_suppressions(
    data: JSONBody[CheckRequest], request: Request[Any, Any, Any]
) -> CheckResult:
    runtime = _runtime(request)
    found = await queries.check(runtime.store, runtime.projector.policy_hash, data.emails)
    # Each suppressed address comes back as it was given, so the caller can match it
    # against its own list without normalizing (the verdict is case-insensitive).
    hits = [msgspec.structs.replace(hit, email=given) for given, hit in found.items()]
    return CheckResult(checked=len(data.emails), suppressed=hits)
