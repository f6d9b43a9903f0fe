"""Suppression queries over HTTP: the API-key guard, one address, the keyset-paged list,
the campaign check, OpenAPI, and how soon state is visible after a 2xx."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.settings import Settings, load_settings
from projections import Policy
from tests.api.helpers import basic, bearer, event, hard_bounce, post_webhook, status
from tests.conftest import API_KEY, AUTH, SECRET, STATUS_FIELDS, settle

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

MakeClient = Callable[..., Any]


GUARDED = [
    ("GET", "/v1/suppressions"),
    ("GET", "/v1/suppressions/nobody@example.org"),
    ("POST", "/v1/suppressions/check"),
    ("GET", "/metrics"),
    ("GET", "/schema"),
    ("GET", "/schema/openapi.json"),
]


async def call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    if method == "POST":
        return await client.post(path, json={"emails": ["nobody@example.org"]}, headers=headers)
    return await client.get(path, headers=headers)


def make_settings(db_path: Path, api_keys: str | None) -> Settings:
    # These tests walk every route with wrong keys: the failure throttle (tested in
    # tests/api/test_throttle_and_keys.py) would answer 429 before the guard's 401.
    environ = {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_AUTH_FAILURES": "0",
    }
    if api_keys is not None:
        environ["BOUNCELEDGER_API_KEYS"] = api_keys
    return load_settings(environ)


# -- the API-key guard --------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param(bearer("wrong-key"), id="wrong-key"),
        pytest.param(bearer(API_KEY.upper()), id="key-wrong-case"),
        pytest.param(bearer(API_KEY[:-1]), id="key-prefix"),
        pytest.param(bearer(f"ops:{API_KEY}"), id="name-and-key"),
        pytest.param({"Authorization": API_KEY}, id="no-scheme"),
        pytest.param(basic("ops", API_KEY), id="basic"),
        pytest.param(bearer(SECRET), id="webhook-secret"),
    ],
)
async def test_every_query_route_is_401_without_the_right_key(
    client: Any, headers: dict[str, str]
) -> None:
    for method, path in GUARDED:
        response = await call(client, method, path, headers)
        assert response.status_code == 401, (method, path)
        assert response.headers.get("www-authenticate") == "Bearer"
        if path.startswith(("/v1", "/metrics")):
            assert response.json()["status_code"] == 401
        assert API_KEY not in response.text


async def test_key_in_query_string_is_not_accepted(client: Any) -> None:
    response = await client.get("/metrics", params={"token": API_KEY, "key": API_KEY})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param(bearer("wrong-key"), id="wrong-key"),
        pytest.param(basic("ops", API_KEY), id="basic"),
    ],
)
async def test_the_probes_answer_without_a_key_and_reveal_nothing(
    client: Any, headers: dict[str, str]
) -> None:
    """A load balancer probes without a key: alive, ready — no counts, no messages."""
    await post_webhook(client, hard_bounce("a@example.org"))
    await settle(client)
    alive = await client.get("/healthz", headers=headers)
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz", headers=headers)
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    # with the key, the detail
    detailed = (await client.get("/readyz", headers=AUTH)).json()
    assert detailed["ready"] is True
    assert set(detailed["problems"]) == {
        "ledger_reachable",
        "ledger_writable",
        "projection_policy",
        "projector_caught_up",
    }
    assert (await client.get("/healthz", headers=AUTH)).json()["receipts"] == 1


@pytest.mark.parametrize("api_keys", [None, "", " , "])
async def test_never_open_by_default(
    make_client: MakeClient, db_path: Path, api_keys: str | None
) -> None:
    settings = make_settings(db_path, api_keys)
    assert settings.api_keys == ()
    async with make_client(settings=settings) as client:
        for headers in ({}, AUTH, bearer(""), bearer("key1")):
            for method, path in GUARDED:
                response = await call(client, method, path, headers)
                assert response.status_code == 401, (method, path, headers)
        # the webhook door is governed by its own secret, not by API keys
        accepted = await post_webhook(client, hard_bounce("a@example.org"))
        assert accepted.status_code == 200


async def test_named_and_plain_keys_both_work(make_client: MakeClient, db_path: Path) -> None:
    settings = make_settings(
        db_path, "ops:ops-key-1-abcdefgh, plain-key-2-abcdefgh ,app:app-key-3-abcdefgh"
    )
    assert [key.name for key in settings.api_keys] == ["ops", "key2", "app"]
    async with make_client(settings=settings) as client:
        for key in ("ops-key-1-abcdefgh", "plain-key-2-abcdefgh", "app-key-3-abcdefgh"):
            for method, path in GUARDED:
                response = await call(client, method, path, bearer(key))
                assert response.status_code in (200, 201), (key, method, path)
        for wrong in ("ops", "key2", "ops:ops-key-1-abcdefgh", "plain-key-2"):
            assert (await client.get("/metrics", headers=bearer(wrong))).status_code == 401


# -- one address --------------------------------------------------------------------


async def test_get_one_address_is_case_insensitive(client: Any) -> None:
    await post_webhook(client, hard_bounce("Nobody@Example.ORG"))
    await settle(client)
    for spelling in ("nobody@example.org", "NOBODY@EXAMPLE.ORG", "Nobody@example.Org"):
        state = await status(client, spelling)
        assert set(state) == STATUS_FIELDS
        assert state["email"] == "nobody@example.org"
        assert state["suppressed"] is True
        assert state["reason"] == "hard_bounce"
        assert state["since"] == "2026-05-04T10:15:02Z"
        assert state["receipt"] == 1
        assert state["events"] == 1
        assert state["soft_bounces"] == 0
        assert state["last_event_at"] == "2026-05-04T10:15:02Z"
        assert state["causes"] == [
            {"reason": "hard_bounce", "since": "2026-05-04T10:15:02Z", "receipt": 1,
             "newest_receipt": 1}
        ]  # fmt: skip
        assert state["newest_evidence"] == 1


async def test_unknown_address_is_not_suppressed(client: Any) -> None:
    state = await status(client, "never.seen@example.com")
    assert state == {
        "email": "never.seen@example.com",
        "suppressed": False,
        "reason": None,
        "since": None,
        "soft_bounces": 0,
        "events": 0,
        "receipt": None,
        "last_event_at": None,
        "erased": None,
        "causes": [],
        "newest_evidence": 0,
    }


async def test_state_is_visible_within_a_second_of_the_2xx(client: Any) -> None:
    response = await post_webhook(client, hard_bounce("fast@example.org"))
    assert response.status_code == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while True:
        state = await status(client, "fast@example.org")
        if state["suppressed"]:
            break
        assert loop.time() < deadline, "not suppressed within 1 s of the 2xx"
        await asyncio.sleep(0.01)
    assert state["reason"] == "hard_bounce"
    assert state["receipt"] == response.json()["seq"]


# -- the list, keyset-paged ---------------------------------------------------------


async def suppress_all(client: Any, emails: list[str]) -> None:
    for email in emails:
        assert (await post_webhook(client, hard_bounce(email))).status_code == 200
    await settle(client)


async def test_list_pages_chain_through_next(client: Any) -> None:
    emails = [f"user{n}@example.org" for n in (4, 1, 5, 3, 2)]
    await suppress_all(client, emails)
    # not suppressed: seen once with a soft bounce
    soft = json.dumps(event("bounce", "soft@example.org", "soft-1", bounce="soft")).encode()
    await post_webhook(client, soft)
    await settle(client)

    pages, after = [], None
    for _ in range(10):  # bounded: 3 pages expected
        params: dict[str, Any] = {"limit": 2}
        if after is not None:
            params["after"] = after
        response = await client.get("/v1/suppressions", params=params, headers=AUTH)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"items", "next"}
        pages.append(page)
        after = page["next"]
        if after is None:
            break
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert pages[-1]["next"] is None
    listed = [item["email"] for page in pages for item in page["items"]]
    assert listed == sorted(emails)
    for page in pages[:-1]:
        assert page["next"] == page["items"][-1]["email"]
    for item in (item for page in pages for item in page["items"]):
        assert set(item) >= {"email", "reason", "since", "receipt"}
        assert item["reason"] == "hard_bounce"

    everything = (await client.get("/v1/suppressions", headers=AUTH)).json()
    assert [item["email"] for item in everything["items"]] == sorted(emails)
    assert everything["next"] is None


async def test_empty_list(client: Any) -> None:
    response = await client.get("/v1/suppressions", headers=AUTH)
    assert response.json() == {"items": [], "next": None}


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "10001"])
async def test_list_rejects_a_bad_limit(client: Any, limit: str) -> None:
    response = await client.get("/v1/suppressions", params={"limit": limit}, headers=AUTH)
    assert response.status_code == 400


# -- the campaign check -------------------------------------------------------------


async def test_check_ten_thousand_addresses(client: Any) -> None:
    suppressed = [f"blocked{n}@example.org" for n in range(6)]
    await suppress_all(client, suppressed[:5])
    spam = json.dumps(event("spam", suppressed[5], "spam-1")).encode()
    assert (await post_webhook(client, spam)).status_code == 200
    delivered = json.dumps(event("delivered", "fine@example.org", "del-1")).encode()
    assert (await post_webhook(client, delivered)).status_code == 200
    await settle(client)

    given = {
        "blocked0@example.org": "blocked0@example.org",
        "BLOCKED1@EXAMPLE.ORG": "blocked1@example.org",
        "Blocked2@Example.org": "blocked2@example.org",
        "blocked5@example.org": "blocked5@example.org",
    }
    emails = [f"campaign{n}@example.net" for n in range(10_000 - len(given) - 1)]
    emails += ["fine@example.org", *given]
    random.Random(7).shuffle(emails)
    assert len(emails) == 10_000

    response = await client.post("/v1/suppressions/check", json={"emails": emails}, headers=AUTH)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["checked"] == 10_000
    found = {item["email"]: item for item in result["suppressed"]}
    assert len(result["suppressed"]) == len(given)
    assert set(found) == set(given)  # each spelled as given, matched case-insensitively
    assert found["blocked5@example.org"]["reason"] == "complaint"
    assert found["BLOCKED1@EXAMPLE.ORG"]["reason"] == "hard_bounce"
    for item in result["suppressed"]:
        assert set(item) >= {"email", "reason", "since", "receipt"}


async def test_check_nothing_suppressed(client: Any) -> None:
    response = await client.post(
        "/v1/suppressions/check", json={"emails": ["a@example.org", "b@example.org"]}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json() == {"checked": 2, "suppressed": []}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"emails": ["a@example.org"], "extra": 1}, id="unknown-field"),
        pytest.param({"email": ["a@example.org"]}, id="misspelt-field"),
        pytest.param({"emails": "a@example.org"}, id="string-not-list"),
        pytest.param({"emails": {"a": 1}}, id="object-not-list"),
        pytest.param({"emails": [1, 2]}, id="numbers"),
        pytest.param(["a@example.org"], id="bare-list"),
        pytest.param({}, id="empty-object"),
    ],
)
async def test_check_rejects_malformed_requests(client: Any, body: Any) -> None:
    response = await client.post("/v1/suppressions/check", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["status_code"] == 400


async def test_check_rejects_invalid_json(client: Any) -> None:
    response = await client.post(
        "/v1/suppressions/check",
        content=b'{"emails": [',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400


# -- OpenAPI ------------------------------------------------------------------------


async def test_openapi_lists_the_routes(client: Any) -> None:
    response = await client.get("/schema/openapi.json", headers=AUTH)
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    assert "post" in paths["/v1/webhooks/{provider}/events"]
    assert "get" in paths["/v1/suppressions/{email}"]
    assert "get" in paths["/v1/suppressions"]
    assert "post" in paths["/v1/suppressions/check"]
    assert "get" in paths["/healthz"]
    assert document["info"]["title"] == "bounceledger"
    page = await client.get("/schema", headers=AUTH)
    assert page.status_code == 200


async def test_healthz_counts_receipts_and_projection(client: Any) -> None:
    assert (await client.get("/healthz", headers=AUTH)).json() == {
        "status": "ok",
        "receipts": 0,
        "projected": 0,
        "projecting": True,
    }
    await post_webhook(client, hard_bounce("h@example.org"))
    health = await settle(client)
    assert health == {"status": "ok", "receipts": 1, "projected": 1, "projecting": True}


# -- a server under another policy does not serve the old state ---------------------


async def test_a_first_policy_is_put_into_effect_and_a_later_one_refused(
    make_client: MakeClient,
) -> None:
    soft = json.dumps(event("bounce", "soft@example.org", "soft-x", bounce="soft")).encode()
    async with make_client() as client:
        assert (await post_webhook(client, soft)).status_code == 200
        await settle(client)
        assert (await status(client, "soft@example.org"))["suppressed"] is False
    # no policy history yet: the configured policy is recorded and put into effect
    async with make_client(policy=Policy(soft_bounce_threshold=1)) as client:
        state = await status(client, "soft@example.org")
        assert state["suppressed"] is True
        assert state["reason"] == "soft_bounce_threshold"
    # now one instance's file cannot switch it back: that is `rebuild --note`'s job
    with pytest.raises(Exception) as refused:  # noqa: PT011 (litestar wraps it in a group)
        async with make_client() as client:
            pass
    assert "bounceledger rebuild --policy" in "".join(
        str(e) for e in getattr(refused.value, "exceptions", [refused.value])
    )
    # without a policy of its own, an instance serves the ledger's active one
    async with make_client(policy=None) as client:
        assert (await status(client, "soft@example.org"))["suppressed"] is True
