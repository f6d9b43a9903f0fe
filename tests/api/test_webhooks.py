"""The SMTP2GO door: authentication, body formats, bad input, limits, redelivery and
secret hygiene. Everything is observed over HTTP (the app runs on its own loop)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.settings import Settings, SettingsInvalid, load_settings
from ledger.sqlite import SQLiteStore
from tests.api.helpers import (
    FORM,
    WEBHOOK,
    all_logs_at_debug,
    basic,
    bearer,
    event,
    hard_bounce,
    post_webhook,
    receipts,
    status,
)
from tests.conftest import API_KEY, AUTH, SECRET, fixture_bytes, settle
from tests.stored import database_bytes

MakeClient = Callable[..., Any]


def env_settings(db_path: Path, **extra: str) -> Settings:
    environ = {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
    }
    environ.update(extra)
    return load_settings({k: v for k, v in environ.items() if v})


# -- authentication -----------------------------------------------------------------


async def test_secret_unset_means_no_endpoint(make_client: MakeClient, db_path: Path) -> None:
    settings = env_settings(db_path, SMTP2GO_WEBHOOK_SECRET="")
    assert settings.smtp2go_secret is None
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    async with make_client(settings=settings) as client:
        for headers, token in [({}, None), ({}, SECRET), (bearer(SECRET), None), ({}, "")]:
            response = await post_webhook(
                client, body, content_type=FORM, token=token, headers=headers
            )
            assert response.status_code == 404, (headers, token)
            assert response.json()["status_code"] == 404
        assert await receipts(client) == 0


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param(None, {}, id="no-credential"),
        pytest.param("", {}, id="empty-token"),
        pytest.param(None, {"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param("wrong-secret", {}, id="wrong-token"),
        pytest.param(SECRET.upper(), {}, id="token-wrong-case"),
        pytest.param(SECRET[:-1], {}, id="token-prefix"),
        pytest.param(SECRET + "x", {}, id="token-longer"),
        pytest.param(None, bearer("wrong-secret"), id="wrong-bearer"),
        pytest.param(None, basic("smtp2go", "wrong-secret"), id="wrong-basic-password"),
        pytest.param(None, basic(SECRET, ""), id="secret-as-basic-user"),
        pytest.param(None, {"Authorization": "Basic !!!not-base64"}, id="garbled-basic"),
        pytest.param(None, {"Authorization": f"Token {SECRET}"}, id="unknown-scheme"),
        pytest.param(None, {"X-Token": SECRET}, id="other-header"),
    ],
)
async def test_missing_or_wrong_secret_is_403(
    client: Any, token: str | None, headers: dict[str, str]
) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    response = await post_webhook(client, body, content_type=FORM, token=token, headers=headers)
    assert response.status_code == 403
    assert response.json()["status_code"] == 403
    assert SECRET not in response.text
    assert await receipts(client) == 0


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param(SECRET, {}, id="token-query"),
        pytest.param(None, bearer(SECRET), id="bearer"),
        pytest.param(None, {"Authorization": f"bearer {SECRET}"}, id="bearer-lowercase"),
        pytest.param(None, basic("smtp2go", SECRET), id="basic"),
        pytest.param(None, basic("anyone-at-all", SECRET), id="basic-other-user"),
        pytest.param(None, basic("", SECRET), id="basic-empty-user"),
    ],
)
async def test_right_secret_is_accepted_three_ways(
    client: Any, token: str | None, headers: dict[str, str]
) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    response = await post_webhook(client, body, content_type=FORM, token=token, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"seq": 1, "events": 1, "duplicate": False}
    assert await receipts(client) == 1


@pytest.mark.parametrize("provider", ["sendgrid", "nosuchprovider", "SMTP2GO"])
async def test_unknown_provider_is_404(client: Any, provider: str) -> None:
    response = await client.post(
        f"/v1/webhooks/{provider}/events",
        params={"token": SECRET},
        content=fixture_bytes("smtp2go", "hard_bounce.json"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 404
    assert await receipts(client) == 0


async def test_webhook_does_not_need_an_api_key_and_an_api_key_is_not_a_secret(
    client: Any,
) -> None:
    body = fixture_bytes("smtp2go", "spam.json")
    assert (await post_webhook(client, body, token=None, headers=AUTH)).status_code == 403
    assert (await post_webhook(client, body, token=SECRET)).status_code == 200


# -- formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        pytest.param("hard_bounce.form", FORM, id="form"),
        pytest.param("hard_bounce.form", f"{FORM}; charset=utf-8", id="form-charset"),
        pytest.param("hard_bounce.json", "application/json", id="json"),
        pytest.param("hard_bounce.json", "text/plain", id="json-as-text-plain"),
        pytest.param("hard_bounce.json", None, id="json-without-content-type"),
        pytest.param("hard_bounce.form", "application/json", id="form-as-json"),
        pytest.param("hard_bounce.form", None, id="form-without-content-type"),
        pytest.param("hard_bounce.json", FORM, id="json-as-form"),
    ],
)
async def test_hard_bounce_in_any_format_is_projected(
    client: Any, fixture: str, content_type: str | None
) -> None:
    response = await post_webhook(
        client, fixture_bytes("smtp2go", fixture), content_type=content_type
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"seq": 1, "events": 1, "duplicate": False}
    await settle(client)
    state = await status(client, "nobody@example.org")
    assert state["suppressed"] is True
    assert state["reason"] == "hard_bounce"
    assert state["receipt"] == 1
    assert state["events"] == 1


async def test_json_object_of_each_kind(client: Any) -> None:
    for name in ("spam.json", "soft_bounce.json", "delivered.json", "unsubscribe.json"):
        response = await post_webhook(client, fixture_bytes("smtp2go", name))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["events"] == 1
    await settle(client)
    spam = await status(client, "annoyed@example.com")
    assert (spam["suppressed"], spam["reason"]) == (True, "complaint")
    soft = await status(client, "full.box@example.net")
    assert (soft["suppressed"], soft["soft_bounces"]) == (False, 1)
    assert (await status(client, "alice@example.com"))["suppressed"] is False
    # unsubscribe is ignored by the default mapping, but it is kept and counted
    assert (await status(client, "bob@example.com"))["suppressed"] is False


async def test_json_array_of_three_events(client: Any) -> None:
    items = [
        json.loads(fixture_bytes("smtp2go", name))
        for name in ("hard_bounce.json", "spam.json", "soft_bounce.json")
    ]
    response = await post_webhook(client, json.dumps(items).encode(), content_type="text/plain")
    assert response.status_code == 200, response.text
    assert response.json() == {"seq": 1, "events": 3, "duplicate": False}
    assert await receipts(client) == 1  # one delivery, one receipt
    await settle(client)
    assert (await status(client, "nobody@example.org"))["reason"] == "hard_bounce"
    assert (await status(client, "annoyed@example.com"))["reason"] == "complaint"
    assert (await status(client, "full.box@example.net"))["soft_bounces"] == 1


async def test_soft_bounces_reach_the_threshold_over_http(client: Any) -> None:
    for n in range(3):
        body = json.dumps(event("bounce", "Full.Box@Example.net", f"soft-{n}", bounce="soft"))
        assert (await post_webhook(client, body.encode())).status_code == 200
    await settle(client)
    state = await status(client, "full.box@example.net")
    assert state["suppressed"] is True
    assert state["reason"] == "soft_bounce_threshold"
    assert state["soft_bounces"] == 3


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"", FORM, id="empty"),
        pytest.param(b"", None, id="empty-no-content-type"),
        pytest.param(b"  \r\n\t ", "application/json", id="whitespace"),
        pytest.param(b"not a form", FORM, id="not-a-form"),
        pytest.param(b"not a form", None, id="not-a-form-no-content-type"),
        pytest.param(b"[]", "application/json", id="empty-array"),
        pytest.param(b"[1,2]", "application/json", id="array-of-numbers"),
        pytest.param(b'[{"event":"bounce","rcpt":"a@b.c"}, 3]', "application/json", id="mixed"),
        pytest.param(b'{"no_event": 1}', "application/json", id="no-event"),
        pytest.param(b'{"event": ""}', "application/json", id="empty-event"),
        pytest.param(b'{"event": 5}', "application/json", id="numeric-event"),
        pytest.param(b"rcpt=a%40b.c&bounce=hard", FORM, id="form-without-event"),
        pytest.param(b'{"event": "bounce"', "application/json", id="truncated-json"),
        pytest.param(b"\xff\xfe\x80event=bounce", FORM, id="invalid-utf8-form"),
        pytest.param(b'{"event": "bounce\xff\xfe"}', "application/json", id="invalid-utf8-json"),
        pytest.param(b"null", "application/json", id="json-null"),
    ],
)
async def test_undecodable_body_is_400_and_appends_nothing(
    client: Any, body: bytes, content_type: str | None
) -> None:
    response = await post_webhook(client, body, content_type=content_type)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert set(payload) == {"status_code", "detail"}
    assert payload["status_code"] == 400
    assert isinstance(payload["detail"], str)
    assert payload["detail"]
    assert await receipts(client) == 0


async def test_a_400_does_not_disturb_the_next_delivery(client: Any) -> None:
    assert (await post_webhook(client, b"[]")).status_code == 400
    response = await post_webhook(client, fixture_bytes("smtp2go", "spam.json"))
    assert response.json() == {"seq": 1, "events": 1, "duplicate": False}


# -- limits -------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid SMTP2GO JSON event of exactly `size` bytes."""
    base = event("bounce", "pad@example.org", "padded", bounce="hard", subject="")
    empty = json.dumps(base).encode()
    base["subject"] = "x" * (size - len(empty))
    body = json.dumps(base).encode()
    assert len(body) == size
    return body


async def test_body_over_default_limit_is_413(client: Any) -> None:
    response = await post_webhook(client, padded(1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["status_code"] == 413
    assert await receipts(client) == 0
    response = await post_webhook(client, padded(1024 * 1024))
    assert response.status_code == 200, response.text
    assert await receipts(client) == 1


async def test_body_limit_is_configurable(make_client: MakeClient, db_path: Path) -> None:
    settings = env_settings(db_path, BOUNCELEDGER_MAX_BODY_BYTES="600")
    assert settings.max_body_bytes == 600
    async with make_client(settings=settings) as client:
        too_big = await post_webhook(client, padded(601))
        assert too_big.status_code == 413
        assert await receipts(client) == 0
        assert (await post_webhook(client, padded(599))).status_code == 200
        at_limit = await post_webhook(client, padded(600).replace(b"padded", b"paddee"))
        assert at_limit.status_code == 200
        # the fixture form (682 bytes) is over this limit
        form = fixture_bytes("smtp2go", "hard_bounce.form")
        assert (await post_webhook(client, form, content_type=FORM)).status_code == 413
        assert await receipts(client) == 2


@pytest.mark.parametrize("value", ["0", "-5", "1MiB", "abc"])
def test_unusable_body_limit_is_refused(value: str) -> None:
    with pytest.raises(SettingsInvalid, match="BOUNCELEDGER_MAX_BODY_BYTES"):
        load_settings({"BOUNCELEDGER_MAX_BODY_BYTES": value})


# -- redelivery ---------------------------------------------------------------------


async def test_byte_identical_redelivery_is_acknowledged_once(client: Any) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    first = await post_webhook(client, body, content_type=FORM)
    other = await post_webhook(client, fixture_bytes("smtp2go", "spam.json"))
    again = await post_webhook(client, body, content_type=FORM, token=None, headers=bearer(SECRET))
    assert first.json() == {"seq": 1, "events": 1, "duplicate": False}
    assert other.json() == {"seq": 2, "events": 1, "duplicate": False}
    assert again.status_code == 200
    assert again.json() == {"seq": 1, "events": 1, "duplicate": True}
    assert await receipts(client) == 2
    await settle(client)
    assert (await status(client, "nobody@example.org"))["events"] == 1


async def test_concurrent_deliveries_all_get_distinct_seqs(client: Any) -> None:
    bodies = [hard_bounce(f"user{n}@example.org") for n in range(40)]
    responses = await asyncio.gather(*(post_webhook(client, body) for body in bodies))
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["seq"] for r in responses) == list(range(1, 41))
    health = await settle(client)
    assert health["receipts"] == 40


# -- secret hygiene -----------------------------------------------------------------

MARKER = b"hygiene-marker-7f3a"


def forbidden_values() -> list[bytes]:
    encoded = base64.b64encode(f"smtp2go:{SECRET}".encode())
    return [SECRET.encode(), encoded, f"token={SECRET}".encode()]


def assert_secret_absent(blobs: dict[str, bytes]) -> None:
    for name, blob in blobs.items():
        for value in forbidden_values():
            assert value not in blob, f"{value!r} found in {name}"
            assert value.lower() not in blob.lower(), f"{value!r} found in {name}"


async def test_secret_is_never_stored_or_logged(
    make_client: MakeClient, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def body(n: int) -> bytes:
        return json.dumps(
            event("bounce", f"h{n}@example.org", f"hyg-{n}", bounce="hard", note=MARKER.decode())
        ).encode()

    async with make_client() as client:
        with all_logs_at_debug(caplog):
            ways: list[tuple[str | None, dict[str, str]]] = [
                (SECRET, {}),
                (None, bearer(SECRET)),
                (None, basic("smtp2go", SECRET)),
                (None, {**bearer(SECRET), "X-Forwarded-For": "198.51.100.7"}),
            ]
            for n, (token, headers) in enumerate(ways):
                response = await post_webhook(client, body(n), token=token, headers=headers)
                assert response.status_code == 200, response.text
            wrong = await post_webhook(client, body(9), token=SECRET + "-wrong")
            assert wrong.status_code == 403
            wrong = await post_webhook(client, body(9), token=None, headers=bearer(SECRET + "!"))
            assert wrong.status_code == 403
            await settle(client)
            running = database_bytes(db_path)
        # the search is real: the marker in the bodies is found where the secret is not
        assert any(MARKER in blob for blob in running.values())
        assert_secret_absent(running)

    stopped = database_bytes(db_path)
    assert any(MARKER in blob for blob in stopped.values())
    assert_secret_absent(stopped)

    webhook_lines = [r for r in caplog.records if WEBHOOK in r.getMessage()]
    assert len(webhook_lines) >= 6, "the access log lines were not captured"
    logged = [caplog.text, *(r.getMessage() for r in caplog.records)]
    logged += [repr(r.__dict__) for r in caplog.records]
    for text in logged:
        assert SECRET not in text
        assert "token=" not in text
        assert forbidden_values()[1].decode() not in text

    store = await SQLiteStore.open(db_path)
    try:
        stored = await store.read()
    finally:
        await store.close()
    assert len(stored) == 4
    for receipt in stored:
        names = {name.lower() for name in receipt.headers}
        assert "authorization" not in names
        assert "cookie" not in names
        encoded = msgspec.json.encode(receipt.headers)
        for value in forbidden_values():
            assert value not in encoded
        assert MARKER in receipt.body
    assert stored[3].headers.get("x-forwarded-for") == "198.51.100.7"


async def test_access_log_names_path_and_status_but_not_query(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with all_logs_at_debug(caplog):
        await post_webhook(client, fixture_bytes("smtp2go", "spam.json"))
    lines = [r.getMessage() for r in caplog.records if r.name == "bounceledger.access"]
    assert any(line.startswith(f"POST {WEBHOOK} 200") for line in lines), lines
    assert not any("?" in line for line in lines)


def test_secret_repr_hides_the_value() -> None:
    settings = load_settings({"SMTP2GO_WEBHOOK_SECRET": SECRET, "BOUNCELEDGER_API_KEYS": API_KEY})
    assert SECRET not in repr(settings)
    assert API_KEY not in repr(settings)
