"""The console's cookies: Secure and `__Host-` named unless plain HTTP is allowed and used.

Whether a request arrived over TLS is its own scheme, or `X-Forwarded-Proto` from a proxy
in BOUNCELEDGER_TRUSTED_PROXIES (api/network.py). Cookies are Secure whenever it did, and
also when it did not, unless the deployment opted out for plain-HTTP local use
(BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on): then they are sent without Secure, under their bare
names. Browsers keep Secure cookies on http://localhost and 127.0.0.1 too.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.response import Response

from api.console.session import COOKIE, LIFETIME, LOGIN_COOKIE, LOGIN_LIFETIME, cookie_name
from api.network import arrived_over_tls
from api.runtime import runtime_of


def over_tls(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the request arrived over TLS (directly, or as a trusted proxy says)."""
    settings = runtime_of(connection).settings
    client = connection.scope.get("client")
    return arrived_over_tls(
        connection.scope.get("scheme", "http"),
        client[0] if client else None,
        connection.headers.getall("x-forwarded-proto", []),
        settings.trusted_proxies,
    )


def secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether this request's cookies are Secure (and `__Host-` named)."""
    return over_tls(connection) or not runtime_of(connection).settings.console_plain_http


_LOCAL = ("localhost", "127.", "[::1]")


def plain_http_warning(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """What to tell someone about to sign in over plain HTTP on a name browsers do not
    treat as secure: the Secure cookies would be dropped, and signing in would not stick."""
    if not secure(connection) or over_tls(connection):
        return None
    host = connection.headers.get("host", "").lower()
    if host.startswith(_LOCAL):
        return None
    return (
        f"This console is reached over plain HTTP at {host or 'this address'}: browsers "
        "drop its Secure cookies there, so signing in will not stick. Reach it over HTTPS "
        "(a TLS proxy listed in BOUNCELEDGER_TRUSTED_PROXIES), or set "
        "BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on for local use."
    )


def read(connection: ASGIConnection[Any, Any, Any, Any], base: str) -> str | None:
    """The value of the console cookie `base` under the name this request uses."""
    return connection.cookies.get(cookie_name(base, secure(connection)))


def _set(
    response: Response[Any],
    connection: ASGIConnection[Any, Any, Any, Any],
    base: str,
    value: str,
    max_age: int,
) -> None:
    safe = secure(connection)
    response.set_cookie(
        cookie_name(base, safe),
        value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=safe,
    )


def set_session(
    response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], value: str
) -> None:
    _set(response, connection, COOKIE, value, LIFETIME)


def set_login(
    response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], nonce: str
) -> None:
    _set(response, connection, LOGIN_COOKIE, nonce, LOGIN_LIFETIME)


def clear(
    response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], base: str
) -> None:
    """Expire the cookie `base` (under the name this request uses)."""
    _set(response, connection, base, "", 0)
