"""Suppression queries: one address, the list (keyset pages, filtered and sorted), a
campaign check."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from api import paths
from api.freshness import FRESH
from api.logs import note
from api.runtime import Runtime
from api.schemas import (
    BEHIND,
    MAX_CHECK_BODY,
    MAX_SEQ,
    REFUSED,
    CheckRequest,
    CheckResult,
    OperatorNote,
    ReleaseRequest,
    Status,
    SuppressionPage,
    if_match,
    parse_when,
)
from projections import operator, queries, releases, search, streams
from projections.audit import Explanation, explain, status_as_of
from projections.state import Reason


@get(
    "/v1/suppressions/{email:str}",
    summary="Is this address suppressed, and why?",
    description=(
        "Every active cause is listed in `causes`; `newest_evidence` (also the `ETag`) is "
        "the receipt of the newest evidence the verdict rests on: send it as `If-Match` with "
        "a release to have it refused (409) if newer evidence arrives first."
    ),
    guards=FRESH,
    responses=BEHIND,
)
async def get_suppression(
    email: FromPath[str],
    runtime: NamedDependency[Runtime],
    as_of: Annotated[
        str | None,
        QueryParameter(
            description="what the service answered at this time: the receipts received by "
            "then, under the policy in force then",
            max_length=64,
        ),
    ] = None,
    stream: Annotated[
        str | None,
        QueryParameter(
            description="the kind of mail (a stream of the policy) to answer for; without "
            "it, every stream: suppressed when any cause is active",
            max_length=64,
        ),
    ] = None,
) -> Response[Status]:
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    when = parse_when(as_of, "as_of")
    if when is not None:
        found = await status_as_of(
            runtime.store,
            email,
            runtime.projector.mapper,
            runtime.projector.policy_hash,
            when,
            stream,
        )
        return Response(found)
    scope = streams.scope(runtime.projector.mapper.policy, stream)
    found = await queries.status(
        runtime.store, email, runtime.projector.policy_hash, runtime.settings.erasure_key, scope
    )
    return Response(found, headers={"ETag": f'"{found.newest_evidence}"'})


@get(
    "/v1/suppressions/{email:str}/explain",
    summary="Why: the events and policy behind a verdict",
    guards=FRESH,
    responses=BEHIND,
)
async def explain_suppression(
    email: FromPath[str],
    runtime: NamedDependency[Runtime],
    stream: Annotated[
        str | None,
        QueryParameter(
            description="the stream of the policy the verdict is for (without it: every "
            "stream); `streams` gives each stream's verdict and the rule that decided it",
            max_length=64,
        ),
    ] = None,
) -> Explanation:
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    return await explain(
        runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash, stream
    )


def _actor(request: Request[Any, Any, Any]) -> str:
    return str(request.state.get("api_key_name", "api"))


@put("/v1/suppressions/{email:str}", summary="Suppress an address by hand (reason `manual`)")
async def suppress(
    email: FromPath[str],
    data: JSONBody[OperatorNote],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
) -> Status:
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    chosen, shown = _streams(runtime, data.streams)
    try:
        seq = await operator.record(
            runtime.store,
            "suppress",
            email,
            actor=_actor(request),
            note=data.note,
            at=time.time_ns() // 1000,
            streams=chosen,
        )
    except ValueError as exc:
        raise ValidationException(str(exc)) from exc
    await runtime.projector.wait_until(seq)
    return await queries.status(
        runtime.store, email, runtime.projector.policy_hash, runtime.settings.erasure_key, shown
    )


def _streams(runtime: Runtime, names: list[str]) -> tuple[tuple[str, ...], streams.Scope | None]:
    """The streams an action names, each checked against the policy (UnknownStream: 400),
    and the view to answer in: the one stream named, else every stream."""
    scopes = [streams.scope(runtime.projector.mapper.policy, name) for name in names]
    return tuple(dict.fromkeys(names)), scopes[0] if len(scopes) == 1 else None


@delete(
    "/v1/suppressions/{email:str}",
    status_code=200,
    summary="Release an address's bounces (and the opt-outs named in `also`)",
    description=(
        "Lifts the evidence in the ledger of the address's bounce causes (`hard_bounce`, "
        "`soft_bounce_threshold`); a `complaint`, `unsubscribe`, `manual` or "
        "`provider_suppressed` cause is lifted only when named in `also` (or `all`). With "
        'a precondition — `If-Match: "N"` (the status\'s ETag), `expect` in the body or '
        "the query — the release is refused with 409, and nothing recorded, when newer "
        "evidence has arrived; so a retried DELETE never lifts what arrived in between. "
        "An address suppressed only by causes not named is refused with 409 as well. The "
        "answer is the status after the release; a later bounce suppresses again."
    ),
    guards=FRESH,
    responses=REFUSED,
)
async def release(
    email: FromPath[str],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    data: JSONBody[ReleaseRequest | None] = None,
    note: Annotated[
        str | None,
        QueryParameter(
            description="why, when the client cannot send a body with DELETE", max_length=2000
        ),
    ] = None,
    also: Annotated[
        str | None,
        QueryParameter(
            description="causes to lift beyond the bounces, comma-separated: complaint, "
            "unsubscribe, manual, provider_suppressed, or all",
            max_length=200,
        ),
    ] = None,
    expect: Annotated[
        int | None,
        QueryParameter(ge=0, le=MAX_SEQ, description="the newest evidence receipt you saw"),
    ] = None,
    precondition: Annotated[
        str | None,
        HeaderParameter(
            name="If-Match",
            max_length=64,
            description='the status\'s ETag (`"N"`): the newest evidence receipt you saw',
        ),
    ] = None,
    stream: Annotated[
        str | None,
        QueryParameter(
            description="only for this stream of the policy: lifts the causes of that stream "
            "alone (without it, and without `streams` in the body: every stream)",
            max_length=64,
        ),
    ] = None,
) -> Status:
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    why = data.note if data is not None else note
    if not why or not why.strip():
        raise ValidationException('a release needs a note saying why ({"note": …} or ?note=)')
    try:
        named = releases.parse_also(data.also if data is not None and data.also else [also or ""])
    except ValueError as exc:
        raise ValidationException(str(exc)) from exc
    seen = data.expect if data is not None and data.expect is not None else expect
    if seen is None:
        seen = if_match(precondition)
    asked = data.streams if data is not None and data.streams else [stream] if stream else []
    chosen, _ = _streams(runtime, asked)
    try:
        return await releases.release(
            runtime.store,
            runtime.projector.policy_hash,
            email,
            actor=_actor(request),
            note=why,
            also=named,
            expect=seen,
            now=time.time_ns() // 1000,
            settle=runtime.projector.wait_until,
            key=runtime.settings.erasure_key,
            streams=chosen,
        )
    except ValueError as exc:
        raise ValidationException(str(exc)) from exc


@get(
    "/v1/suppressions",
    summary="The suppression list: keyset pages, optionally filtered and sorted",
    guards=FRESH,
    responses=BEHIND,
    description=(
        "Without filters: every suppressed address in address order, as before. Filters "
        "(each optional, combined with AND): `reason`; `provider`, the source of the "
        "evidence receipt (`operator` for a manual one); `since` and `until`, days "
        "(YYYY-MM-DD, UTC) on when the suppression began, `until` included; `q`, text "
        "the address contains; `stream`, the addresses that stream of the policy may not "
        "mail (`reason` then filters the strongest reason blocking it). `sort`: `email` "
        "(default), `since` (oldest first) or "
        "`-since` (newest first). Pass `next` as `after` for the following page (with "
        "the same filters and sort); `next` is null on the last page."
    ),
)
async def list_suppressions(
    runtime: NamedDependency[Runtime],
    after: Annotated[
        str | None,
        QueryParameter(description="the `next` of the previous page", max_length=1024),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    reason: Annotated[Reason | None, QueryParameter(description="only this reason")] = None,
    provider: Annotated[
        str | None,
        QueryParameter(
            description="only evidence from this source: a provider, or operator", max_length=64
        ),
    ] = None,
    since: Annotated[
        str | None,
        QueryParameter(description="suppressed on or after this day (YYYY-MM-DD)", max_length=32),
    ] = None,
    until: Annotated[
        str | None,
        QueryParameter(description="suppressed on or before this day (YYYY-MM-DD)", max_length=32),
    ] = None,
    q: Annotated[
        str | None, QueryParameter(description="text the address contains", max_length=320)
    ] = None,
    sort: Annotated[search.Sort, QueryParameter(description="the order of the list")] = "email",
    stream: Annotated[
        str | None,
        QueryParameter(
            description="only addresses this stream of the policy may not mail, each with "
            "the reasons that block it",
            max_length=64,
        ),
    ] = None,
) -> SuppressionPage:
    scope = streams.scope(runtime.projector.mapper.policy, stream)
    try:
        wanted = search.parse_filter(
            reason=reason, provider=provider, since=since, until=until, q=q, sort=sort
        )
        wanted = search.for_stream(wanted, scope)
        found = await search.search(
            runtime.store, runtime.projector.policy_hash, wanted, after=after, limit=limit
        )
    except search.BadFilter as exc:
        note(exc.param, exc.why, exc.shown)  # what a log line may show of the value
        raise ValidationException(str(exc)) from exc
    return SuppressionPage(items=found.items, next=found.next)


@post(
    "/v1/suppressions/check",
    status_code=200,
    summary="Which of these addresses are suppressed?",
    guards=FRESH,
    responses=BEHIND,
    # up to 50,000 addresses, whatever BOUNCELEDGER_MAX_BODY_BYTES allows a webhook; read
    # only after the API key is checked
    request_max_body_size=MAX_CHECK_BODY,
)
async def check_suppressions(
    data: JSONBody[CheckRequest], runtime: NamedDependency[Runtime]
) -> CheckResult:
    scope = streams.scope(runtime.projector.mapper.policy, data.stream)
    found = await queries.check(
        runtime.store,
        runtime.projector.policy_hash,
        data.emails,
        runtime.settings.erasure_key,
        scope,
    )
    # Each suppressed address comes back as it was given, so the caller can match it
    # against its own list without normalizing (the verdict is case-insensitive).
    hits = [msgspec.structs.replace(hit, email=given) for given, hit in found.items()]
    shown = msgspec.UNSET if data.stream is None else data.stream
    return CheckResult(checked=len(data.emails), suppressed=hits, stream=shown)
