"""Signing in to the console from a test client, and reading its forms."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import API_KEY

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


async def post_form(client: Any, page: str, action: str, data: dict[str, Any]) -> Any:
    """Submit a form of `page` to `action`, with the page's CSRF token."""
    html = (await client.get(page)).text
    return await client.post(
        action, data={**data, "_csrf_token": csrf_token(html)}, follow_redirects=False
    )
