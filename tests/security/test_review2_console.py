"""The console's sessions, forms and words (issue 19; security review 2, N1, N3, N4, N6,
N7): a form is accepted only with the token of the session it was shown to and from the
console's own origin; cookies are Secure and `__Host-` named unless plain HTTP is allowed
and used; sign-out ends a session on every instance; a notice is only ever the console's
own; every address links to its own page."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.console import session
from api.settings import load_settings
from projections import DEFAULT_POLICY
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, BASE_URL, SECRET, settle
from tests.console.helpers import csrf_token, hidden_fields, sign_in
from tests.serving import free_port

pytestmark = pytest.mark.both_backends

SESSION = f"__Host-{session.COOKIE}"
ADDRESS = "victim@example.org"
PAGE = f"/console/address/{ADDRESS}"
RELEASE = f"{PAGE}/release"


def environment(db_path: Path, **extra: str) -> dict[str, str]:
    return {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY},support:support-key-0123456789",
        **extra,
    }


async def suppressed_victim(client: Any) -> None:
    await post_webhook(client, hard_bounce(ADDRESS))
    await settle(client)


async def operator_receipts(client: Any) -> int:
    page = await client.get("/v1/audit/receipts", params={"source": "operator"}, headers=AUTH)
    return len(page.json()["items"])


async def release_form(client: Any) -> dict[str, str]:
    """The release form's fields as the signed-in operator's page shows them."""
    html = (await client.get(PAGE)).text
    return {**hidden_fields(html, RELEASE), "note": "released", "_csrf_token": csrf_token(html)}


# -- N1: a form's token is bound to the session it was shown to ----------------------------


async def test_a_token_minted_anonymously_is_refused_for_a_signed_in_session(
    client: Any,
) -> None:
    """Review 2, N1 (reproduction C): the sign-in page's token, taken by anyone, is no
    token for a session's forms."""
    await suppressed_victim(client)
    anonymous = csrf_token((await client.get("/console/login")).text)
    assert (await sign_in(client)).status_code == 303
    fields = {**(await release_form(client)), "_csrf_token": anonymous}
    refused = await client.post(RELEASE, data=fields, follow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert "nothing was done" in refused.text
    assert await operator_receipts(client) == 0
    assert (await client.get(f"/v1/suppressions/{ADDRESS}", headers=AUTH)).json()["suppressed"]


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
                RELEASE, data={**mine, "_csrf_token": token}, follow_redirects=False
            )
            assert refused.status_code == 403, token
        assert await operator_receipts(first) == 0
        accepted = await first.post(RELEASE, data=mine, follow_redirects=False)
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
    answer = await client.post(RELEASE, data=fields, headers=headers, follow_redirects=False)
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


# -- N3: Secure cookies, TLS through a trusted proxy, the plain-HTTP opt-out ------------------


def cookie_of(response: Any, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    assert found, response.headers.get_list("set-cookie")
    return str(found[0])


@pytest.mark.parametrize(
    ("base", "extra", "headers", "secure"),
    [
        pytest.param("https://testserver.local", {}, {}, True, id="tls"),
        pytest.param("http://testserver.local", {}, {}, True, id="plain-http-default"),
        pytest.param(
            "http://testserver.local",
            {"BOUNCELEDGER_CONSOLE_PLAIN_HTTP": "on"},
            {},
            False,
            id="plain-http-opted-out",
        ),
        pytest.param(
            "http://testserver.local",
            {"BOUNCELEDGER_CONSOLE_PLAIN_HTTP": "on", "BOUNCELEDGER_TRUSTED_PROXIES": "10.9.9.9"},
            {"X-Forwarded-Proto": "https"},
            False,
            id="forwarded-proto-from-an-untrusted-peer",
        ),
    ],
)
async def test_console_cookies_are_secure_unless_plain_http_is_allowed_and_used(
    db_path: Path, base: str, extra: dict[str, str], headers: dict[str, str], secure: bool
) -> None:
    """Review 2, N3: Secure (and `__Host-` named) whenever the request arrived over TLS —
    directly or as a trusted proxy says — and by default; without Secure only on plain
    HTTP with the documented opt-out."""
    settings = load_settings(environment(db_path, **extra))
    async with AsyncTestClient(app=create_app(settings, DEFAULT_POLICY), base_url=base) as c:
        c.headers.update(headers)
        shown = await c.get("/console/login")
        name = f"__Host-{session.LOGIN_COOKIE}" if secure else session.LOGIN_COOKIE
        login = cookie_of(shown, name)
        assert ("; Secure" in login) is secure
        if not secure:  # the client keeps a plain cookie; a Secure one is not sent over http
            signed_in = await c.post(
                "/console/login",
                data={"key": API_KEY, "_csrf_token": csrf_token(shown.text), "next": "/console"},
                follow_redirects=False,
            )
            assert signed_in.status_code == 303, signed_in.text
            cookie = cookie_of(signed_in, session.COOKIE)
            assert "Secure" not in cookie
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie


async def test_signing_in_over_plain_http_elsewhere_than_localhost_says_why_it_fails(
    db_path: Path,
) -> None:
    """Review 2, N3: Secure cookies are dropped by browsers on plain HTTP except on
    localhost: the sign-in page says so, and what to do, instead of a silent loop."""
    settings = load_settings(environment(db_path))
    app = create_app(settings, DEFAULT_POLICY)
    async with AsyncTestClient(app=app, base_url="http://console.example.net") as c:
        shown = (await c.get("/console/login")).text
        assert "plain HTTP at console.example.net" in shown
        assert "BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on" in shown
    for base, host in (
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000", "localhost:8000"),
        ("https://console.example.net", "console.example.net"),
    ):
        async with AsyncTestClient(app=create_app(settings, DEFAULT_POLICY), base_url=base) as c:
            shown = await c.get("/console/login", headers={"Host": host})
            assert "plain HTTP" not in shown.text, host


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("proxies", "secure"), [("127.0.0.1", True), ("10.9.9.9", False)], ids=["trusted", "untrusted"]
)
def test_tls_at_a_trusted_proxy_makes_the_cookies_secure(
    db_path: Path, proxies: str, secure: bool
) -> None:
    """Review 2, N3: behind a TLS-terminating proxy listed in BOUNCELEDGER_TRUSTED_PROXIES,
    `X-Forwarded-Proto: https` makes the cookies Secure even with the plain-HTTP opt-out;
    the same header from any other peer is not believed (a real server: the peer is
    127.0.0.1)."""
    settings = load_settings(
        environment(
            db_path, BOUNCELEDGER_CONSOLE_PLAIN_HTTP="on", BOUNCELEDGER_TRUSTED_PROXIES=proxies
        )
    )
    with running(create_app(settings, DEFAULT_POLICY)) as base:
        shown = httpx.get(f"{base}/console/login", headers={"X-Forwarded-Proto": "https"})
        name = f"__Host-{session.LOGIN_COOKIE}" if secure else session.LOGIN_COOKIE
        assert ("; Secure" in cookie_of(shown, name)) is secure


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, in a thread, for the duration."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# -- N4: sign-out ends the session on every instance ----------------------------------------


async def test_a_signed_out_cookie_gets_the_sign_in_page_on_every_instance(
    db_path: Path,
) -> None:
    """Review 2, N4: the cookie saved before sign-out is refused afterwards, here and on
    another instance of the same ledger."""
    settings = load_settings(environment(db_path))
    app = create_app(settings, DEFAULT_POLICY)
    async with AsyncTestClient(app=app, base_url=BASE_URL) as first:
        await sign_in(first)
        saved = first.cookies.get(SESSION)
        assert (await first.get("/console/ledger", follow_redirects=False)).status_code == 200
        home = await first.get("/console")
        out = await first.post(
            "/console/logout", data={"_csrf_token": csrf_token(home.text)}, follow_redirects=False
        )
        assert out.status_code == 303
        assert f'{SESSION}=""' in out.headers["set-cookie"]
        first.cookies.set(SESSION, saved)
        gone = await first.get("/console/ledger", follow_redirects=False)
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/console/login")
    async with AsyncTestClient(
        app=create_app(settings, DEFAULT_POLICY), base_url=BASE_URL
    ) as second:
        second.cookies.set(SESSION, saved)
        assert (await second.get("/console/ledger", follow_redirects=False)).status_code == 303
        await sign_in(second)  # a new sign-in is a new session
        assert (await second.get("/console/ledger", follow_redirects=False)).status_code == 200


# -- N6: a notice is only ever the console's own ------------------------------------------------


async def test_a_link_cannot_put_words_in_the_consoles_mouth(client: Any) -> None:
    """Review 2, N6: `?done=` text a link chose is never shown, on the sign-in page or
    any other; the notice of a real action is shown, and not once forged or expired."""
    lure = "Security notice: paste your API key at https://bl-support.example.net"
    for path in ("/console/login", "/console/suppressions"):
        html = (await client.get(path, params={"done": lure})).text
        assert 'class="notice"' not in html, path
    await suppressed_victim(client)
    await sign_in(client)
    done = await client.post(RELEASE, data=await release_form(client), follow_redirects=False)
    location = done.headers["location"]
    query = parse_qs(urlsplit(location).query)
    notice, sig = query["done"][0], query["sig"][0]
    assert notice.startswith("released by ops")
    assert notice in (await client.get(location)).text
    for forged in (
        {"done": lure, "sig": sig},  # another text under a genuine signature
        {"done": notice, "sig": f"{int(time.time()) + 9999}.{sig.split('.', 1)[1]}"},
        {"done": notice, "sig": f"{int(time.time()) - 1}.{sig.split('.', 1)[1]}"},
        {"done": notice, "sig": "garbage"},
    ):
        html = (await client.get(PAGE, params=forged)).text
        assert 'class="notice"' not in html, forged


# -- N7: every address links to its own page ---------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a/../../receipts/1/raw@example.com",
        "what?is=this@example.com",
        "x#y@example.com",
        "p%q@example.com",
    ],
)
async def test_every_address_links_to_its_own_page_and_its_actions_work(
    client: Any, address: str
) -> None:
    """Review 2, N7: an address holding `/`, `?`, `#` or `%` is quoted in every link the
    console builds: the link leads to that address's page, never elsewhere, and its
    release works from there."""
    await post_webhook(client, hard_bounce(address, "n7"))
    await settle(client)
    await sign_in(client)
    listing = (await client.get("/console/suppressions")).text
    (href,) = re.findall(r'<a href="(/console/address/[^"]+)">', listing)
    assert "/" not in href.removeprefix("/console/address/")
    assert not set("?#") & set(href)
    page = await client.get(href)
    assert page.status_code == 200
    assert f"<h1>{address}</h1>" in page.text.replace("&#34;", '"')
    action = re.search(r'<form method="post" action="([^"]+/release)"', page.text)
    assert action is not None
    fields = {**hidden_fields(page.text, action.group(1)), "note": "works",
              "_csrf_token": csrf_token(page.text)}  # fmt: skip
    done = await client.post(action.group(1), data=fields, follow_redirects=False)
    assert done.status_code == 303
    check = await client.post("/v1/suppressions/check", json={"emails": [address]}, headers=AUTH)
    assert check.json()["suppressed"] == []
