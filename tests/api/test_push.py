"""Outbound webhooks over HTTP, on both backends: every entry of the change feed reaches
an endpoint in order, signed so that a Standard Webhooks receiver verifies it, through
failures, retries and a restart of the service; a 410 disables the endpoint; an
exhausted schedule leaves it failing until resumed; the secret is shown once and never
again, nor logged, nor stored."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.push.endpoints import Schedule
from api.settings import Settings, load_settings
from ledger import open_store
from tests.api.helpers import all_logs_at_debug, hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.receiver import Received, Receiver, receiving
from tests.test_cli import invoke

pytestmark = pytest.mark.both_backends

ENDPOINT_KEY = "endpoint-key-for-the-push-tests-0123456789"
QUICK = (0.05,) * 7  # the retries' waits, in seconds: the whole schedule in well under 1 s


def push_settings(
    db_path: Path | str, retries: tuple[float, ...] = QUICK, *, key: bool = True
) -> Settings:
    environ = {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
    }
    if key:
        environ["BOUNCELEDGER_ENDPOINT_KEY"] = ENDPOINT_KEY
    return msgspec.structs.replace(load_settings(environ), push_schedule=Schedule(retries))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


async def add(client: Any, url: str, **more: Any) -> dict[str, Any]:
    answer = await client.post("/v1/endpoints", json={"url": url, **more}, headers=AUTH)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def shown(client: Any, eid: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/endpoints/{eid}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def until(
    client: Any, eid: str, done: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    """The endpoint as GET shows it, once `done` holds of it."""
    deadline = time.monotonic() + timeout
    while not done(found := await shown(client, eid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint not there within {timeout} s: {found}")
        await asyncio.sleep(0.05)
    return found


async def bounce(client: Any, *emails: str) -> None:
    """A hard bounce of each address (each a verdict change: one feed entry), folded."""
    for email in emails:
        answer = await post_webhook(client, hard_bounce(email))
        assert answer.status_code == 200, answer.text
    await settle(client)


async def scraped(client: Any, line: str, timeout: float = 5.0) -> str:
    """/metrics, once it shows `line` (a count is noted just after the row it counts)."""
    deadline = time.monotonic() + timeout
    while line not in (text := str((await client.get("/metrics", headers=AUTH)).text)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{line} not in /metrics within {timeout} s:\n{text}")
        await asyncio.sleep(0.05)
    return text


def ids(received: list[Received]) -> list[str]:
    return [r.id for r in received]


def numbered(start: int, count: int) -> list[str]:
    return [f"chg_{n}" for n in range(start + 1, start + count + 1)]


async def test_every_entry_arrives_in_order_and_verifies_through_failures(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first(3)
    emails = [f"user{n}@example.org" for n in range(4)]
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url + "/hooks", description="mirror")
        assert (created["state"], created["lag"], created["url"]) == (
            "active",
            0,
            receiver.url + "/hooks",
        )
        await bounce(client, *emails)
        expected = numbered(created["delivered"], 4)
        await receiver.wait(lambda: ids(receiver.accepted()) == expected)
        done = await until(client, created["id"], lambda e: e["lag"] == 0)
    requests = receiver.all()
    # the first entry failed three times, retried under the same webhook-id
    assert ids(requests) == [expected[0]] * 4 + expected[1:]
    assert [r.status for r in requests] == [500, 500, 500, 200, 200, 200, 200]
    bodies = [r.verified(created["secret"]) for r in requests]
    assert [b["type"] for b in bodies] == ["suppression.changed"] * 7
    assert [b["data"]["id"] for b in bodies] == ids(requests)
    assert [b["data"]["email"] for b in bodies[3:]] == emails
    assert all(b["timestamp"] == b["data"]["at"] for b in bodies)
    assert {r.headers["content-type"] for r in requests} == {"application/json"}
    assert (done["state"], done["attempts"], done["failing_since"], done["last_status"]) == (
        "active",
        0,
        None,
        200,
    )
    assert done["delivered"] == created["delivered"] + 4
    assert done["cursor"].endswith(f"-{done['delivered']}")


async def test_a_restart_of_the_service_loses_no_entry(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    settings = push_settings(db_path, (0.2,) * 100)  # retries on and on: never failing
    first: list[str] = []
    # the first two entries are taken, the rest refused until the restart
    receiver.answer = lambda path, mid, n: 200 if mid in first[:2] else 500
    async with make_client(settings=settings) as client:
        created = await add(client, receiver.url)
        first[:] = numbered(created["delivered"], 5)
        await bounce(client, "a@example.org", "b@example.org", "c@example.org")
        await until(client, created["id"], lambda e: e["delivered"] == created["delivered"] + 2)
        await receiver.wait(lambda: any(r.status == 500 for r in receiver.all()))
    receiver.answer = lambda path, mid, n: 200
    async with make_client(settings=settings) as client:
        await bounce(client, "d@example.org", "e@example.org")
        await receiver.wait(lambda: ids(receiver.accepted()) == first)
        done = await until(client, created["id"], lambda e: e["lag"] == 0)
    assert done["delivered"] == created["delivered"] + 5
    assert all(r.verified(created["secret"]) for r in receiver.accepted())


async def test_an_endpoint_that_answers_410_is_disabled(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    receiver.answer = lambda path, mid, n: 410
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url)
        await bounce(client, "a@example.org", "b@example.org")
        disabled = await until(client, created["id"], lambda e: e["state"] == "disabled")
        assert (disabled["last_status"], disabled["lag"]) == (410, 2)
        await asyncio.sleep(0.7)  # more than a poll: nothing more is sent
        assert [r.status for r in receiver.all()] == [410]
        metrics = await scraped(
            client, 'bounceledger_push_deliveries_total{outcome="disabled"} 1.0'
        )
        assert f'bounceledger_endpoint_failing{{endpoint="{created["id"]}"}} 1.0' in metrics
        assert f'bounceledger_endpoint_lag_entries{{endpoint="{created["id"]}"}} 2.0' in metrics
        receiver.answer = lambda path, mid, n: 200
        resumed = await client.post(f"/v1/endpoints/{created['id']}/resume", headers=AUTH)
        assert resumed.json()["state"] == "active"
        await until(client, created["id"], lambda e: e["lag"] == 0)
        metrics = await scraped(
            client, 'bounceledger_push_deliveries_total{outcome="delivered"} 2.0'
        )
        assert f'bounceledger_endpoint_failing{{endpoint="{created["id"]}"}} 0.0' in metrics
    assert ids(receiver.accepted()) == numbered(created["delivered"], 2)


async def test_an_exhausted_schedule_leaves_the_endpoint_failing_until_resumed(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    receiver.answer = lambda path, mid, n: 503
    async with make_client(settings=push_settings(db_path, (0.05, 0.05))) as client:
        created = await add(client, receiver.url)
        await bounce(client, "a@example.org", "b@example.org")
        failing = await until(client, created["id"], lambda e: e["state"] == "failing")
        first = numbered(created["delivered"], 1)[0]
        assert ids(receiver.all()) == [first] * 3  # the first attempt and two retries
        assert (failing["attempts"], failing["last_status"], failing["lag"]) == (3, 503, 2)
        assert failing["failing_since"] is not None
        assert failing["last_error"] == "HTTP 503: no"
        listed = (await client.get("/v1/endpoints", headers=AUTH)).json()
        assert [(e["id"], e["state"]) for e in listed] == [(created["id"], "failing")]
        # the command line shows it as well, from the same database
        table = await asyncio.to_thread(invoke, "endpoints", "list", "--db", db_path)
        assert table.exit_code == 0, table.output
        assert created["id"] in table.output
        assert "failing" in table.output
        as_json = await asyncio.to_thread(invoke, "endpoints", "list", "--db", db_path, "--json")
        assert msgspec.json.decode(as_json.output)[0]["state"] == "failing"
        await asyncio.sleep(0.5)
        assert len(receiver.all()) == 3  # nothing more until resumed
        receiver.answer = lambda path, mid, n: 200
        resumed = await client.post(f"/v1/endpoints/{created['id']}/resume", headers=AUTH)
        assert resumed.status_code == 200, resumed.text
        done = await until(client, created["id"], lambda e: e["lag"] == 0)
    assert ids(receiver.accepted()) == numbered(created["delivered"], 2)
    assert (done["state"], done["attempts"], done["failing_since"]) == ("active", 0, None)


async def test_a_paused_endpoint_gets_nothing_until_resumed(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url)
        paused = await client.post(f"/v1/endpoints/{created['id']}/pause", headers=AUTH)
        assert paused.json()["state"] == "paused"
        await bounce(client, "a@example.org")
        await asyncio.sleep(0.7)
        assert receiver.all() == []
        await client.post(f"/v1/endpoints/{created['id']}/resume", headers=AUTH)
        await receiver.wait(lambda: len(receiver.accepted()) == 1)


async def test_urls_other_than_http_and_https_are_refused(make_client: Any, db_path: Path) -> None:
    refused = {
        "ftp://example.org/hooks": "not ftp:",
        "javascript:alert(1)": "not javascript:",
        "file:///etc/passwd": "not file:",
        "example.org/hooks": "not no scheme",
        "http://": "no host",
        "https://user:hunter2-password@example.org/": "credentials",
        "https://example.org/a b": "spaces",
        "https://example.org/#frag": "fragment",
        "https://example.org:99999/": "port",
    }
    async with make_client(settings=push_settings(db_path)) as client:
        for url, why in refused.items():
            answer = await client.post("/v1/endpoints", json={"url": url}, headers=AUTH)
            assert answer.status_code == 400, (url, answer.text)
            assert why in answer.json()["detail"], (url, answer.text)
            assert "hunter2" not in answer.text
        bad_from = await client.post(
            "/v1/endpoints", json={"url": "https://example.org/", "from": "nope"}, headers=AUTH
        )
        assert (bad_from.status_code, "from:" in bad_from.text) == (400, True)
        unknown = await client.post(
            "/v1/endpoints", json={"url": "https://example.org/", "secret": "x"}, headers=AUTH
        )
        assert unknown.status_code == 400
        assert (await client.get("/v1/endpoints", headers=AUTH)).json() == []


async def test_adding_an_endpoint_needs_the_endpoint_key(make_client: Any, db_path: Path) -> None:
    async with make_client(settings=push_settings(db_path, key=False)) as client:
        answer = await client.post(
            "/v1/endpoints", json={"url": "https://example.org/"}, headers=AUTH
        )
        assert answer.status_code == 409
        detail = answer.json()["detail"]
        assert "BOUNCELEDGER_ENDPOINT_KEY" in detail
        assert "BOUNCELEDGER_ENDPOINT_KEY_FILE" in detail
        assert (await client.get("/v1/endpoints", headers=AUTH)).json() == []
        assert (await client.get("/v1/endpoints")).status_code == 401  # the API key, as ever


async def test_without_the_key_nothing_is_delivered_and_the_log_says_why(
    make_client: Any, db_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url)
    caplog.set_level("WARNING", logger="bounceledger.push")
    async with make_client(settings=push_settings(db_path, key=False)) as client:
        await bounce(client, "a@example.org")
        await asyncio.sleep(0.7)  # more than a poll
        assert receiver.all() == []
        assert (await shown(client, created["id"]))["lag"] == 1
        tested = await client.post(f"/v1/endpoints/{created['id']}/test", headers=AUTH)
        assert tested.status_code == 409
    assert "1 outbound webhook endpoints, and nothing is delivered" in caplog.text
    assert "BOUNCELEDGER_ENDPOINT_KEY" in caplog.text


async def test_the_secret_is_shown_once_and_never_again_logged_or_stored(
    make_client: Any,
    db_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.fail_first(1)
    receiver.refusal = b"echoed: a body"  # a receiver's words may repeat what it was sent
    url = receiver.url + "/hooks?token=url-token-kept-out-of-logs"
    async with make_client(settings=push_settings(db_path)) as client:
        with all_logs_at_debug(caplog):
            created = await add(client, url)
            await bounce(client, "a@example.org")
            await receiver.wait(lambda: len(receiver.accepted()) == 1)
            await until(client, created["id"], lambda e: e["lag"] == 0)
            listed = (await client.get("/v1/endpoints", headers=AUTH)).text
            one = (await client.get(f"/v1/endpoints/{created['id']}", headers=AUTH)).text
            metrics = (await client.get("/metrics", headers=AUTH)).text
            tested = (await client.post(f"/v1/endpoints/{created['id']}/test", headers=AUTH)).text
    secret = created["secret"]
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    assert secret.startswith("whsec_")
    assert len(raw) == 32
    forms = [secret, secret.removeprefix("whsec_"), raw.hex()]
    assert created["id"] in listed
    assert created["id"] in one
    for text in (listed, one, metrics, tested, caplog.text):
        assert not any(form in text for form in forms)
    assert "secret" not in msgspec.json.decode(one)
    # the failed attempt was logged, by endpoint id and status alone
    assert f"endpoint {created['id']}: chg_1 not delivered (HTTP 500)" in caplog.text
    assert "url-token-kept-out-of-logs" not in caplog.text
    assert "echoed" not in caplog.text
    store = await open_store(db_path)
    try:
        async with store.reading() as tx:
            rows = await tx.fetch("SELECT * FROM feed_endpoints")
    finally:
        await store.close()
    stored = repr(rows)
    assert created["id"] in stored
    assert not any(form in stored for form in forms)


async def test_a_test_message_is_signed_and_moves_nothing(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    async with make_client(settings=push_settings(db_path)) as client:
        created = await add(client, receiver.url, **{"from": "0"})
        eid = created["id"]
        answer = await client.post(f"/v1/endpoints/{eid}/test", headers=AUTH)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["ok"], result["status"], result["error"]) == (True, 200, None)
        (got,) = receiver.all()
        body = got.verified(created["secret"])
        assert (body["type"], body["data"]["endpoint"]) == ("endpoint.test", eid)
        assert got.id == result["message_id"]
        after = await shown(client, eid)
        assert (after["delivered"], after["last_status"]) == (0, None)
        receiver.answer = lambda path, mid, n: 500
        failed = (await client.post(f"/v1/endpoints/{eid}/test", headers=AUTH)).json()
        assert (failed["ok"], failed["status"], failed["error"]) == (False, 500, "HTTP 500: no")
        for method, path in (
            ("GET", "/v1/endpoints/ep_000000000000"),
            ("DELETE", "/v1/endpoints/ep_000000000000"),
            ("POST", "/v1/endpoints/ep_000000000000/pause"),
            ("POST", "/v1/endpoints/ep_000000000000/resume"),
            ("POST", "/v1/endpoints/ep_000000000000/test"),
        ):
            missing = await client.request(method, path, headers=AUTH)
            assert missing.status_code == 404, (method, path, missing.text)
        assert (await client.delete(f"/v1/endpoints/{eid}", headers=AUTH)).status_code == 204
        assert (await client.get(f"/v1/endpoints/{eid}", headers=AUTH)).status_code == 404
        assert (await client.get("/v1/endpoints", headers=AUTH)).json() == []


async def test_an_endpoint_may_start_from_the_beginning(
    make_client: Any, db_path: Path, receiver: Receiver
) -> None:
    async with make_client(settings=push_settings(db_path)) as client:
        await bounce(client, "a@example.org", "b@example.org")
        later = await add(client, receiver.url + "/now")
        assert (later["delivered"], later["lag"]) == (2, 0)
        everything = await add(client, receiver.url + "/all", **{"from": "0"})
        assert (everything["delivered"], everything["lag"]) == (0, 2)
        await receiver.wait(lambda: len(receiver.accepted("/all")) == 2)
        await bounce(client, "c@example.org")
        await receiver.wait(lambda: len(receiver.accepted("/all")) == 3)
        await receiver.wait(lambda: len(receiver.accepted("/now")) == 1)
    assert ids(receiver.accepted("/all")) == numbered(0, 3)
    assert ids(receiver.accepted("/now")) == ["chg_3"]
