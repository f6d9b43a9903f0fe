"""POST /v1/webhooks/{provider}/events: authenticate, decode-check, append, then 2xx.

What we accept is decided here and never re-decided: the body is stored exactly as it
arrived. Decoding here only proves the body is readable (an unreadable one gets 400
and appends nothing); what it means is the projection's business.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from api.auth import check_shared_secret
from api.runtime import Runtime
from api.schemas import WebhookAccepted
from ledger import NewReceipt
from projections.providers import PROVIDERS

# Headers worth keeping for audit. Authorization, cookies and anything carrying a
# secret are never stored: the receipt must be safe to export and show.
AUDIT_HEADERS = ("user-agent", "content-type", "content-length", "x-forwarded-for")


def _audit_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: request.headers[name] for name in AUDIT_HEADERS if name in request.headers}


@post(
    "/v1/webhooks/{provider:str}/events",
    opt={"webhook": True},
    status_code=200,
    summary="Receive a provider's webhook",
    description=(
        "Authenticates the delivery, keeps the body verbatim in the ledger and answers "
        "200 only after the commit. A byte-identical redelivery is acknowledged without "
        "a second append."
    ),
)
async def receive_webhook(
    provider: FromPath[str], request: Request[Any, Any, Any]
) -> WebhookAccepted:
    runtime: Runtime = request.app.state.runtime
    module = PROVIDERS.get(provider)
    secret = runtime.settings.smtp2go_secret if provider == "smtp2go" else None
    if module is None or secret is None:
        # An endpoint whose secret is unset does not exist: nothing to probe.
        raise NotFoundException(f"no webhook endpoint for {provider!r}")
    check_shared_secret(request, secret)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    headers = _audit_headers(request)
    events = len(module.decode(body, content_type, headers))  # DecodeFailed: 400, no append
    result = await runtime.store.append(
        NewReceipt(
            source=provider,
            received_at=time.time_ns() // 1000,
            content_type=content_type,
            body=body,
            headers=headers,
            peer=request.client.host if request.client else None,
        )
    )
    return WebhookAccepted(seq=result.seq, events=events, duplicate=result.duplicate)
