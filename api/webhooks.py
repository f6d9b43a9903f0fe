"""POST /v1/webhooks/{provider}/events: authenticate, decode-check, append, then 2xx.

What we accept is decided here and never re-decided: the body is stored exactly as it
arrived. Each provider's door (api.authenticators) authenticates over the raw bytes:
unset setting -> 404, bad signature or credentials -> 403 (401 when Basic credentials
are missing), a signing certificate that cannot be had right now -> 503. Decoding here
only proves the body is readable (an unreadable one gets 400 and appends nothing); what
it means, including event types that are ignored, is the projection's business, and a
duplicate is acknowledged like a first delivery.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath

from api import door_identity
from api.authenticators import DOORS, Door
from api.network import client_address, forwarded_for, within
from api.runtime import Runtime
from api.schemas import WebhookAccepted
from api.settings import Settings
from ledger import NewReceipt, quarantine
from projections.errors import DecodeFailed
from projections.facts import Reading, place, read
from projections.providers import PROVIDERS, Provider

log = logging.getLogger("bounceledger.webhooks")

# Headers worth keeping for audit. Authorization, cookies and anything carrying a
# secret are never stored: the receipt must be safe to export and show. The content
# type has its own column and the length is the body's: neither is stored twice.
AUDIT_HEADERS = ("user-agent", "x-forwarded-for")


def _audit_headers(request: Request[Any, Any, Any], extra: tuple[str, ...]) -> dict[str, str]:
    names = (*AUDIT_HEADERS, *extra)
    kept = {name: request.headers[name] for name in names if name in request.headers}
    if "x-forwarded-for" in kept:  # every line, as the allow-list reads them
        kept["x-forwarded-for"] = forwarded_for(request.headers.getall("x-forwarded-for", [])) or ""
    return kept


def _check_source(request: Request[Any, Any, Any], provider: str, settings: Settings) -> None:
    """403 unless the request comes from the provider's allow-list (when one is set)."""
    networks = settings.allowed_ips.get(provider)
    if not networks:
        return
    peer = request.client.host if request.client else None
    address = client_address(
        peer, forwarded_for(request.headers.getall("x-forwarded-for", [])), settings.trusted_proxies
    )
    if address is None or not within(address, networks):
        raise PermissionDeniedException(f"source address not allowed for {provider}")


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
    provider: FromPath[str], request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> WebhookAccepted:
    module, door = endpoint(runtime, provider, request)
    body = await request.body()
    return await accept(runtime, provider, module, door, request, body)


def endpoint(
    runtime: Runtime, provider: str, request: Request[Any, Any, Any]
) -> tuple[Provider, Door]:
    """The provider's decoder and door: 404 when it has no endpoint here, 403 when the
    request comes from outside its allow-list. Nothing read yet."""
    module, door = PROVIDERS.get(provider), DOORS.get(provider)
    if module is None or door is None or not door.enabled(runtime.settings):
        # An endpoint whose secret is unset does not exist: nothing to probe.
        raise NotFoundException(f"no webhook endpoint for {provider!r}")
    _check_source(request, provider, runtime.settings)
    return module, door


async def accept(
    runtime: Runtime,
    provider: str,
    module: Provider,
    door: Door,
    request: Request[Any, Any, Any],
    body: bytes,
    *,
    keep_aside: bool = True,
) -> WebhookAccepted:
    """Authenticate, decode-check, append (answer only after the commit), hand the facts
    to the projector. Raises what the route answers with: 403/401 from the door, 400 for
    an unreadable body (kept aside in the quarantine unless `keep_aside` is off), 403 for
    a replayed identity, 503 when the ledger cannot commit."""
    await door.check(request, body, runtime.settings)
    content_type = request.headers.get("content-type", "")
    headers = _audit_headers(request, door.headers)
    receipt = NewReceipt(
        source=provider,
        received_at=time.time_ns() // 1000,
        content_type=content_type,
        body=body,
        headers=headers,
        peer=request.client.host if request.client else None,
        identity=door_identity.identity(provider, body),
    )
    try:
        raws = module.decode(body, content_type, headers)
    except DecodeFailed as exc:
        # Authentic but unreadable: refused (400, nothing appended) and kept aside, so a
        # fixed decoder can replay it after the provider's retries have run out.
        if keep_aside:
            await _keep_aside(runtime, receipt, str(exc))
        raise
    reading = _read(module, raws, provider)
    result = await runtime.store.append(receipt)
    if result.conflict:
        _refuse_replay(provider, result.seq)
    if reading is None:
        return WebhookAccepted(seq=result.seq, events=len(raws), duplicate=result.duplicate)
    if not result.duplicate:
        _report(runtime, reading, provider, result.seq)
        runtime.projector.hand_over(
            result.seq, place(reading, receipt.source, result.seq, receipt.received_at)
        )
    return WebhookAccepted(
        seq=result.seq,
        events=len(reading.events),
        duplicate=result.duplicate,
        unattributed=len(reading.unattributed),
    )


def _refuse_replay(provider: str, seq: int) -> None:
    """403: the delivery's identity (SNS MessageId, Mailgun token) is in the ledger with
    other bytes. The signature is over that identity, not over these bytes: a replay."""
    log.warning(
        "refused a %s delivery: its identity is already in the ledger (receipt %d) with "
        "other bytes (a replay?)",
        provider,
        seq,
        extra={"source": provider, "seq": seq},
    )
    raise PermissionDeniedException(
        f"this {provider} delivery's identity is already in the ledger with other bytes "
        "(replay?): refused"
    )


async def _keep_aside(runtime: Runtime, receipt: NewReceipt, reason: str) -> None:
    """Quarantine an undecodable delivery, unless its source's quarantine is full: then
    it is refused all the same but not kept (logged)."""
    cap = runtime.settings.quarantine_max
    kept = await quarantine.keep(runtime.store, receipt, reason, cap=cap)
    if kept is None:
        log.warning(
            "quarantine for %s is full (%d pending): an undecodable delivery was refused "
            "and not kept; replay or inspect the quarantine (bounceledger quarantine)",
            receipt.source,
            cap,
            extra={"source": receipt.source, "quarantine": "full"},
        )


def _read(module: Provider, raws: list[dict[str, Any]], provider: str) -> Reading | None:
    """The provider's reading of the body, or None on a decoder bug (the receipt is kept
    all the same; the projector logs it, and a fixed decoder re-derives it)."""
    try:
        return read(module, raws)
    except Exception:
        log.exception("cannot read the events of a %s delivery", provider)
        return None


def _report(runtime: Runtime, reading: Reading, provider: str, seq: int) -> None:
    """Make visible what the ledger holds but no recipient's history will show: events
    that name no recipient, and events that name several without saying which."""
    if reading.unattributed:
        kinds = ", ".join(sorted(set(reading.unattributed)))
        log.warning(
            "receipt %d (%s): %d event(s) name no recipient (%s): kept, folded into nobody's state",
            seq,
            provider,
            len(reading.unattributed),
            kinds,
            extra={"seq": seq, "source": provider, "unattributed": len(reading.unattributed)},
        )
        runtime.metrics.unattributed.labels(provider).inc(len(reading.unattributed))
    if reading.ambiguous:
        runtime.metrics.ambiguous.labels(provider).inc(reading.ambiguous)
