"""Secrets and access: no secret in any database file or log line; no key, no route.

Every provider's door is opened and every way of passing its secret is used (right,
wrong, and on bodies that end up in quarantine); the API key is used and misused too.
Then every file beside the ledger (ledger.db, -wal, -shm, anything else there) and
every log record captured at DEBUG from every logger is searched for each secret, in
every spelling it travelled in (plain, URL-encoded, base64, inside Basic credentials):
zero hits. A real `bounceledger serve --log-level debug` is searched the same way.

Every non-webhook route, enumerated from the app itself, answers 401 without a valid
API key, whether BOUNCELEDGER_API_KEYS is set or not.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from litestar import Litestar

from api.settings import load_settings
from tests.api.helpers import all_logs_at_debug, basic, bearer
from tests.conftest import API_KEY, AUTH, SECRET, every_provider_environment, settle
from tests.providers.signing import (
    MAILGUN_KEY,
    MAILTURA_SECRET,
    POSTMARK_PASSWORD,
    SVIX_KEY,
    SVIX_SECRET,
    dumps,
    fixture_json,
    mailgun_body,
    mailtura_body,
    mailtura_headers,
    sendgrid_headers,
    sns_confirmation,
    sns_headers,
    sns_notification,
    svix_headers,
)
from tests.reliability.crashing import bounceledger, free_port
from tests.serving import stop
from tests.stored import stored_bodies

MARKER = "secrets-marker-5c1d"
BASIC_USERS = ("smtp2go", "", "pm", "postmark", "webhook")


def spellings(secret: str | bytes) -> set[bytes]:
    """How a secret may appear once it travelled: plain, URL-encoded, base64, in Basic."""
    raw = secret if isinstance(secret, bytes) else secret.encode()
    text = raw.decode("latin-1")
    found = {
        raw,
        quote(text).encode(),
        quote_plus(text).encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        raw.hex().encode(),
    }
    found |= {base64.b64encode(f"{user}:".encode() + raw) for user in BASIC_USERS}
    return {value for value in found if len(value) >= 8}


SECRETS: dict[str, set[bytes]] = {
    "smtp2go secret": spellings(SECRET),
    "API key": spellings(API_KEY),
    "postmark password": spellings(POSTMARK_PASSWORD),
    "mailgun signing key": spellings(MAILGUN_KEY),
    "mailtura secret": spellings(MAILTURA_SECRET),
    "resend secret": spellings(SVIX_SECRET) | spellings(SVIX_KEY),
}
SNS_TOKEN = fixture_json("ses", "subscription_confirmation.json")["Token"]


def hits(blob: bytes, secrets: dict[str, set[bytes]] = SECRETS) -> list[str]:
    lowered = blob.lower()
    return [
        f"{name} as {value[:12]!r}…"
        for name, values in secrets.items()
        for value in values
        if value in blob or value.lower() in lowered
    ]


def data_files(directory: Path) -> dict[str, bytes]:
    """Every file of the data directory: the ledger, its -wal and -shm, anything else —
    and each ledger's bodies, decompressed (body storage keeps them compressed)."""
    files = {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    for path in sorted(directory.rglob("*.db")):
        bodies = stored_bodies(path)
        files[f"{path.relative_to(directory)}: bodies, decompressed"] = b"\n".join(bodies.values())
    return files


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
        if record.exc_text:
            texts.append(record.exc_text)
    return texts


def body(rcpt: str, event_id: str, **fields: Any) -> bytes:
    event = {"event": "bounce", "bounce": "hard", "id": event_id, "rcpt": rcpt}
    return json.dumps({**event, "note": MARKER, **fields}).encode()


WEBHOOK = "/v1/webhooks/{}/events"


async def exercise_every_door(client: Any) -> dict[str, list[int]]:
    """Post through every door every way, right and wrong; returns statuses by case."""
    seen: dict[str, list[int]] = {}

    async def post(case: str, provider: str, content: bytes, **kwargs: Any) -> None:
        response = await client.post(WEBHOOK.format(provider), content=content, **kwargs)
        seen.setdefault(case, []).append(response.status_code)

    # SMTP2GO: ?token=, Bearer, Basic password (any user), behind a proxy; wrong ones
    await post("smtp2go ok", "smtp2go", body("a@x.org", "t1"), params={"token": SECRET})
    await post("smtp2go ok", "smtp2go", body("b@x.org", "t2"), headers=bearer(SECRET))
    for n, user in enumerate(BASIC_USERS):
        await post(
            "smtp2go ok", "smtp2go", body(f"c{n}@x.org", f"t3{n}"), headers=basic(user, SECRET)
        )
    forwarded = {**bearer(SECRET), "X-Forwarded-For": "198.51.100.7"}
    await post("smtp2go ok", "smtp2go", body("d@x.org", "t4"), headers=forwarded)
    both = {**basic("smtp2go", SECRET)}
    await post(
        "smtp2go ok", "smtp2go", body("e@x.org", "t5"), headers=both, params={"token": SECRET}
    )
    for near in (SECRET + "x", SECRET[:-1], SECRET.upper()):
        await post("smtp2go wrong", "smtp2go", body("w@x.org", "w"), params={"token": near})
        await post("smtp2go wrong", "smtp2go", body("w@x.org", "w"), headers=bearer(near))
        await post("smtp2go wrong", "smtp2go", body("w@x.org", "w"), headers=basic("u", near))
    await post("smtp2go wrong", "smtp2go", body("w@x.org", "w"), headers=bearer(API_KEY))
    for way in ({"params": {"token": SECRET}}, {"headers": bearer(SECRET)}):
        await post("smtp2go undecodable", "smtp2go", f"{MARKER} not an event".encode(), **way)

    # Postmark: Basic password
    record = json.dumps({**fixture_json("postmark", "hard_bounce.json"), "Tag": MARKER}).encode()
    await post("postmark ok", "postmark", record, headers=basic("postmark", POSTMARK_PASSWORD))
    await post(
        "postmark wrong", "postmark", record, headers=basic("postmark", POSTMARK_PASSWORD + "x")
    )
    await post("postmark wrong", "postmark", record, headers=bearer(POSTMARK_PASSWORD))
    await post("postmark wrong", "postmark", record, params={"token": POSTMARK_PASSWORD})
    await post("postmark undecodable", "postmark", b"[1]", headers=basic("pm", POSTMARK_PASSWORD))

    # Mailgun: the HMAC key signs the body's signature object
    data = {**fixture_json("mailgun", "hard_bounce.json")["event-data"], "note": MARKER}
    await post("mailgun ok", "mailgun", mailgun_body(data))
    await post("mailgun wrong", "mailgun", mailgun_body(data, key=MAILGUN_KEY + "x"))

    # Resend (Svix): whsec_ secret, HMAC over id.timestamp.body
    resend = json.dumps({**fixture_json("resend", "hard_bounce.json"), "note": MARKER}).encode()
    await post("resend ok", "resend", resend, headers=svix_headers(resend, "msg_secrets1"))
    await post(
        "resend wrong", "resend", resend, headers=svix_headers(resend, "msg_s2", key=b"other-key")
    )

    # Mailtura: HMAC of the body
    mailtura = mailtura_body("bounced_hard.json")
    await post("mailtura ok", "mailtura", mailtura, headers=mailtura_headers(mailtura))
    await post(
        "mailtura wrong",
        "mailtura",
        mailtura,
        headers=mailtura_headers(mailtura, secret=MAILTURA_SECRET + "x"),
    )

    # SendGrid (a public key: nothing secret on our side) and SES (certificates)
    batch = json.dumps(fixture_json("sendgrid", "batch.json")).encode()
    await post("sendgrid ok", "sendgrid", batch, headers=sendgrid_headers(batch))
    envelope = sns_notification(fixture_json("ses", "hard_bounce.json"), message_id="sec-1")
    await post("ses ok", "ses", dumps(envelope), headers=sns_headers(envelope))
    confirmation = sns_confirmation()
    await post("ses confirmation", "ses", dumps(confirmation), headers=sns_headers(confirmation))
    return seen


async def exercise_the_api(client: Any) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}

    async def call(case: str, method: str, path: str, **kwargs: Any) -> None:
        response = await client.request(method, path, **kwargs)
        seen.setdefault(case, []).append(response.status_code)

    await call("api ok", "GET", "/v1/suppressions", headers=AUTH)
    await call("api ok", "GET", "/v1/suppressions/a@x.org", headers=AUTH)
    await call("api ok", "PUT", "/v1/suppressions/op@x.org", headers=AUTH, json={"note": MARKER})
    await call("api ok", "GET", "/v1/audit/receipts", headers=AUTH, params={"limit": 5})
    await call("api ok", "GET", "/metrics", headers=AUTH)
    for wrong in (
        bearer(API_KEY + "x"),
        bearer(API_KEY.upper()),
        basic("ops", API_KEY),
        {"Authorization": API_KEY},
    ):
        await call("api refused", "GET", "/v1/suppressions", headers=wrong)
    await call("api refused", "GET", "/v1/suppressions", params={"token": API_KEY})
    await call("api refused", "PUT", "/v1/suppressions/z@x.org", headers=bearer(SECRET))
    return seen


EXPECTED = {
    "smtp2go ok": {200},
    "smtp2go wrong": {403},
    "smtp2go undecodable": {400},
    "postmark ok": {200},
    "postmark wrong": {401, 403},
    "postmark undecodable": {400},
    "mailgun ok": {200},
    "mailgun wrong": {403},
    "resend ok": {200},
    "resend wrong": {403},
    "mailtura ok": {200},
    "mailtura wrong": {403},
    "sendgrid ok": {200},
    "ses ok": {200},
    "ses confirmation": {200},
    "api ok": {200, 201},
    "api refused": {401},
}


async def test_no_secret_is_stored_or_logged(
    make_client: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(every_provider_environment(tmp_path))
    data_dir = settings.db.parent
    async with make_client(settings=settings) as client:
        with all_logs_at_debug(caplog):
            seen = await exercise_every_door(client)
            seen |= await exercise_the_api(client)
            await settle(client)
            quarantined = await client.get("/v1/quarantine", headers=AUTH)
            running = data_files(data_dir)
    stopped = data_files(data_dir)

    for case, statuses in seen.items():
        assert set(statuses) <= EXPECTED[case], (case, statuses)
    assert set(seen) == set(EXPECTED)
    assert quarantined.status_code == 200
    assert len(quarantined.json()["items"]) >= 2, quarantined.text

    # the search is real: what was posted is found where the secrets are not
    for files in (running, stopped):
        assert any(name.endswith("ledger.db") for name in files)
        assert any(MARKER.encode() in blob for blob in files.values())
        assert any(SNS_TOKEN.encode() in blob for blob in files.values())  # kept, by design
        for name, blob in files.items():
            assert hits(blob) == [], f"secret found in {name}"
    assert any(name.endswith("-wal") for name in running), sorted(running)

    texts = log_texts(caplog)
    assert any("/v1/webhooks/smtp2go/events" in text for text in texts), "no access log captured"
    assert any(record.name == "bounceledger.access" for record in caplog.records)
    for text in texts:
        assert hits(text.encode("utf-8", "backslashreplace")) == [], text[:500]


@dataclass
class Served:
    responses: list[httpx.Response]
    log: bytes
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A real `bounceledger serve --log-level debug` that took webhooks every way."""
    tmp_path = tmp_path_factory.mktemp("served")
    environment = every_provider_environment(tmp_path)
    db = Path(environment.pop("BOUNCELEDGER_DB"))
    env = {**os.environ, **environment}
    env.pop("BOUNCELEDGER_POLICY", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    command = [bounceledger(), "serve", "--port", str(port), "--db", str(db)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--log-level", "debug"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, log_path.read_text(errors="replace")[-2000:]
                try:
                    if httpx.get(f"{base}/healthz", headers=AUTH, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
            responses = _post_to_the_real_server(base)
        finally:
            stop(process)
    return Served(responses, log_path.read_bytes(), data_files(db.parent))


def _post_to_the_real_server(base: str) -> list[httpx.Response]:
    smtp2go = WEBHOOK.format("smtp2go")
    postmark = json.dumps({**fixture_json("postmark", "hard_bounce.json"), "Tag": MARKER})
    confirmation = sns_confirmation()
    with httpx.Client(base_url=base, timeout=10) as client:
        return [
            client.post(smtp2go, content=body("a@x.org", "1"), params={"token": SECRET}),
            client.post(smtp2go, content=body("b@x.org", "2"), headers=bearer(SECRET)),
            client.post(smtp2go, content=body("c@x.org", "3"), headers=basic("smtp2go", SECRET)),
            client.post(smtp2go, content=f"{MARKER} junk".encode(), params={"token": SECRET}),
            client.post(smtp2go, content=body("d@x.org", "4"), params={"token": SECRET + "x"}),
            client.post(
                WEBHOOK.format("postmark"),
                content=postmark.encode(),
                headers=basic("postmark", POSTMARK_PASSWORD),
            ),
            client.post(
                WEBHOOK.format("ses"),
                content=dumps(confirmation),
                headers=sns_headers(confirmation),
            ),
            client.get("/v1/suppressions", headers=AUTH),
            client.get("/v1/suppressions", headers=bearer(API_KEY + "x")),
            client.get("/v1/suppressions", params={"token": API_KEY}),
        ]


def test_no_secret_in_a_real_server_log_at_debug(served: Served) -> None:
    assert [response.status_code for response in served.responses] == [
        200, 200, 200, 400, 403, 200, 200, 200, 401, 401
    ]  # fmt: skip
    assert b"/v1/webhooks/smtp2go/events" in served.log, "the access log is not in the output"
    assert b'"level":"DEBUG"' in served.log, "not logging at debug"
    assert hits(served.log) == []
    assert any(MARKER.encode() in blob for blob in served.files.values())
    for name, blob in served.files.items():
        assert hits(blob) == [], f"secret found in {name}"


def test_no_body_and_no_sns_token_in_a_real_server_log_at_debug(served: Served) -> None:
    """Logs carry no bodies (they hold addresses), nor the SNS confirmation token that
    the receipt keeps — not even at --log-level debug."""
    lines = [line for line in served.log.splitlines() if MARKER.encode() in line]
    assert lines == [], lines[:3]
    lines = [line for line in served.log.splitlines() if SNS_TOKEN.encode() in line]
    assert lines == [], lines[:3]


# -- every non-webhook route needs a key ----------------------------------------------

SAMPLE = {"str": "someone@example.org", "int": "1", "path": "x"}


def non_webhook_operations(
    app: Litestar, *, probes: bool = False, console: bool = False
) -> list[tuple[str, str]]:
    """(METHOD, concrete path) for every handler of every route, webhooks, the open
    probes and the console (behind its session, tests/console) excepted — only the
    probes with `probes`, only the console with `console`."""
    operations = set()
    for route in app.routes:
        path = re.sub(r"\{\w+:(\w+)\}", lambda m: SAMPLE[m.group(1)], route.path)
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("webhook") or bool(handler.opt.get("probe")) != probes:
                continue
            if bool(handler.opt.get("console")) != console:
                continue
            operations |= {(method, path) for method in handler.http_methods}
    return sorted(operations)


@pytest.mark.parametrize("keys", [f"ops:{API_KEY}", ""], ids=["keys set", "keys unset"])
async def test_every_non_webhook_route_refuses_without_a_key(
    make_client: Callable[..., Any], tmp_path: Path, keys: str
) -> None:
    environment = {**every_provider_environment(tmp_path), "BOUNCELEDGER_API_KEYS": keys}
    client = make_client(settings=load_settings(environment))
    app = client.app
    operations = non_webhook_operations(app)
    paths = {path for _, path in operations}
    assert {"/v1/suppressions", "/metrics", "/schema/openapi.json"} <= paths
    # open on purpose, and only these two (api/health.py): a load balancer's probes
    assert non_webhook_operations(app, probes=True) == [("GET", "/healthz"), ("GET", "/readyz")]
    assert ("PUT", "/v1/suppressions/someone@example.org") in operations
    assert not any(path.startswith("/v1/webhooks/") and m == "POST" for m, path in operations)
    console = non_webhook_operations(app, console=True)
    assert len(console) >= 10
    refused: dict[str, list[tuple[str, str, int]]] = {}
    async with client:
        for method, path in operations:
            for name, headers in {
                "none": {},
                "wrong key": bearer(API_KEY + "x"),
                "key as Basic": basic("ops", API_KEY),
                "webhook secret": bearer(SECRET),
            }.items():
                kwargs: dict[str, Any] = {"headers": headers}
                if method in ("PUT", "POST", "DELETE"):
                    kwargs["json"] = {"note": "no key", "emails": ["a@example.org"]}
                response = await client.request(method, path, **kwargs)
                if response.status_code != 401:
                    refused.setdefault(name, []).append((method, path, response.status_code))
            response = await client.request(method, path, params={"token": API_KEY})
            if response.status_code != 401:
                refused.setdefault("key as ?token=", []).append(
                    (method, path, response.status_code)
                )
        # with the right key the guard lets through only when keys are configured
        metrics = await client.get("/metrics", headers=AUTH)
        assert metrics.status_code == (200 if keys else 401)
        health = (await client.get("/healthz", headers=AUTH)).json()
        if keys:
            assert health["receipts"] == 0, "a refused request appended"
        else:
            assert health == {"status": "ok"}
        # the console: without a session, its pages send you to sign in, its forms are
        # refused without a CSRF token; only the sign-in page and the stylesheet are open
        for method, path in console:
            response = await client.request(method, path, follow_redirects=False)
            if path.startswith(("/console/static", "/console/login")):
                continue
            if method == "GET":
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/console/login"), path
            else:
                assert response.status_code in (303, 403), (method, path)
            assert (
                "Set-Cookie" not in response.headers
                or "bl_console" not in response.headers["Set-Cookie"]
            )
    assert refused == {}, refused
