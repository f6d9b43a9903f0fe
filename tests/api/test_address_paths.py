"""Addresses holding `/` or `%` in request paths (review 2, N11): `a/b@example.org` is a
valid address, and every route that takes one in its path (`/v1/suppressions/{email}`,
its `/explain`, `/v1/audit/recipients/{email}/events`, `/console/address/{email}` and its
`/suppress` and `/release`) finds it, sent %-encoded or as it is (api/paths.py). A 404
there reads as "never seen", and a complainer gets mailed. Every link the console builds
quotes the address (`/`, `?`, `#`, `%`) so that it leads to that address's page (review
2, N7)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from litestar.testing import transport

from projections.recipients import normalize_recipient
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.console.helpers import csrf_token, hidden_fields, post_form, sign_in
from tests.serving import bounceledger_script, free_port, stop, wait_healthy

ADDRESSES = [
    "a/b@example.org",
    "a%b@example.org",
    "a/%2F@example.org",
    "x/y/z@example.org",
    "a%41@example.org",  # a `%` that reads as an escape is still a `%`
]


def forms(address: str) -> list[str]:
    """How a client may put `address` in a path: %-encoded, and as it is (when that is a
    path at all: a `%` would be read as an escape)."""
    encoded = quote(address, safe="")
    return [encoded] if "%" in address else [encoded, address]


CASES = [
    pytest.param(address, form, id=f"{address}-{'encoded' if form != address else 'as-is'}")
    for address in ADDRESSES
    for form in forms(address)
]


@pytest.fixture
def server(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test client, decoding request paths once, as a server does (uvicorn:
    `unquote(raw_path)`). litestar's test transport unquotes httpx's already decoded
    `url.path` a second time, so `%252F` would arrive as `/`, not `%2F`."""
    parse = transport.TestClientTransport.parse_request

    def parse_once(
        self: transport.TestClientTransport[Any], request: httpx.Request
    ) -> dict[str, Any]:
        scope = parse(self, request)
        scope["path"] = unquote(request.url.raw_path.split(b"?", 1)[0].decode("ascii"))
        return scope

    monkeypatch.setattr(transport.TestClientTransport, "parse_request", parse_once)
    return client


async def check(client: Any, *emails: str) -> list[str]:
    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    assert response.status_code == 200, response.text
    return [hit["email"] for hit in response.json()["suppressed"]]


@pytest.mark.parametrize(("address", "form"), CASES)
async def test_an_address_with_a_slash_or_percent_is_one_address(
    server: Any, address: str, form: str
) -> None:
    stored = normalize_recipient(address)
    assert stored is not None
    one = f"/v1/suppressions/{form}"

    put = await server.put(one, json={"note": "asked by phone"}, headers=AUTH)
    assert put.status_code == 200, put.text
    assert put.json()["email"] == stored
    assert put.json()["suppressed"] is True

    listed = await server.get("/v1/suppressions", params={"limit": 10}, headers=AUTH)
    assert [item["email"] for item in listed.json()["items"]] == [stored]
    assert await check(server, address) == [address]
    assert await check(server, stored) == [stored]

    for sent in forms(address):
        got = await server.get(f"/v1/suppressions/{sent}", headers=AUTH)
        assert got.status_code == 200, (sent, got.text)
        assert (got.json()["email"], got.json()["reason"]) == (stored, "manual")
        why = await server.get(f"/v1/suppressions/{sent}/explain", headers=AUTH)
        assert why.status_code == 200, (sent, why.text)
        assert why.json()["status"]["email"] == stored
        assert [s["event"]["kind"] for s in why.json()["steps"]] == ["operator_suppress"]
        events = await server.get(f"/v1/audit/recipients/{sent}/events", headers=AUTH)
        assert events.status_code == 200, (sent, events.text)
        assert [(e["kind"], e["note"]) for e in events.json()] == [
            ("operator_suppress", "asked by phone")
        ]

    released = await server.request(
        "DELETE", one, json={"note": "a mistake", "also": ["manual"]}, headers=AUTH
    )
    assert released.status_code == 200, released.text
    after = await server.get(f"/v1/suppressions/{quote(address, safe='')}", headers=AUTH)
    assert after.status_code == 200
    assert (after.json()["email"], after.json()["suppressed"]) == (stored, False)
    assert await check(server, address) == []


async def test_provider_evidence_for_a_slash_address_is_found_by_its_path(server: Any) -> None:
    """The review's case: the folded evidence answered by `check` but 404 by the path."""
    assert (await post_webhook(server, hard_bounce("a/b@example.org"))).status_code == 200
    await settle(server)
    for path in ("/v1/suppressions/a%2Fb%40example.org", "/v1/suppressions/a/b@example.org"):
        got = await server.get(path, headers=AUTH)
        assert got.status_code == 200, (path, got.text)
        assert (got.json()["suppressed"], got.json()["reason"]) == (True, "hard_bounce")


async def test_plain_addresses_and_the_other_routes_keep_working(server: Any) -> None:
    put = await server.put(
        "/v1/suppressions/Bob@Example.org", json={"note": "by hand"}, headers=AUTH
    )
    assert put.status_code == 200, put.text
    for path in (
        "/v1/suppressions/bob@example.org",
        "/v1/suppressions/bob%40example.org",
        "/v1/suppressions/bob@example.org/",
    ):
        got = await server.get(path, headers=AUTH)
        assert (got.status_code, got.json()["email"]) == (200, "bob@example.org"), path
    listed = await server.get("/v1/suppressions?limit=10", headers=AUTH)
    assert listed.status_code == 200
    assert [item["email"] for item in listed.json()["items"]] == ["bob@example.org"]
    assert (await server.get("/v1/suppressions/", headers=AUTH)).status_code == 200
    assert await check(server, "bob@example.org", "nobody@example.org") == ["bob@example.org"]
    explain = await server.get("/v1/suppressions/bob@example.org/explain", headers=AUTH)
    assert explain.status_code == 200
    events = await server.get("/v1/audit/recipients/bob@example.org/events", headers=AUTH)
    assert [e["kind"] for e in events.json()] == ["operator_suppress"]
    assert (await server.get("/v1/audit/receipts/1", headers=AUTH)).status_code == 200


async def test_a_path_without_an_at_routes_as_before(server: Any) -> None:
    # one segment: handed to the route as it is (an address that is nobody's)
    nobody = await server.get("/v1/suppressions/nobody", headers=AUTH)
    assert (nobody.status_code, nobody.json()["suppressed"]) == (200, False)
    assert nobody.json()["email"] == "nobody"
    # more than one: no route
    assert (await server.get("/v1/suppressions/a/b", headers=AUTH)).status_code == 404
    assert (await server.get("/v1/suppressions/a%2Fb", headers=AUTH)).status_code == 404
    assert (await server.get("/v1/audit/recipients/a/b/events", headers=AUTH)).status_code == 404
    # a `%` in the one segment reaches the handler as the server decoded it
    percent = await server.get("/v1/suppressions/100%25", headers=AUTH)
    assert (percent.status_code, percent.json()["email"]) == (200, "100%")


def posting_form(html: str, action: str) -> tuple[str, dict[str, str]]:
    """The action URL of the page's form posting to `.../{action}`, and its hidden fields
    (the CSRF token aside: post_form adds it)."""
    found = re.search(
        rf'<form method="post" action="([^"]+/{action})"(.*?)</form>', html, flags=re.DOTALL
    )
    assert found is not None, f"no {action} form on the page"
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(2))
    return found.group(1), {name: value for name, value in hidden if name != "_csrf_token"}


async def test_the_console_page_and_its_forms_route_for_a_slash_address(server: Any) -> None:
    page = "/console/address/a%2Fb%40example.org"
    # signed out: sent to sign in, with a way back that routes to the same address
    gate = await server.get(page, follow_redirects=False)
    assert gate.status_code == 303
    way_back = unquote(gate.headers["location"].split("next=", 1)[1])
    assert way_back == "/console/address/a%2Fb@example.org"
    assert (await sign_in(server)).status_code == 303
    assert "<h1>a/b@example.org</h1>" in (await server.get(way_back)).text
    for action, suppressed in (("suppress", True), ("release", False)):
        shown = await server.get(page)
        assert shown.status_code == 200, shown.text
        assert "<h1>a/b@example.org</h1>" in shown.text
        # the page's form for the action that applies posts where it routes
        target, hidden = posting_form(shown.text, action)
        assert target == f"/console/address/a%2Fb@example.org/{action}"
        fields = {**hidden, "note": f"{action} by hand"}
        if action == "release":  # the page offers to lift the manual suppression it shows
            assert 'name="also" value="manual"' in shown.text
            fields["also"] = "manual"
        answer = await post_form(server, page, target, fields)
        assert answer.status_code == 303, answer.text
        where = answer.headers["location"]
        assert where.startswith("/console/address/a%2Fb@example.org")
        followed = await server.get(where)
        assert followed.status_code == 200, where
        assert "<h1>a/b@example.org</h1>" in followed.text
        status = await server.get("/v1/suppressions/a%2Fb%40example.org", headers=AUTH)
        assert (status.json()["email"], status.json()["suppressed"]) == (
            "a/b@example.org",
            suppressed,
        )
    as_is = await server.get("/console/address/a/b@example.org")
    assert as_is.status_code == 200
    assert "<h1>a/b@example.org</h1>" in as_is.text
    # the page's own link to the JSON explain routes as well
    link = re.search(r'href="(/v1/suppressions/[^"]+/explain)"', as_is.text)
    assert link is not None
    assert (await server.get(link.group(1), headers=AUTH)).status_code == 200


# -- through a real server (uvicorn decodes the path itself) ----------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [bounceledger_script(), "serve", "--port", str(port), "--db", tmp_path / "l.db"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(base, process, log_path)
            yield base
        finally:
            stop(process)


def test_a_real_server_finds_every_such_address(served: str) -> None:
    with httpx.Client(base_url=served, headers=AUTH, timeout=5) as http:
        for address in ADDRESSES:
            stored = normalize_recipient(address)
            encoded = quote(address, safe="")
            put = http.put(f"/v1/suppressions/{encoded}", json={"note": "by hand"})
            assert (put.status_code, put.json()["email"]) == (200, stored), put.text
            for sent in forms(address):
                for path in (
                    f"/v1/suppressions/{sent}",
                    f"/v1/suppressions/{sent}/explain",
                    f"/v1/audit/recipients/{sent}/events",
                ):
                    assert http.get(path).status_code == 200, path
                assert http.get(f"/v1/suppressions/{sent}").json()["suppressed"] is True
            released = http.request(
                "DELETE",
                f"/v1/suppressions/{forms(address)[-1]}",
                json={"note": "oops", "also": ["manual"]},
            )
            assert released.status_code == 200, released.text
            after = http.get(f"/v1/suppressions/{encoded}").json()
            assert (after["email"], after["suppressed"]) == (stored, False)


# Every link the console builds quotes the address: it leads to that address's page and
# its actions (second security review, issue 19, N7).


@pytest.mark.both_backends
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
