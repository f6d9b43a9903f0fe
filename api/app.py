"""The composition root: create_app(settings) -> Litestar, and the one error map."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from api.audit import get_receipt, list_receipts, policy_history, recipient_events
from api.auth import require_api_key
from api.changes import gone, list_changes, stream_changes
from api.console import console_router, signouts, template_config
from api.fastpath import FastWebhooks, webhook_provider
from api.health import healthz, metrics, readyz
from api.logs import REFUSALS, Refusal, access_log, escape_controls, refused
from api.metrics import OTHER, UNKNOWN
from api.paths import ADDRESS_PREFIXES, loggable, routable
from api.personal_data import create_erasure, list_erasures, run_retention
from api.push.endpoints import EndpointRefused, UnknownEndpoint
from api.push.routes import (
    add_endpoint,
    get_endpoint,
    list_endpoints,
    pause_endpoint,
    probe_endpoint,
    remove_endpoint,
    resume_endpoint,
)
from api.push.signing import EndpointKeyMissing
from api.quarantine import get_quarantined, list_quarantine, replay_quarantined
from api.runtime import RUNTIME, Runtime
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
from api.throttle import FailureCounter, throttle_middleware
from api.webhooks import receive_webhook
from ledger import BodyMissing, LedgerError, StoreUnavailable, ValueRefused
from projections import DecodeFailed, Policy, PolicyMismatch, feed
from projections.errors import ErasureRefused, ProjectionBehind, ReleaseRefused, UnknownStream
from projections.providers import PROVIDERS

log = logging.getLogger("bounceledger")


_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    408: "timeout",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}


def _count(request: Request[Any, Any, Any], status: int) -> None:
    """Count a refusal for /metrics, labelled with the webhook's provider (or `api`).

    Labels come from fixed sets only: the `{provider}` path segment is whatever a client
    sent, and every distinct label value would be a new series kept for ever."""
    provider = request.scope.get("path_params", {}).get("provider")
    source = "api" if provider is None else provider if provider in PROVIDERS else UNKNOWN
    reason = _REASONS.get(status, "error" if status >= 500 else OTHER)
    # Not runtime_of: an app built around these handlers without create_app (a test) has
    # no runtime, and nothing to count.
    runtime = request.app.state.get("runtime")
    if runtime is not None:
        runtime.metrics.refuse(source, reason)


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


def _note_refusal(request: Request[Any, Any, Any], exc: HTTPException) -> None:
    """Note a 400 that refuses a query or path value, for the request's refusal line
    (`http_edge`): the parameters litestar's checks name (its `extra`), or the one a
    handler's message starts with (`since: not a time …`)."""
    noted = REFUSALS.get()
    if noted is None or exc.status_code != 400 or not isinstance(exc, ValidationException):
        return
    query, path = request.query_params, request.scope.get("path_params") or {}
    if isinstance(exc.extra, list) and exc.extra:
        for item in exc.extra:
            if isinstance(item, dict) and item.get("source") in ("query", "path"):
                key = _public_name(request, str(item.get("key")))
                value = query.get(key) if item["source"] == "query" else path.get(key)
                noted.append((key, str(item.get("message", "")), _text(value)))
        return
    name, colon, why = str(exc.detail).partition(": ")
    if colon and (name in query or name in path):
        noted.append((name, why, _text(query.get(name, path.get(name)))))


def _public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client gives a parameter litestar's checks call by its Python name
    (`all_` is `?all=`)."""
    handler = request.scope.get("route_handler")
    field = handler.parsed_fn_signature.parameters.get(key) if handler is not None else None
    name = getattr(getattr(field, "kwarg_definition", None), "name", None)
    return name if isinstance(name, str) and name else key


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    _note_refusal(request, exc)
    _count(request, exc.status_code)
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(
        body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers
    )


_RETRY = {"Retry-After": "5"}


def _value_refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A value the database cannot hold or compare (a number past 64 bits, a NUL in
    text) that no check refused before: the request's fault, so 400, never a 500 or a
    503 that asks for a retry. The database's message is not repeated: it may quote
    the value."""
    why = (
        "a number in the request is out of range"
        if isinstance(exc, OverflowError)
        else "a value in the request cannot be stored or compared by the database"
    )
    noted = REFUSALS.get()
    if noted is not None:
        noted.append((None, f"{why} ({type(exc).__name__})", None))
    return _problem(request, 400, why)


def _release_refused(request: Request[Any, Any, Any], exc: ReleaseRefused) -> Response[Any]:
    """409: what changed, and the address's status as it stands now."""
    _count(request, 409)
    body = {"status_code": 409, "detail": str(exc), "current": msgspec.to_builtins(exc.status)}
    return Response(body, status_code=409, media_type=MediaType.JSON)


def _cursor_expired(request: Request[Any, Any, Any], exc: feed.Expired) -> Response[Any]:
    """410: the feed no longer keeps the cursor's entries; where to resynchronise from."""
    _count(request, 410)
    return Response(gone(exc), status_code=410, media_type=MediaType.JSON)


# The one place where errors become HTTP responses.
EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    HTTPException: _http_error,
    DecodeFailed: lambda r, exc: _problem(r, 400, f"undecodable body: {exc}"),
    PolicyMismatch: lambda r, exc: _problem(r, 503, str(exc), {"Retry-After": "1"}),
    ProjectionBehind: lambda r, exc: _problem(r, 503, str(exc), _RETRY),
    ReleaseRefused: _release_refused,
    ErasureRefused: lambda r, exc: _problem(r, 409, str(exc)),
    UnknownStream: lambda r, exc: _problem(r, 400, str(exc)),
    UnknownEndpoint: lambda r, exc: _problem(r, 404, str(exc)),
    EndpointRefused: lambda r, exc: _problem(r, 400, str(exc)),
    EndpointKeyMissing: lambda r, exc: _problem(r, 409, str(exc)),
    feed.CursorRefused: lambda r, exc: _problem(r, 400, str(exc)),
    feed.Expired: _cursor_expired,
    StoreUnavailable: lambda r, _: _problem(r, 503, "ledger unavailable, retry", _RETRY),
    BodyMissing: lambda r, exc: _problem(r, 500, f"ledger damaged: {exc} (bounceledger verify)"),
    LedgerError: lambda r, _: _problem(r, 500, "ledger error"),
    # backstops: every query and path value is range-checked before it reaches a database
    ValueRefused: _value_refused,
    OverflowError: _value_refused,
    # a request body nested deeper than the JSON decoder follows
    RecursionError: lambda r, _: _problem(r, 400, "request body is nested too deeply"),
    BasicAuthRequired: lambda r, exc: _problem(
        r, 401, str(exc), {"WWW-Authenticate": 'Basic realm="bounceledger"'}
    ),
    SignatureInvalid: lambda r, exc: _problem(r, 403, str(exc)),
    SignatureUnverifiable: lambda r, exc: _problem(r, 503, str(exc), _RETRY),
}


# On every response: no content sniffing, and a policy under which no page of ours loads,
# runs or frames anything. The /schema documentation pages load their viewer's scripts and
# styles from CDNs (and run inline script), so they get only the framing rule.
NOSNIFF = (b"x-content-type-options", b"nosniff")
CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = b"frame-ancestors 'none'"


def _is_docs_page(path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    return (path == "/schema" or path.startswith("/schema/")) and content_type.lower().startswith(
        b"text/html"
    )


def _secure(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    added = []
    if NOSNIFF[0] not in names:
        added.append(NOSNIFF)
    if b"content-security-policy" not in names:
        added.append(
            (b"content-security-policy", DOCS_CSP if _is_docs_page(path, headers) else CSP)
        )
    return [*headers, *added]


def _read_deadline(receive: Receive, seconds: float) -> Receive:
    """`receive`, but a request body not fully received within `seconds` of the request's
    start is answered 408 (and the connection closed), so a client that trickles its body
    holds no worker. Headers are timed by the server (api.cli.serve)."""
    deadline = asyncio.get_running_loop().time() + seconds
    complete = False

    async def guarded() -> Message:
        nonlocal complete
        if complete:
            return cast(Message, await receive())
        try:
            # asyncio.timeout_at arms a timer; wait_for would start a task per message
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise HTTPException(
                status_code=408,
                detail=f"request body not received within {seconds:g} s",
                headers={"Connection": "close"},
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            complete = True
        return cast(Message, message)

    return cast(Receive, guarded)


def http_edge(app: ASGIApp, read_timeout: float, fast: FastWebhooks | None = None) -> ASGIApp:
    """What wraps every HTTP request, routed or not (404 and 405 included): the body read
    deadline, the security headers, and one access-log line: method, path (escaped, every
    address replaced by `<email>`: api/paths.py `loggable`; never the query: it may hold
    a token), status, time, peer. A 400 that refused a query or path value adds one line
    on `bounceledger.refusals`: the route, the parameter, why (api/logs.py `refused`).
    Webhook deliveries go to `fast` (api/fastpath.py), which answers the accepted ones
    and hands the rest to `app`. An address in the path (under api/paths.py's prefixes)
    is escaped into one segment before routing; the headers see the path as the server
    gave it."""

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope["path"]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
                message = cast(
                    HTTPResponseStartEvent, {**message, "headers": _secure(path, headers)}
                )
            await send(message)

        provider = webhook_provider(scope) if fast is not None else None
        noted: list[Refusal] = []
        try:
            if provider is not None and fast is not None:
                await fast(scope, _read_deadline(receive, read_timeout), send_wrapper, provider)
            else:
                if path.startswith(ADDRESS_PREFIXES):
                    scope["path"] = routable(path)
                token = REFUSALS.set(noted)
                try:
                    await app(scope, _read_deadline(receive, read_timeout), send_wrapper)
                finally:
                    REFUSALS.reset(token)
        finally:
            client = scope.get("client")
            shown = escape_controls(loggable(path))
            access_log.request(
                scope["method"],
                shown,
                status,
                round((time.perf_counter() - started) * 1000, 2),
                client[0] if client else None,
            )
            if noted and status == 400:
                refused(scope["method"], shown, *noted[0])

    return edge


def create_app(
    settings: Settings, policy: Policy | None = None, *, fast_webhooks: bool = True
) -> Litestar:
    """Build the service. The runtime opens on startup and closes on shutdown.
    `fast_webhooks` off sends every delivery through the litestar route (for the tests
    that hold the fast path to the route's answers)."""
    runtime = Runtime(settings, policy)
    failures = FailureCounter(settings.auth_failures, 60.0)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            await runtime.start()
            await signouts.ensure(runtime.store)  # the console's sign-outs, every instance
        except Exception as exc:
            log.error("cannot start: %s", exc)
            await runtime.stop()
            raise
        try:
            yield
        finally:
            await runtime.stop()

    app = Litestar(
        route_handlers=[
            receive_webhook,
            get_suppression,
            list_suppressions,
            check_suppressions,
            explain_suppression,
            suppress,
            release,
            create_erasure,
            list_erasures,
            run_retention,
            recipient_events,
            list_receipts,
            get_receipt,
            policy_history,
            list_changes,
            stream_changes,
            list_quarantine,
            get_quarantined,
            replay_quarantined,
            add_endpoint,
            list_endpoints,
            get_endpoint,
            remove_endpoint,
            pause_endpoint,
            resume_endpoint,
            probe_endpoint,
            healthz,
            readyz,
            metrics,
            console_router(),
        ],
        template_config=template_config(),
        state=State({"runtime": runtime}),  # read by api.runtime.runtime_of
        dependencies={"runtime": RUNTIME},
        lifespan=[lifespan],
        guards=[require_api_key],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            throttle_middleware(failures, settings.trusted_proxies),
        ],
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
    # Outside litestar's router, so requests no route matches pass through it as well.
    route = app.asgi_handler
    fast = (
        FastWebhooks(route, runtime, failures, settings.trusted_proxies, settings.max_body_bytes)
        if fast_webhooks
        else None
    )
    app.asgi_handler = http_edge(route, settings.read_timeout, fast)
    app.state.fast_webhooks = fast
    return app
