"""No email address in a log line: access-log lines (and refusal lines) carry the path
with the address replaced by `<email>` — real requests through the app for every route
that takes an address (GET, PUT, DELETE, explain, events, the console's address page and
its forms), addresses with `/` and `%` included — and no captured record holds the
address; nor does the JSON line a real `serve` writes.

Provenance: the second security review (issue 19, N9)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from api.console.render import address_path
from api.paths import EMAIL, loggable
from projections.recipients import normalize_recipient
from tests.api.helpers import all_logs_at_debug, hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.console.helpers import post_form, sign_in
from tests.reliability.crashing import bounceledger, free_port
from tests.serving import stop, wait_healthy


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/v1/suppressions", "/v1/suppressions"),
        ("/v1/suppressions/check", "/v1/suppressions/check"),
        ("/v1/suppressions/a@example.org", "/v1/suppressions/<email>"),
        ("/v1/suppressions/a/b@example.org/explain", "/v1/suppressions/<email>/explain"),
        ("/v1/suppressions/a%b@example.org", "/v1/suppressions/<email>"),
        ("/v1/audit/recipients/x@y.org/events", "/v1/audit/recipients/<email>/events"),
        ("/console/address/a/../../r@x.org/release", "/console/address/<email>/release"),
        ("/console/address", "/console/address"),
        ("/v1/webhooks/a@b.org/events", "/v1/webhooks/<email>/events"),
        ("/healthz", "/healthz"),
    ],
)
def test_loggable_paths(path: str, logged: str) -> None:
    assert loggable(path) == logged


ADDRESSES = [
    "plain.person@example.org",
    "slash/ed@example.org",
    "per%cent@example.org",
    "a/../../receipts/1/raw@example.org",
    "Mixed.Case+tag@Example.ORG",
]


SPELLINGS: dict[str, Callable[[str], str]] = {
    "escaped": lambda email: quote(email, safe=""),
    "at-kept": lambda email: quote(email, safe="@"),
}


def _leaks(records: list[logging.LogRecord], emails: list[str]) -> list[str]:
    """Records holding an address in any spelling. aiosqlite's statement log (DEBUG, with
    parameters) is left out: `serve` keeps it at INFO whatever the level (api/logs.py
    `configure`), which `test_a_real_server_logs_no_address` checks on the real output."""
    found = []
    for record in records:
        if record.name.startswith("aiosqlite"):
            continue
        text = record.getMessage() + " " + repr(record.__dict__)
        lowered = text.lower()
        for email in emails:
            local = email.split("@")[0].lower()
            for spelling in {email, quote(email, safe=""), quote(email, safe="@"), local}:
                if len(spelling) > 4 and spelling.lower() in lowered:
                    found.append(f"{record.name}: {record.getMessage()[:200]}")
    return found


async def test_api_access_lines_carry_no_address(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for n, email in enumerate(ADDRESSES):
        response = await post_webhook(client, hard_bounce(email, f"hb-{n}"))
        assert response.status_code == 200, response.text
    await settle(client)
    with all_logs_at_debug(caplog):
        for email in ADDRESSES:
            for spell in SPELLINGS.values():
                seg = spell(email)
                answers = [
                    await client.get(f"/v1/suppressions/{seg}", headers=AUTH),
                    await client.get(f"/v1/suppressions/{seg}/explain", headers=AUTH),
                    await client.get(f"/v1/audit/recipients/{seg}/events", headers=AUTH),
                    await client.put(
                        f"/v1/suppressions/{seg}", json={"note": "hold"}, headers=AUTH
                    ),
                    await client.request(
                        "DELETE",
                        f"/v1/suppressions/{seg}",
                        json={"note": "done", "also": ["all"]},
                        headers=AUTH,
                    ),
                    # refused: the refusal line names the route with <email> too
                    await client.get(
                        f"/v1/suppressions/{seg}", params={"as_of": email}, headers=AUTH
                    ),
                ]
                assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 400], (
                    email,
                    [a.text[:200] for a in answers],
                )
    access = [r for r in caplog.records if r.name == "bounceledger.access"]
    assert len(access) >= len(ADDRESSES) * len(SPELLINGS) * 6
    paths = {r.__dict__["path"] for r in access}
    assert paths >= {
        "/v1/suppressions/<email>",
        "/v1/suppressions/<email>/explain",
        "/v1/audit/recipients/<email>/events",
    }, paths
    assert any(r.getMessage() == "DELETE /v1/suppressions/<email> 200" for r in access)
    refusals = [r for r in caplog.records if r.name == "bounceledger.refusals"]
    assert refusals
    assert all("GET /v1/suppressions/<email>: refused as_of" in r.getMessage() for r in refusals)
    assert _leaks(caplog.records, ADDRESSES) == []


async def test_console_address_lines_carry_no_address(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for n, email in enumerate(ADDRESSES):
        assert (await post_webhook(client, hard_bounce(email, f"c-{n}"))).status_code == 200
    await settle(client)
    assert (await sign_in(client)).status_code == 303
    with all_logs_at_debug(caplog):
        for email in ADDRESSES:
            page = f"/console/address/{address_path(normalize_recipient(email) or email)}"
            assert (await client.get(page)).status_code == 200, email
            released = await post_form(
                client, page, f"{page}/release", {"note": "log test", "also": "all"}
            )
            assert released.status_code == 303, (email, released.text[:300])
            suppressed = await post_form(client, page, f"{page}/suppress", {"note": "again"})
            assert suppressed.status_code == 303, (email, suppressed.text[:300])
    access = [r for r in caplog.records if r.name == "bounceledger.access"]
    assert any(r.getMessage() == "POST /console/address/<email>/release 303" for r in access)
    assert any(r.getMessage() == "POST /console/address/<email>/suppress 303" for r in access)
    assert any(r.getMessage() == "GET /console/address/<email> 200" for r in access)
    assert _leaks(caplog.records, ADDRESSES) == []


def test_a_real_server_logs_no_address(tmp_path: Path) -> None:
    """The JSON line `serve` writes directly (api/logs.py AccessLog) holds `<email>`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SMTP2GO_WEBHOOK_SECRET": SECRET, "BOUNCELEDGER_API_KEYS": API_KEY}
    env.pop("BOUNCELEDGER_DB", None)
    log_path = tmp_path / "serve.log"
    command = [bounceledger(), "serve", "--port", str(port), "--db", str(tmp_path / "l.db"),
               "--log-level", "debug"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(base, process, log_path, timeout=20)
            with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
                for email in ADDRESSES:
                    for spell in SPELLINGS.values():
                        seg = spell(email)
                        assert http.get(f"/v1/suppressions/{seg}").status_code == 200
                        assert http.get(f"/v1/suppressions/{seg}/explain").status_code == 200
                        refused = http.get(f"/v1/suppressions/{seg}", params={"as_of": "x"})
                        assert refused.status_code == 400
        finally:
            stop(process)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "bounceledger.access"]
    assert sum(line["msg"] == "GET /v1/suppressions/<email> 200" for line in access) == 10
    assert sum(line["msg"] == "GET /v1/suppressions/<email>/explain 200" for line in access) == 10
    refusals = [line for line in lines if line["logger"] == "bounceledger.refusals"]
    assert len(refusals) == 10
    assert all(line["param"] == "as_of" for line in refusals)
    text = log_path.read_text().lower()
    for email in ADDRESSES:
        for spelling in (email, quote(email, safe=""), quote(email, safe="@"), email.split("@")[0]):
            assert spelling.lower() not in text, spelling
    assert EMAIL in text
