"""Cross-site request forgery against the console's forms, in process: a form is
accepted only with the token of the session it was shown to (not one minted anonymously,
not another session's), and only from the console's own origin (`Sec-Fetch-Site`,
`Origin`) whatever its token; the sign-in form's token is bound to its own pre-session
cookie. The same attack in a real browser is tests/browser/test_csrf.py.

Provenance: the second security review (issue 19, N1)."""

from __future__ import annotations

from typing import Any

import pytest

from api.console import session
from tests.conftest import API_KEY, AUTH, BASE_URL
from tests.console.helpers import (
    VICTIM,
    VICTIM_RELEASE,
    csrf_token,
    operator_receipts,
    release_form,
    sign_in,
    suppressed_victim,
)

pytestmark = pytest.mark.both_backends

SESSION = f"__Host-{session.COOKIE}"


async def test_a_token_minted_anonymously_is_refused_for_a_signed_in_session(
    client: Any,
) -> None:
    """Review 2, N1 (reproduction C): the sign-in page's token, taken by anyone, is no
    token for a session's forms."""
    await suppressed_victim(client)
    anonymous = csrf_token((await client.get("/console/login")).text)
    assert (await sign_in(client)).status_code == 303
    fields = {**(await release_form(client)), "_csrf_token": anonymous}
    refused = await client.post(VICTIM_RELEASE, data=fields, follow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert "nothing was done" in refused.text
    assert await operator_receipts(client) == 0
    assert (await client.get(f"/v1/suppressions/{VICTIM}", headers=AUTH)).json()["suppressed"]


async def test_a_token_of_another_session_is_refused(make_client: Any, settings: Any) -> None:
    """Review 2, N1: two sessions (even of the same key) never accept each other's tokens,
    and a token shown before sign-in is not one of the session's."""
    async with make_client() as first, make_client() as second:
        await suppressed_victim(first)
        before_sign_in = csrf_token((await first.get("/console/login")).text)
        await sign_in(first)
        await sign_in(second)
        theirs = (await release_form(second))["_csrf_token"]
        mine = await release_form(first)
        assert theirs != mine["_csrf_token"]
        for token in (theirs, before_sign_in, "", "x" * 43):
            refused = await first.post(
                VICTIM_RELEASE, data={**mine, "_csrf_token": token}, follow_redirects=False
            )
            assert refused.status_code == 403, token
        assert await operator_receipts(first) == 0
        accepted = await first.post(VICTIM_RELEASE, data=mine, follow_redirects=False)
        assert accepted.status_code == 303
        assert await operator_receipts(first) == 1


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Origin": BASE_URL}, True),
        ({"Sec-Fetch-Site": "same-site"}, False),  # another port, a sibling subdomain
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "https://testserver.local:8443"}, False),
        ({"Origin": "https://wiki.testserver.local"}, False),
        ({"Origin": "null"}, False),
    ],
)
async def test_a_form_from_another_origin_is_refused_even_with_a_valid_token(
    client: Any, headers: dict[str, str], accepted: bool
) -> None:
    """Review 2, N1 (reproductions A and B): the browser says where a form comes from;
    anything but the console's own origin is refused before the token is looked at."""
    await suppressed_victim(client)
    await sign_in(client)
    fields = await release_form(client)
    answer = await client.post(VICTIM_RELEASE, data=fields, headers=headers, follow_redirects=False)
    assert answer.status_code == (303 if accepted else 403), answer.text
    assert await operator_receipts(client) == (1 if accepted else 0)


async def test_the_sign_in_form_needs_its_own_cookie_and_token(client: Any) -> None:
    """Review 2, N1 (login CSRF): the sign-in form's token is bound to its pre-session
    cookie; one planted from another browser is refused, and signing in spends it."""
    shown = await client.get("/console/login")
    cookie = shown.cookies.get(f"__Host-{session.LOGIN_COOKIE}")
    assert cookie
    token = csrf_token(shown.text)
    client.cookies.set(f"__Host-{session.LOGIN_COOKIE}", "planted-by-someone-else")
    refused = await client.post(
        "/console/login",
        data={"key": API_KEY, "_csrf_token": token, "next": "/console"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert SESSION not in refused.headers.get("set-cookie", "")
    client.cookies.set(f"__Host-{session.LOGIN_COOKIE}", cookie)
    signed_in = await client.post(
        "/console/login",
        data={"key": API_KEY, "_csrf_token": token, "next": "/console"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert f'__Host-{session.LOGIN_COOKIE}=""' in signed_in.headers["set-cookie"]
