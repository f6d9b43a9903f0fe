"""Suppression queries: one address, the list (keyset pages), a campaign check."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.runtime import Runtime
from api.schemas import CheckRequest, CheckResult, Status, SuppressionPage
from projections import queries


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/v1/suppressions/{email:str}", summary="Is this address suppressed, and why?")
async def get_suppression(email: FromPath[str], request: Request[Any, Any, Any]) -> Status:
    runtime = _runtime(request)
    return await queries.status(runtime.store, email, runtime.projector.policy_hash)


@get("/v1/suppressions", summary="The suppression list, in address order")
async def list_suppressions(
    request: Request[Any, Any, Any],
    after: Annotated[
        str | None, QueryParameter(description="the `next` of the previous page")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
) -> SuppressionPage:
    runtime = _runtime(request)
    items = await queries.suppressions(
        runtime.store, runtime.projector.policy_hash, after=after, limit=limit
    )
    return SuppressionPage(items=items, next=items[-1].email if len(items) == limit else None)


@post("/v1/suppressions/check", status_code=200, summary="Which of these addresses are suppressed?")
async def check_suppressions(
    data: JSONBody[CheckRequest], request: Request[Any, Any, Any]
) -> CheckResult:
    runtime = _runtime(request)
    found = await queries.check(runtime.store, runtime.projector.policy_hash, data.emails)
    return CheckResult(checked=len(data.emails), suppressed=list(found.values()))
