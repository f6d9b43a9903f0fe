"""The console's guard: a valid session cookie, or a redirect to the sign-in page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_303_SEE_OTHER

from api.console.session import COOKIE, verify


class SignInRequired(HTTPException):
    """Answered with a redirect to the sign-in page (api/console/pages.py)."""

    status_code = HTTP_303_SEE_OTHER


async def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Let a signed-in operator through (their key's name in `state.operator`); send
    anyone else to the sign-in page, with where they were going."""
    if handler.opt.get("public"):
        return
    keys = connection.app.state.runtime.settings.api_keys
    name = verify(keys, connection.cookies.get(COOKIE))
    if name is None:
        target = connection.url.path
        if connection.url.query:
            target += "?" + connection.url.query
        location = "/console/login?next=" + quote(target, safe="")
        raise SignInRequired(headers={"Location": location})
    connection.state.operator = name
