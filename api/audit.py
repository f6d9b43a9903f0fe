"""Audit routes: a recipient's timeline and the raw receipts, exactly as received."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, PathParameter, QueryParameter

from api.runtime import Runtime
from api.schemas import MAX_SEQ, ReceiptPage, ReceiptView, not_found, parse_when
from projections.audit import TimelineEntry, timeline


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/v1/audit/recipients/{email:str}/events", summary="Every event for an address")
async def recipient_events(
    email: FromPath[str], request: Request[Any, Any, Any]
) -> list[TimelineEntry]:
    runtime = _runtime(request)
    return await timeline(
        runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash
    )


@get("/v1/audit/receipts", summary="Receipts in ledger order (keyset pages)")
async def list_receipts(
    request: Request[Any, Any, Any],
    after: Annotated[
        int, QueryParameter(ge=0, le=MAX_SEQ, description="the `next` of the previous page")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    source: Annotated[str | None, QueryParameter()] = None,
    since: Annotated[str | None, QueryParameter(description="received at or after")] = None,
    until: Annotated[str | None, QueryParameter(description="received before")] = None,
) -> ReceiptPage:
    receipts = await _runtime(request).store.list_receipts(
        after_seq=after,
        limit=limit,
        source=source,
        since=parse_when(since, "since"),
        until=parse_when(until, "until"),
    )
    items = [ReceiptView.summary(receipt) for receipt in receipts]
    return ReceiptPage(items=items, next=items[-1].seq if len(items) == limit else None)


@get(
    "/v1/audit/receipts/{seq:int}",
    summary="One receipt: metadata and body; `?raw=true` for the body's exact bytes",
    responses=not_found("receipt"),
)
async def get_receipt(
    seq: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)],
    request: Request[Any, Any, Any],
    raw: Annotated[bool, QueryParameter()] = False,
) -> Response[Any]:
    receipt = await _runtime(request).store.get(seq)
    if receipt is None:
        raise NotFoundException(f"no receipt {seq}")
    if raw:
        return Response(
            receipt.body,
            media_type=receipt.content_type or "application/octet-stream",
            headers={
                "X-Receipt-Seq": str(receipt.seq),
                "X-Receipt-Source": receipt.source,
                "X-Body-SHA256": receipt.body_sha256.hex(),
            },
        )
    view = ReceiptView.full(receipt)
    return Response(msgspec.json.encode(view), media_type="application/json")
