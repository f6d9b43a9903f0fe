"""Cross-site request forgery in a real browser (issue 19; security review 2, N1): a page
on another port of 127.0.0.1 — same site, another origin — plants a sign-in token and
cookie it minted itself, and auto-submits a release of a complainer to the console while
the operator is signed in there. Debian's Chromium sends the operator's SameSite=Strict
session cookie (same site); the console refuses all the same, and nothing is released."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.browser.conftest import Tabs
from tests.browser.helpers import LiveServer, complaint, sign_in
from tests.serving import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

VICTIM = "complainer@example.org"
Serve = Callable[..., LiveServer]


class Attacker:
    """A page on another port of 127.0.0.1: it sets the cookies it was given and posts
    the given form to the console as soon as it loads."""

    def __init__(self, action: str, fields: dict[str, str], cookies: list[str]) -> None:
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        page = (
            f'<!doctype html><form id="f" method="post" action="{html.escape(action)}">'
            f"{inputs}</form><script>document.getElementById('f').submit()</script>"
        ).encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                for cookie in cookies:
                    self.send_header("Set-Cookie", cookie)
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Page)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attackers() -> Iterator[list[Attacker]]:
    started: list[Attacker] = []
    yield started
    for attacker in started:
        attacker.close()


def _anonymous_token(live: LiveServer) -> tuple[str, str]:
    """What anyone gets from the public sign-in page: its cookie's nonce and its token."""
    shown = httpx.get(f"{live.base}/console/login")
    nonce = shown.cookies.get("__Host-bl_login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', shown.text)
    assert nonce
    assert token
    return nonce, token.group(1)


@pytest.mark.parametrize("planted", [True, False], ids=["planted-token", "no-token"])
def test_a_page_on_another_port_cannot_release_as_the_signed_in_operator(
    serve: Serve, tabs: Tabs, attackers: list[Attacker], planted: bool
) -> None:
    live = serve()
    live.webhook(complaint(VICTIM, "c-victim"))
    live.settle()
    page = tabs.open(live)
    sign_in(page)
    fields = {"note": "csrf from another origin", "also": "complaint", "expect": "1"}
    cookies: list[str] = []
    if planted:  # the double-submit trick: a cookie and a token of the attacker's own
        nonce, token = _anonymous_token(live)
        fields["_csrf_token"] = token
        cookies = [
            f"__Host-bl_login={nonce}; Path=/; Secure; SameSite=Strict",
            f"bl_login={nonce}; Path=/",
        ]
    action = f"{live.base}/console/address/{VICTIM}/release"
    attacker = Attacker(action, fields, cookies)
    attackers.append(attacker)

    with page.expect_response(lambda r: r.url == action) as answered:
        page.goto(attacker.url)
    refused = answered.value
    assert refused.status == 403
    assert "nothing was done" in refused.text()
    live.settle()
    status = live.status(VICTIM)
    assert (status["suppressed"], status["reason"]) == (True, "complaint")
    operator = live.http.get("/v1/audit/receipts", params={"source": "operator"}).json()
    assert operator["items"] == []
    # the operator's own page still works: same form, same session, accepted
    page.goto(f"/console/address/{VICTIM}")
    page.get_by_label("also lift complaint").check()
    page.get_by_label("Release: why? (recorded with your name)").fill("the real operator")
    page.get_by_role("button", name="Release").click()
    page.get_by_role("status").get_by_text("released by support").wait_for()
    assert live.status(VICTIM)["suppressed"] is False
