"""The console's core (issue 10): signing in and out (a signed-out session ends on every
instance), the session cookie, CSRF on the console's forms only, the CSP, escaping of
attacker-controlled bodies, notices that are only ever the console's own, and operator
actions recorded with the signed-in key's name and the note. CSRF in depth is
tests/console/test_csrf.py, the cookies' Secure flag tests/console/test_cookies.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from api.console import session
from api.settings import ApiKey, Secret, load_settings
from projections.erasure_keys import ErasureKey
from tests.api.helpers import event, hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.console.helpers import (
    VICTIM_PAGE,
    VICTIM_RELEASE,
    csrf_token,
    post_form,
    release_form,
    sign_in,
    suppressed_victim,
)

pytestmark = pytest.mark.both_backends

HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"


async def test_every_console_page_asks_to_sign_in_first(client: Any) -> None:
    for path in ("/console", "/console/address/a@example.org", "/console/receipts/1"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")
    # an API key in the header is not a console session
    assert (await client.get("/console", headers=AUTH, follow_redirects=False)).status_code == 303


async def test_sign_in_sets_a_strict_http_only_secure_host_session_cookie(client: Any) -> None:
    refused = await sign_in(client, key="not-the-key-0123456789")
    assert refused.status_code == 401
    assert "not a valid API key" in refused.text
    assert session.COOKIE not in refused.headers.get("set-cookie", "")
    accepted = await sign_in(client)
    assert accepted.status_code == 303
    cookie = accepted.headers["set-cookie"]
    assert cookie.startswith(f"__Host-{session.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/;", "Secure"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert API_KEY not in cookie  # the key is never in the cookie
    home = await client.get("/console")
    assert home.status_code == 200
    assert "signed in as <strong>ops</strong>" in home.text


async def test_sign_out_ends_the_session(client: Any) -> None:
    await sign_in(client)
    home = await client.get("/console")
    out = await client.post(
        "/console/logout", data={"_csrf_token": csrf_token(home.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert (await client.get("/console", follow_redirects=False)).status_code == 303


async def test_forms_without_the_csrf_token_are_refused_webhooks_are_not(client: Any) -> None:
    await sign_in(client)
    for action, data in (
        ("/console/address/a@example.org/suppress", {"note": "x"}),
        ("/console/logout", {}),
        ("/console/login", {"key": API_KEY}),
    ):
        response = await client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 403, action
    # the webhook doors and the JSON API take no cookies: no CSRF check there
    assert (await post_webhook(client, hard_bounce("a@example.org"))).status_code == 200
    released = await client.request(
        "DELETE", "/v1/suppressions/a@example.org", json={"note": "api"}, headers=AUTH
    )
    assert released.status_code == 200


async def test_console_pages_carry_a_csp_without_inline_scripts(client: Any) -> None:
    await sign_in(client)
    page = await client.get("/console")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text.replace('<script src="/console/static/console.js"', "")
    assert page.headers["cache-control"] == "no-store"
    static = await client.get("/console/static/console.css")  # served by the app itself
    assert static.status_code == 200


async def test_a_hostile_body_is_shown_as_text(client: Any) -> None:
    body = json.dumps(
        event("bounce", "victim@example.org", "x1", bounce="hard", subject=HOSTILE, message=HOSTILE)
    ).encode()
    assert (await post_webhook(client, body)).status_code == 200
    await settle(client)
    await sign_in(client)
    for path in ("/console/receipts/1", "/console/address/victim@example.org"):
        html = (await client.get(path)).text
        assert "<script>window.__pwned" not in html, path
        assert "<img src=x" not in html, path
    receipt = (await client.get("/console/receipts/1")).text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in receipt
    raw = await client.get("/console/receipts/1/raw")
    assert raw.content == body
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment")


async def test_release_and_suppress_record_the_operator_and_the_note(client: Any) -> None:
    await post_webhook(client, hard_bounce("a@example.org"))
    await settle(client)
    await sign_in(client)
    page = "/console/address/a@example.org"
    refused = await post_form(client, page, page + "/release", {"note": "  "})
    assert refused.status_code == 303
    assert (await client.get(refused.headers["location"])).text.count("needs a note") == 1
    done = await post_form(client, page, page + "/release", {"note": "asked by phone, #4711"})
    assert done.status_code == 303
    shown = (await client.get(done.headers["location"])).text
    assert "released by ops" in shown
    assert "asked by phone, #4711" in shown  # in the timeline
    events = (await client.get("/v1/audit/recipients/a@example.org/events", headers=AUTH)).json()
    assert [(e["kind"], e["actor"], e["note"]) for e in events][-1] == (
        "operator_release",
        "ops",
        "asked by phone, #4711",
    )
    again = await post_form(client, page, page + "/suppress", {"note": "legal hold"})
    assert "suppressed by ops" in (await client.get(again.headers["location"])).text
    status = (await client.get("/v1/suppressions/a@example.org", headers=AUTH)).json()
    assert (status["suppressed"], status["reason"]) == (True, "manual")


async def test_lookup_one_address_and_a_list(client: Any) -> None:
    await post_webhook(client, hard_bounce("a@example.org"))
    await settle(client)
    await sign_in(client)
    one = (await client.get("/console", params={"q": "A@Example.org"})).text
    assert "suppressed · hard_bounce" in one
    assert 'href="/console/receipts/1"' in one
    many = (await client.get("/console", params={"emails": "a@example.org\nb@example.org"})).text
    assert "1 of 2 suppressed" in many
    assert "may be mailed" in many


async def test_sign_in_goes_back_to_the_page_asked_for_never_elsewhere(client: Any) -> None:
    form = await client.get("/console/login", params={"next": "https://evil.example/"})
    assert 'value="/console"' in form.text
    response = await client.post(
        "/console/login",
        data={"key": API_KEY, "_csrf_token": csrf_token(form.text), "next": "//evil.example"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"


def test_a_session_ends_with_its_key_or_its_time() -> None:
    ops = ApiKey("ops", Secret("k" * 20))
    cookie = session.issue(ops, now=1000.0)
    found = session.verify((ops,), cookie, now=1001.0)
    assert found is not None
    assert (found.name, found.expires) == ("ops", 1000 + session.LIFETIME)
    assert session.verify((ops,), cookie, now=1000.0 + session.LIFETIME + 1) is None
    assert session.verify((ApiKey("ops", Secret("j" * 20)),), cookie, now=1001.0) is None
    assert session.verify((), cookie, now=1001.0) is None
    forged = cookie.split(".")[0] + "." + cookie.split(".")[1][::-1]
    assert session.verify((ops,), forged, now=1001.0) is None
    assert session.verify((ops,), "garbage", now=1001.0) is None
    assert session.verify((ops,), cookie, now=time.time()) is None  # issued long ago


async def test_the_same_keys_accept_a_session_on_another_instance(
    make_client: Any, db_path: Any
) -> None:
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": str(db_path),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        }
    )
    name = f"__Host-{session.COOKIE}"
    async with make_client(settings=settings) as first:
        await sign_in(first)
        cookie = first.cookies.get(name)
    async with make_client(settings=settings) as second:
        second.cookies.set(name, cookie)
        assert (await second.get("/console", follow_redirects=False)).status_code == 200


# Sign-out ends the session on every instance; a notice is only ever the console's own
# (second security review, issue 19: N4 and N6).

HOST_SESSION = f"__Host-{session.COOKIE}"


async def test_a_signed_out_cookie_gets_the_sign_in_page_on_every_instance(
    make_client: Callable[..., Any],
) -> None:
    """Review 2, N4: the cookie saved before sign-out is refused afterwards, here and on
    another instance of the same ledger."""
    async with make_client() as first:
        await sign_in(first)
        saved = first.cookies.get(HOST_SESSION)
        assert (await first.get("/console/ledger", follow_redirects=False)).status_code == 200
        home = await first.get("/console")
        out = await first.post(
            "/console/logout", data={"_csrf_token": csrf_token(home.text)}, follow_redirects=False
        )
        assert out.status_code == 303
        assert f'{HOST_SESSION}=""' in out.headers["set-cookie"]
        first.cookies.set(HOST_SESSION, saved)
        gone = await first.get("/console/ledger", follow_redirects=False)
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/console/login")
    async with make_client() as second:  # another instance of the same ledger
        second.cookies.set(HOST_SESSION, saved)
        assert (await second.get("/console/ledger", follow_redirects=False)).status_code == 303
        await sign_in(second)  # a new sign-in is a new session
        assert (await second.get("/console/ledger", follow_redirects=False)).status_code == 200


async def test_a_link_cannot_put_words_in_the_consoles_mouth(client: Any) -> None:
    """Review 2, N6: `?done=` text a link chose is never shown, on the sign-in page or
    any other; the notice of a real action is shown, and not once forged or expired."""
    lure = "Security notice: paste your API key at https://bl-support.example.net"
    for path in ("/console/login", "/console/suppressions"):
        html = (await client.get(path, params={"done": lure})).text
        assert 'class="notice"' not in html, path
    await suppressed_victim(client)
    await sign_in(client)
    done = await client.post(
        VICTIM_RELEASE, data=await release_form(client), follow_redirects=False
    )
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
        html = (await client.get(VICTIM_PAGE, params=forged)).text
        assert 'class="notice"' not in html, forged


async def test_lookup_of_an_erased_address_says_it_is_kept_suppressed(
    make_client: Callable[..., Any], settings: Any
) -> None:
    keyed = msgspec.structs.replace(
        settings, erasure_key=ErasureKey(b"console-erasure-key-32-bytes-long")
    )
    async with make_client(settings=keyed) as client:
        await post_webhook(client, hard_bounce("gone@example.org"))
        await settle(client)
        body = {"email": "gone@example.org", "note": "DSAR 9"}
        subject = (await client.post("/v1/erasures", json=body, headers=AUTH)).json()["subject"]
        await sign_in(client)
        page = (await client.get("/console", params={"q": "gone@example.org"})).text
        assert "suppressed · hard_bounce" in page
        assert f"kept suppressed as <code>{subject}</code>" in page
        listed = (await client.get("/console", params={"emails": "gone@example.org"})).text
        assert "1 of 1 suppressed" in listed
        ledger = (await client.get("/console/ledger")).text
        assert "<td>erase</td>" in ledger
        assert subject in ledger
        assert "gone@example.org" not in ledger
