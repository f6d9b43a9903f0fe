"""Liveness: the ledger answers and how far the projection has folded it."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from api.runtime import Runtime
from api.schemas import Health


@get("/healthz", summary="Liveness: the ledger answers")
async def healthz(request: Request[Any, Any, Any]) -> Health:
    runtime: Runtime = request.app.state.runtime
    receipts = await runtime.store.last_seq()
    return Health(status="ok", receipts=receipts, projected=runtime.projector.projected_seq)
