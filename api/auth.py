"""Authentication at the door: provider webhook secrets and the API-key guard.

Every comparison is constant-time (hmac.compare_digest), and every candidate is
compared, so timing does not tell which way of passing a secret was tried.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from api.runtime import runtime_of
from api.settings import ApiKey, Secret


def _authorization(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, str]:
    scheme, _, value = connection.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower(), value.strip()


def basic_password(value: str) -> str | None:
    """The password of an HTTP Basic credential (`base64(user:password)`)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def check_shared_secret(connection: ASGIConnection[Any, Any, Any, Any], secret: Secret) -> None:
    """SMTP2GO's ways of passing a shared secret: `?token=`, Bearer, or the Basic password.

    Raises PermissionDeniedException (403) when none is given or none matches.
    """
    scheme, value = _authorization(connection)
    candidates = [connection.query_params.get("token")]
    if scheme == "bearer":
        candidates.append(value)
    elif scheme == "basic":
        candidates.append(basic_password(value))
    given = [candidate for candidate in candidates if candidate]
    if not given:
        raise PermissionDeniedException("missing webhook secret")
    results = [secret.matches(candidate) for candidate in given]  # no short-circuit
    if not any(results):
        raise PermissionDeniedException("wrong webhook secret")


def find_api_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The configured key matching `presented`, comparing against every key."""
    matches = [key for key in keys if key.secret.matches(presented)]
    return matches[0] if matches else None


async def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard for every route but the webhooks and the probes: `Authorization: Bearer KEY`,
    401 otherwise.

    Async on purpose: litestar runs a sync guard in a worker thread, on every request.
    """
    if handler.opt.get("webhook") or handler.opt.get("console"):
        return  # a provider's own secret (api/authenticators.py); a console session
    keys = runtime_of(connection).settings.api_keys
    if handler.opt.get("probe"):  # open, with more detail for a valid key (api/health.py)
        scheme, value = _authorization(connection)
        key = find_api_key(keys, value) if scheme == "bearer" and value else None
        if key is not None:
            connection.state.api_key_name = key.name
        return
    if not keys:
        raise NotAuthorizedException(
            "no API keys are configured: set BOUNCELEDGER_API_KEYS",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, value = _authorization(connection)
    key = find_api_key(keys, value) if scheme == "bearer" and value else None
    if key is None:
        raise NotAuthorizedException(
            "a valid API key is required: Authorization: Bearer KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )
    connection.state.api_key_name = key.name
