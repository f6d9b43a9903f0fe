"""Signing in to the console from a test client, and reading its forms."""

from __future__ import annotations

import html as markup
import re
from typing import Any

from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, settle

_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a console form carries."""
    found = _TOKEN.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


async def sign_in(client: Any, key: str = API_KEY) -> Any:
    """Sign in with `key`; the response to the login POST (303 on success)."""
    form = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"key": key, "_csrf_token": csrf_token(form.text), "next": "/console"},
        follow_redirects=False,
    )


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to `action` (as a browser sends
    them), the CSRF token aside; {} when the page has no such form."""
    for target, body in _FORM.findall(html):
        if markup.unescape(target) == action:
            return {
                name: markup.unescape(value)
                for name, value in _HIDDEN.findall(body)
                if name != "_csrf_token"
            }
    return {}


async def post_form(client: Any, page: str, action: str, data: dict[str, Any]) -> Any:
    """Submit a form of `page` to `action` as a browser would: the page's CSRF token and
    the form's hidden fields, with `data` on top."""
    html = (await client.get(page)).text
    fields = {**hidden_fields(html, action), **data, "_csrf_token": csrf_token(html)}
    return await client.post(action, data=fields, follow_redirects=False)


# An address suppressed by a hard bounce, its page and its release form: what a forged
# or a genuine form acts on.
VICTIM = "victim@example.org"
VICTIM_PAGE = f"/console/address/{VICTIM}"
VICTIM_RELEASE = f"{VICTIM_PAGE}/release"


async def suppressed_victim(client: Any) -> None:
    await post_webhook(client, hard_bounce(VICTIM))
    await settle(client)


async def operator_receipts(client: Any) -> int:
    page = await client.get("/v1/audit/receipts", params={"source": "operator"}, headers=AUTH)
    return len(page.json()["items"])


async def release_form(client: Any) -> dict[str, str]:
    """The release form's fields as the signed-in operator's page shows them."""
    html = (await client.get(VICTIM_PAGE)).text
    return {
        **hidden_fields(html, VICTIM_RELEASE),
        "note": "released",
        "_csrf_token": csrf_token(html),
    }
