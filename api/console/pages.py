"""Console pages: sign in and out, lookup (home), one address, one receipt."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, Parameter, QueryParameter
from litestar.response import Redirect, Template

from api import paths
from api.auth import find_api_key
from api.console import cookies, signouts
from api.console.render import Streamed, address_path, back, operator, page
from api.console.session import COOKIE, LOGIN_COOKIE, Session, issue
from api.freshness import FRESH
from api.runtime import Runtime
from api.schemas import MAX_SEQ
from projections import queries
from projections.audit import ReceiptView, explain
from projections.recipients import normalize_recipient
from projections.state import NAMED_ONLY

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MAX_LOOKUP = 1000  # addresses in one pasted list


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@get("/login", opt={"public": True}, name="console-login")
async def login_page(
    request: Request[Any, Any, Any], next: Annotated[str | None, QueryParameter()] = None
) -> Template:
    return page(
        request,
        "login.html",
        "login",
        next=_safe_next(next),
        error=None,
        transport=cookies.plain_http_warning(request),
    )


@post("/login", opt={"public": True}, status_code=303)
async def login(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    data: Annotated[dict[str, str], FORM],
) -> Response[Any]:
    keys = runtime.settings.api_keys
    key = find_api_key(keys, data.get("key", "").strip()) if keys else None
    target = _safe_next(data.get("next"))
    if key is None:
        error = (
            "no API keys are configured: set BOUNCELEDGER_API_KEYS"
            if not keys
            else "that is not a valid API key"
        )
        return page(
            request,
            "login.html",
            "login",
            status_code=401,
            next=target,
            error=error,
            transport=cookies.plain_http_warning(request),
        )
    response = Redirect(target, status_code=303)
    cookies.set_session(response, request, issue(key))  # a fresh nonce: a new session
    cookies.clear(response, request, LOGIN_COOKIE)  # the sign-in form's token is spent
    return response


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Redirect:
    """End this session on every instance (its nonce is kept as signed out until it
    would have expired), and clear its cookie."""
    session: Session = request.state.session
    await signouts.sign_out(runtime.store, session.nonce, session.expires)
    response = Redirect("/console/login", status_code=303)
    cookies.clear(response, request, COOKIE)
    return response


@get("/", name="console-lookup", guards=FRESH)
async def lookup(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    q: Annotated[str | None, QueryParameter()] = None,
    emails: Annotated[str | None, QueryParameter()] = None,
    stream: Annotated[str | None, QueryParameter()] = None,
) -> Template:
    """One address (`q`), or a pasted list (`emails`: one per line, or comma-separated);
    for every stream (the strictest verdict), or for the policy's `stream`."""
    chosen = Streamed.of(runtime, stream)
    shown: dict[str, Any] = {"q": "", "one": None, "many": None, "emails": ""}
    if chosen.error is not None:
        shown.update(q=q or "", emails=emails or "")
    elif q and q.strip():
        found = await queries.status(
            runtime.store,
            q.strip(),
            runtime.projector.policy_hash,
            runtime.settings.erasure_key,
            chosen.scope,
        )
        shown.update(q=q, one=found)
    elif emails and emails.strip():
        given = [part.strip() for part in emails.replace(",", "\n").splitlines() if part.strip()]
        given = given[:MAX_LOOKUP]
        hits = await queries.check(
            runtime.store,
            runtime.projector.policy_hash,
            given,
            runtime.settings.erasure_key,
            chosen.scope,
        )
        shown.update(many=[(email, hits.get(email)) for email in given], emails=emails)
    return page(
        request,
        "lookup.html",
        "lookup",
        status_code=400 if chosen.error else 200,
        chosen=chosen,
        **shown,
    )


@get("/address/{email:str}", name="console-address", guards=FRESH)
async def address(
    email: FromPath[str],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    stream: Annotated[str | None, QueryParameter()] = None,
) -> Template:
    """One address: verdict (for every stream, or for the policy's `stream`: the causes
    that block it and those that do not), the explain table (every event, what it did),
    actions."""
    email = paths.address(email)  # escaped into one path segment by api/paths.py
    chosen = Streamed.of(runtime, stream)
    explanation = await explain(
        runtime.store, email, runtime.projector.mapper, runtime.projector.policy_hash
    )
    for_stream = None
    if chosen.scope is not None:  # what GET /v1/suppressions/{email}?stream= answers
        for_stream = await queries.status(
            runtime.store,
            email,
            runtime.projector.policy_hash,
            runtime.settings.erasure_key,
            chosen.scope,
        )
    return page(
        request,
        "address.html",
        "lookup",
        status_code=400 if chosen.error else 200,
        email=normalize_recipient(email) or email,
        why=explanation,
        quoted=address_path(normalize_recipient(email) or email),
        named=named_causes([explanation.status]),
        chosen=chosen,
        for_stream=for_stream,
    )


def named_causes(statuses: list[queries.Status | None]) -> list[str]:
    """The causes among `statuses` that a release lifts only when named, in rank order:
    the ones a release form offers to tick."""
    present = {cause.reason for status in statuses if status for cause in status.causes}
    return [reason for reason in NAMED_ONLY if reason in present]


@get("/receipts/{seq:int}", name="console-receipt")
async def receipt(
    seq: Annotated[int, Parameter(ge=1, le=MAX_SEQ)],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
) -> Template:
    """One receipt: metadata, chain position, headers, the body as text, its events."""
    store = runtime.store
    found = await store.get(seq)
    if found is None:
        raise NotFoundException(f"no receipt {seq}")
    head = await store.last_seq()
    return page(request, "receipt.html", "ledger", view=ReceiptView.full(found), head=head)


@get("/receipts/{seq:int}/raw", name="console-receipt-raw")
async def receipt_raw(
    seq: Annotated[int, Parameter(ge=1, le=MAX_SEQ)], runtime: NamedDependency[Runtime]
) -> Response[bytes]:
    """The body's exact bytes, as a download (never rendered: it is the sender's)."""
    found = await runtime.store.get(seq)
    if found is None:
        raise NotFoundException(f"no receipt {seq}")
    return Response(
        found.body,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{found.seq}.bin"',
            "X-Content-Type-Options": "nosniff",
        },
    )


HANDLERS = [login_page, login, logout, lookup, address, receipt, receipt_raw]
__all__ = ["HANDLERS", "back", "operator"]
