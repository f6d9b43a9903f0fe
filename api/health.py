"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.runtime import Runtime
from api.schemas import Health, Readiness


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/healthz", summary="Liveness: the ledger answers")
async def healthz(request: Request[Any, Any, Any]) -> Health:
    runtime = _runtime(request)
    receipts = await runtime.store.last_seq()
    return Health(status="ok", receipts=receipts, projected=runtime.projector.projected_seq)


@get("/readyz", summary="Readiness: ledger writable, projection current and under this policy")
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    problems = await _runtime(request).readiness()
    ready = not any(problems.values())
    return Response(Readiness(ready=ready, problems=problems), status_code=200 if ready else 503)


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, Any]) -> bytes:
    runtime = _runtime(request)
    return await runtime.metrics.render(runtime)
