"""The console's cookies: Secure and `__Host-` named whenever the request arrived over
TLS — directly, or as a trusted proxy's `X-Forwarded-Proto` says — and by default;
without Secure only on plain HTTP with the documented opt-out
(BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on), and the sign-in page says why signing in over
plain HTTP elsewhere than localhost fails. Whether a request came over TLS is
tests/unit/test_tls.py.

Provenance: the second security review (issue 19, N3)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.console import session
from api.settings import load_settings
from projections import DEFAULT_POLICY
from tests.conftest import API_KEY, SECRET
from tests.console.helpers import csrf_token
from tests.serving import free_port

pytestmark = pytest.mark.both_backends


def environment(db_path: Path, **extra: str) -> dict[str, str]:
    """The console's settings, with `extra` (the plain-HTTP opt-out, trusted proxies)."""
    return {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY},support:support-key-0123456789",
        **extra,
    }


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
    make_client: Callable[..., Any],
    db_path: Path,
    base: str,
    extra: dict[str, str],
    headers: dict[str, str],
    secure: bool,
) -> None:
    """Review 2, N3: Secure (and `__Host-` named) whenever the request arrived over TLS —
    directly or as a trusted proxy says — and by default; without Secure only on plain
    HTTP with the documented opt-out."""
    settings = load_settings(environment(db_path, **extra))
    async with make_client(settings=settings, base_url=base) as c:
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
    make_client: Callable[..., Any], db_path: Path
) -> None:
    """Review 2, N3: Secure cookies are dropped by browsers on plain HTTP except on
    localhost: the sign-in page says so, and what to do, instead of a silent loop."""
    settings = load_settings(environment(db_path))
    async with make_client(settings=settings, base_url="http://console.example.net") as c:
        shown = (await c.get("/console/login")).text
        assert "plain HTTP at console.example.net" in shown
        assert "BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on" in shown
    for base, host in (
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000", "localhost:8000"),
        ("https://console.example.net", "console.example.net"),
    ):
        async with make_client(settings=settings, base_url=base) as c:
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
