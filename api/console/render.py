"""What every console page shares: the signed-in operator, rendering, the forms' token,
and the notices a redirect carries.

A notice (post/redirect/get: "released by ops, recorded as receipt 9") travels in the
query string with a signature and an expiry (HMAC under the deployment's keys): a page
shows only a notice the console itself wrote in the last minutes, never text a link
chose.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request
from litestar.response import Redirect, Template
from markupsafe import Markup, escape

from api.console import cookies
from api.console.forms import FIELD, expected_token
from api.console.session import login_nonce, login_token
from api.logs import note
from api.runtime import Runtime, runtime_of
from api.settings import ApiKey
from projections import streams
from projections.errors import UnknownStream
from projections.policy import Policy

NOTICE_LIFETIME = 600  # seconds a notice link shows its notice
_NOTICE = b"bounceledger console notice\0"

NAV = (
    ("lookup", "/console", "Lookup"),
    ("suppressions", "/console/suppressions", "Suppressions"),
    ("policy", "/console/policy", "Policy"),
    ("ledger", "/console/ledger", "Ledger"),
)


def address_path(email: str) -> str:
    """An address as one segment of a console URL: every character quoted but `@`, so an
    address holding `/`, `?`, `#` or `%` links to its own page (api/paths.py)."""
    return quote(email, safe="@")


class Streamed:
    """The stream a page was asked about (`?stream=`), as the JSON API reads it: `scope`
    is its view (None: every stream, the strictest verdict); `names` the policy's streams,
    sorted, for the selector (none: the page shows no selector); `error` says why the
    page answers 400 (a stream the policy does not define), when it does."""

    def __init__(self, policy: Policy, given: str | None) -> None:
        self.names: list[str] = sorted(policy.streams)
        self.given = given or ""  # as asked: kept in the page's links
        self.error: str | None = None
        self.scope: streams.Scope | None = None
        try:
            self.scope = streams.scope(policy, given or None)
        except UnknownStream as exc:
            note("stream", "not a stream of the policy")  # the name itself is not logged
            self.error = str(exc)

    @classmethod
    def of(cls, runtime: Runtime, given: str | None) -> Streamed:
        return cls(runtime.projector.mapper.policy, given)

    @property
    def name(self) -> str | None:
        """The stream answered for (None: every stream, or the stream was refused)."""
        return self.scope.name if self.scope is not None else None

    def query(self) -> str:
        """`?stream=NAME` for a link that keeps the stream answered for ("" for every
        stream)."""
        return f"?{urlencode({'stream': self.name})}" if self.name else ""


def operator(request: Request[Any, Any, Any]) -> str:
    """The signed-in operator: their API key's name (recorded as the actor of actions)."""
    return str(request.state.get("operator", ""))


def page(
    request: Request[Any, Any, Any],
    template: str,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A full page: the template with the navigation, the operator, the notice and the
    token its forms carry (`form_token`). A page shown before sign-in gets a sign-in
    form token, with the pre-session cookie it is bound to when there is none yet."""
    nonce = None
    token = expected_token(request)
    if token is None:
        nonce = login_nonce()
        token = login_token(runtime_of(request).settings.api_keys, nonce)
    rendered = Template(
        template,
        context={
            "nav": NAV,
            "section": section,
            "operator": operator(request),
            "notice": notice_of(request),
            "form_token": Markup('<input type="hidden" name="{}" value="{}">').format(
                FIELD, escape(token)
            ),
            **context,
        },
        status_code=status_code,
    )
    if nonce is not None:
        cookies.set_login(rendered, request, nonce)
    return rendered


def _notice_mac(keys: tuple[ApiKey, ...], text: str, expires: int) -> str:
    digest = hashlib.sha256(_NOTICE)
    for key in sorted(keys, key=lambda k: k.name):
        digest.update(key.secret.sign(_NOTICE))
    message = f"{expires}|{text}".encode()
    return hmac.new(digest.digest(), message, hashlib.sha256).hexdigest()[:32]


def notice_of(request: Request[Any, Any, Any]) -> str | None:
    """The notice of the link that led here, when the console signed it and it has not
    expired; None otherwise (a link's own words are never shown)."""
    text, sig = request.query_params.get("done"), request.query_params.get("sig")
    if not text or not sig or "." not in sig:
        return None
    stamp, mac = sig.split(".", 1)
    if not stamp.isdigit() or int(stamp) < time.time():
        return None
    expected = _notice_mac(runtime_of(request).settings.api_keys, text, int(stamp))
    return text if hmac.compare_digest(mac.encode(), expected.encode()) else None


def back(request: Request[Any, Any, Any], path: str, notice: str | None = None) -> Redirect:
    """Post/redirect/get: a 303 to `path` (which may carry a query already), with a
    one-line notice shown there (signed)."""
    if not notice:
        return Redirect(path, status_code=303)
    expires = int(time.time()) + NOTICE_LIFETIME
    mac = _notice_mac(runtime_of(request).settings.api_keys, notice, expires)
    signed = urlencode({"done": notice, "sig": f"{expires}.{mac}"})
    return Redirect(f"{path}{'&' if '?' in path else '?'}{signed}", status_code=303)
