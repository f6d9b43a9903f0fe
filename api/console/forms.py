"""What every console form must prove: that it was posted from the console's own pages,
by the session it was shown to.

- Same origin: a browser states where a request comes from. `Sec-Fetch-Site` other than
  `same-origin` (or `none`: typed by the user), or an `Origin` whose host is not this
  request's `Host`, is refused — so is a page on another port of the host or a sibling
  subdomain, which `SameSite` alone would let through.
- The token: a form posted by a signed-in operator carries the token bound to their
  session (api/console/session.py); the sign-in form, the token bound to its pre-session
  cookie. Any other token — minted anonymously, for another session, before sign-in — is
  refused.

Refused with 403, nothing done. Checked for every unsafe method on the console's routes
(`before_request`, after the session guard), so no handler can forget it; the JSON API and
the webhook doors take no cookies and are not concerned.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response

from api.console import cookies
from api.console.session import LOGIN_COOKIE, Session, form_token, login_token, tokens_match
from api.runtime import runtime_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "_csrf_token"


def _refused(detail: str) -> Response[str]:
    return Response(f"{detail}\n", status_code=403, media_type="text/plain")


def cross_origin(request: Request[Any, Any, Any]) -> str | None:
    """Why the request does not come from the console's own pages, or None."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"a request from another site ({site}) is refused"
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
            return "a request from another origin is refused"
    return None


def expected_token(request: Request[Any, Any, Any]) -> str | None:
    """The token the page shown to this request's sender carries: its session's, or,
    on the public sign-in form, its pre-session cookie's (None: it has none)."""
    session: Session | None = request.state.get("session")
    if session is not None:
        return form_token(session)
    nonce = cookies.read(request, LOGIN_COOKIE)
    if not nonce:
        return None
    return login_token(runtime_of(request).settings.api_keys, nonce)


async def check_form(request: Request[Any, Any, Any]) -> Response[str] | None:
    """The console's `before_request`: refuse (403) an unsafe request that is not from
    its own pages, or that lacks the token of the session it was shown to."""
    if request.method in SAFE_METHODS:
        return None
    why = cross_origin(request)
    if why is not None:
        return _refused(f"{why}: nothing was done")
    expected = expected_token(request)
    given = (await request.form()).get(FIELD)
    if expected is None or not tokens_match(given, expected):
        return _refused(
            "this form was not shown to your session (it expired, or you signed in or out "
            "since): reload the page and try again; nothing was done"
        )
    return None
