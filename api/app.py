"""The composition root: create_app(settings) -> Litestar, and the one error map."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.audit import get_receipt, list_receipts, recipient_events
from api.auth import require_api_key
from api.health import healthz, metrics, readyz
from api.quarantine import list_quarantine, replay_quarantined
from api.runtime import Runtime
from api.settings import Settings
from api.signatures import BasicAuthRequired, SignatureInvalid, SignatureUnverifiable
from api.suppressions import (
    check_suppressions,
    explain_suppression,
    get_suppression,
    list_suppressions,
    release,
    suppress,
)
from api.webhooks import receive_webhook
from ledger import LedgerError, StoreUnavailable
from projections import DecodeFailed, Policy, PolicyMismatch

access_log = logging.getLogger("bounceledger.access")


_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    503: "unavailable",
}


def _count(request: Request[Any, Any, Any], status: int) -> None:
    """Count a refusal for /metrics, labelled with the webhook's provider (or `api`)."""
    source = str(request.scope.get("path_params", {}).get("provider", "api"))
    runtime = request.app.state.get("runtime")
    if runtime is not None:
        runtime.metrics.refuse(source, _REASONS.get(status, str(status)))


def _problem(
    request: Request[Any, Any, Any], status: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    _count(request, status)
    return Response(
        {"status_code": status, "detail": detail},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    _count(request, exc.status_code)
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(
        body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers
    )


_RETRY = {"Retry-After": "5"}

# The one place where errors become HTTP responses.
EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    HTTPException: _http_error,
    DecodeFailed: lambda r, exc: _problem(r, 400, f"undecodable body: {exc}"),
    PolicyMismatch: lambda r, exc: _problem(r, 503, str(exc), {"Retry-After": "5"}),
    StoreUnavailable: lambda r, _: _problem(r, 503, "ledger unavailable, retry", _RETRY),
    LedgerError: lambda r, _: _problem(r, 500, "ledger error"),
    # a request body nested deeper than the JSON decoder follows
    RecursionError: lambda r, _: _problem(r, 400, "request body is nested too deeply"),
    BasicAuthRequired: lambda r, exc: _problem(
        r, 401, str(exc), {"WWW-Authenticate": 'Basic realm="bounceledger"'}
    ),
    SignatureInvalid: lambda r, exc: _problem(r, 403, str(exc)),
    SignatureUnverifiable: lambda r, exc: _problem(r, 503, str(exc), _RETRY),
}


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """One log line per request: method, path (never the query: it may hold a token), status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            access_log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "peer": client[0] if client else None,
                },
            )

    return middleware


def create_app(settings: Settings, policy: Policy | None = None) -> Litestar:
    """Build the service. The runtime opens on startup and closes on shutdown."""
    runtime = Runtime(settings, policy)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return Litestar(
        route_handlers=[
            receive_webhook,
            get_suppression,
            list_suppressions,
            check_suppressions,
            explain_suppression,
            suppress,
            release,
            recipient_events,
            list_receipts,
            get_receipt,
            list_quarantine,
            replay_quarantined,
            healthz,
            readyz,
            metrics,
        ],
        state=State({"runtime": runtime}),
        lifespan=[lifespan],
        guards=[require_api_key],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[access_log_middleware],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="bounceledger",
            version="0.1.0",
            path="/schema",
            description="Email-provider webhooks kept verbatim, folded into a suppression list.",
        ),
        debug=False,
        logging_config=None,  # `bounceledger serve` configures logging (api/logs.py)
    )
