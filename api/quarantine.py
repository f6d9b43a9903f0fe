"""Quarantine routes: list the deliveries refused as undecodable (keyset pages, without
bodies), show one with its body, replay one."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from api.runtime import Runtime
from api.schemas import MAX_SEQ, not_found
from projections.quarantine_replay import Kept, KeptBody, Replay, item, listing, replay_kept


class QuarantinePage(msgspec.Struct, frozen=True):
    """One page of the quarantine, without bodies (GET /v1/quarantine/{id} shows one);
    pass `next` as `after` for the following page."""

    items: list[Kept]
    next: int | None


@get(
    "/v1/quarantine",
    summary="Deliveries refused as undecodable after authentication (keyset pages)",
)
async def list_quarantine(
    runtime: NamedDependency[Runtime],
    all_: Annotated[bool, QueryParameter(name="all", description="include replayed")] = False,
    after: Annotated[
        int, QueryParameter(ge=0, le=MAX_SEQ, description="the `next` of the previous page")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> QuarantinePage:
    items = await listing(runtime.store, include_replayed=all_, after=after, limit=limit)
    return QuarantinePage(items=items, next=items[-1].id if len(items) == limit else None)


@get(
    "/v1/quarantine/{qid:int}",
    summary="One quarantined delivery, with its body",
    responses=not_found("quarantined delivery"),
)
async def get_quarantined(
    qid: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)], runtime: NamedDependency[Runtime]
) -> KeptBody:
    found = await item(runtime.store, qid)
    if found is None:
        raise NotFoundException(f"no quarantined delivery {qid}")
    return found


@post(
    "/v1/quarantine/{qid:int}/replay",
    status_code=200,
    summary="Append a quarantined delivery to the ledger if today's decoder reads it",
    responses=not_found("quarantined delivery"),
)
async def replay_quarantined(
    qid: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)], runtime: NamedDependency[Runtime]
) -> Replay:
    outcome = await replay_kept(runtime.store, qid)
    if outcome is None:
        raise NotFoundException(f"no quarantined delivery {qid}")
    return outcome
