"""Liveness, readiness and metrics.

`/healthz` and `/readyz` are open: a load balancer or an orchestrator probes them without
an API key. Without one they say only alive, or ready / not ready and the name of the
first failing check — no counts, no messages. With a valid key (or in `/metrics`, which
needs one) they give the detail: receipts and projection, every check's problem.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from api.runtime import Runtime
from api.schemas import Health, Readiness

PROBE = {"probe": True}  # open route: the API-key guard lets it through (api/auth.py)


def _keyed(request: Request[Any, Any, Any]) -> bool:
    """Whether the request presented a valid API key."""
    return request.state.get("api_key_name") is not None


@get("/healthz", summary="Liveness: the process answers (open; counts with an API key)", opt=PROBE)
async def healthz(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Health:
    if not _keyed(request):
        return Health(status="ok")  # alive: no database round trip, nothing revealed
    receipts = await runtime.store.last_seq()
    projector = runtime.projector
    return Health(
        status="ok",
        receipts=receipts,
        projected=projector.projected_seq,
        projecting=projector.leading,
    )


@get(
    "/readyz",
    summary="Readiness: ledger reachable and writable, projection current (open; detail "
    "with an API key)",
    opt=PROBE,
)
async def readyz(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Readiness]:
    problems = await runtime.readiness()
    failing = next((name for name, problem in problems.items() if problem), None)
    status = 503 if failing else 200
    if not _keyed(request):
        return Response(Readiness(ready=failing is None, failing=failing), status_code=status)
    return Response(
        Readiness(ready=failing is None, failing=failing, problems=problems), status_code=status
    )


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4")
async def metrics(runtime: NamedDependency[Runtime]) -> bytes:
    return await runtime.metrics.render(runtime)
