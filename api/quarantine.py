"""Quarantine routes: list the deliveries refused as undecodable, replay one."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from api.runtime import Runtime
from api.schemas import MAX_SEQ, not_found
from projections.quarantine import Kept, Replay, listing, replay


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/v1/quarantine", summary="Deliveries refused as undecodable after authentication")
async def list_quarantine(
    request: Request[Any, Any, Any],
    all_: Annotated[bool, QueryParameter(name="all", description="include replayed")] = False,
) -> list[Kept]:
    return await listing(_runtime(request).store, include_replayed=all_)


@post(
    "/v1/quarantine/{qid:int}/replay",
    status_code=200,
    summary="Append a quarantined delivery to the ledger if today's decoder reads it",
    responses=not_found("quarantined delivery"),
)
async def replay_quarantined(
    qid: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)], request: Request[Any, Any, Any]
) -> Replay:
    outcome = await replay(_runtime(request).store, qid)
    if outcome.error == "no such quarantined delivery":
        raise NotFoundException(f"no quarantined delivery {qid}")
    return outcome
