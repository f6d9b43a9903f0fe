"""The console's guard: a valid session that was not signed out, or a redirect to the
sign-in page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_303_SEE_OTHER

from api.console import cookies, signouts
from api.console.session import COOKIE, verify
from api.runtime import runtime_of


class SignInRequired(HTTPException):
    """Answered with a redirect to the sign-in page (api/console/pages.py)."""

    status_code = HTTP_303_SEE_OTHER


async def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Let a signed-in operator through (their session in `state.session`, their key's
    name in `state.operator`); send anyone else — no cookie, a forged, expired or
    signed-out one — to the sign-in page, with where they were going."""
    if handler.opt.get("public"):
        return
    runtime = runtime_of(connection)
    session = verify(runtime.settings.api_keys, cookies.read(connection, COOKIE))
    if session is None or await signouts.signed_out(runtime.store, session.nonce):
        target = connection.url.path
        if connection.url.query:
            target += "?" + connection.url.query
        location = "/console/login?next=" + quote(target, safe="")
        raise SignInRequired(headers={"Location": location})
    connection.state.session = session
    connection.state.operator = session.name
