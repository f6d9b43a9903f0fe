"""Audit routes: a recipient's timeline and the raw receipts, exactly as received."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import FromPath, PathParameter, QueryParameter

from api import paths
from api.runtime import Runtime
from api.schemas import MAX_SEQ, ReceiptPage, ReceiptView, not_found, parse_when
from projections.audit import TimelineEntry, timeline
from projections.policy_history import PolicyHistory, history_view


@dataclass
class RawOrJson(Operation):
    """The receipt route's OpenAPI entry: JSON, or with `?raw=true` the body's exact bytes
    as a download (`application/octet-stream`)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                **(ok.content or {}),
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                ),
            }


# A receipt's source, as a query value: a door's or a writer's name (the providers,
# `operator`, `policy`, `import`), so letters, digits, `_`, `.` and `-` only.
MAX_SOURCE = 80  # characters of a `source` query value, spaces around it included
SOURCE_PATTERN = r"^\s*[A-Za-z0-9_.-]{0,64}\s*$"
MAX_TIME = 64  # characters of a time in a query: longer than any ISO-8601 time


@get("/v1/audit/recipients/{email:str}/events", summary="Every event for an address")
async def recipient_events(
    email: FromPath[str], runtime: NamedDependency[Runtime]
) -> list[TimelineEntry]:
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    return await timeline(
        runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash
    )


@get("/v1/audit/policies", summary="Every policy put into effect: when, by whom, why")
async def policy_history(runtime: NamedDependency[Runtime]) -> PolicyHistory:
    return await history_view(runtime.store, runtime.policy)


@get("/v1/audit/receipts", summary="Receipts in ledger order (keyset pages)")
async def list_receipts(
    runtime: NamedDependency[Runtime],
    after: Annotated[
        int, QueryParameter(ge=0, le=MAX_SEQ, description="the `next` of the previous page")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    source: Annotated[
        str | None,
        QueryParameter(
            description="only receipts from this source: a provider, operator, policy, import",
            max_length=MAX_SOURCE,
            pattern=SOURCE_PATTERN,
        ),
    ] = None,
    since: Annotated[
        str | None,
        QueryParameter(
            description="received at or after (ISO-8601, or epoch seconds; years 1 to 9999)",
            max_length=MAX_TIME,
        ),
    ] = None,
    until: Annotated[
        str | None,
        QueryParameter(
            description="received before (ISO-8601, or epoch seconds; years 1 to 9999)",
            max_length=MAX_TIME,
        ),
    ] = None,
) -> ReceiptPage:
    receipts = await runtime.store.list_receipts(
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
    operation_class=RawOrJson,
)
async def get_receipt(
    seq: Annotated[int, PathParameter(ge=1, le=MAX_SEQ)],
    runtime: NamedDependency[Runtime],
    raw: Annotated[bool, QueryParameter()] = False,
) -> Response[Any]:
    receipt = await runtime.store.get(seq)
    if receipt is None:
        raise NotFoundException(f"no receipt {seq}")
    if raw:
        # The bytes are the sender's: never served as what they claim to be (a stored
        # text/html body would run in the reader's browser), only as a download.
        return Response(
            receipt.body,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="receipt-{receipt.seq}"',
                "X-Content-Type-Options": "nosniff",
                "X-Receipt-Seq": str(receipt.seq),
                "X-Receipt-Source": _header_safe(receipt.source),
                "X-Receipt-Content-Type": _header_safe(receipt.content_type),
                "X-Body-SHA256": receipt.body_sha256.hex(),
            },
        )
    view = ReceiptView.full(receipt)
    return Response(msgspec.json.encode(view), media_type="application/json")


def _header_safe(text: str) -> str:
    """A stored value as a header value: visible ASCII and spaces only (anything else,
    an imported or odd content type, is %-escaped), so it can neither break the header
    block nor be refused by the server."""
    return "".join(
        char if " " <= char <= "~" and char != "%" else "".join(f"%{b:02X}" for b in char.encode())
        for char in text
    )
