"""Second review, N5 and N9: no database password and no email address in any log line,
error or CLI message.

N5: a PostgreSQL URL's password — in the user information, or in the query
(`?password=`, `sslpassword`, `passfile`, `sslkey`, any credential-named parameter) — is
never printed: by `redact` (the one way a URL is shown), by the CLI's errors (`status`,
`migrate --to`), by `serve` failing to start (the real process's stderr). A URL whose
password holds an unescaped reserved character is refused before the driver reads it
(its error could quote a piece of the password).

N9: access-log lines (and refusal lines) carry the path with the address replaced by
`<email>`: real requests through the app for every route that takes an address (GET,
PUT, DELETE, explain, events, the console's address page and its forms), addresses with
`/` and `%` included; no captured record holds the address.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.console.render import address_path
from api.paths import EMAIL, loggable
from ledger.urls import HIDDEN, is_credential, redact, url_problem
from projections.recipients import normalize_recipient
from tests import pg
from tests.api.helpers import all_logs_at_debug, hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET, settle
from tests.console.helpers import post_form, sign_in
from tests.reliability.crashing import bounceledger, free_port
from tests.serving import stop, wait_healthy

PASSWORD = "S3cret-XYZ-7f3a"

# -- N5: redact ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://127.0.0.1:5432/db?user=postgres&password=Zk7qx",
            "postgresql://127.0.0.1:5432/db?user=postgres&password=***",
        ),
        (
            "postgresql://postgres:Zk7qx@127.0.0.1:5432/db?sslmode=require",
            "postgresql://postgres@127.0.0.1:5432/db?sslmode=require",
        ),
        (
            "postgresql://bl@db/x?sslpassword=Zk7qx&sslkey=/k.pem&passfile=/p&sslmode=verify-full",
            "postgresql://bl@db/x?sslpassword=***&sslkey=***&passfile=***&sslmode=verify-full",
        ),
        ("postgresql://db/x?PASSWORD=Zk7qx", "postgresql://db/x?PASSWORD=***"),
        ("postgresql://db/x?pass%77ord=Zk7qx", "postgresql://db/x?pass%77ord=***"),
        (
            "postgresql://db/x?api_token=Zk7qx&x_secret=Zk7qx",
            "postgresql://db/x?api_token=***&x_secret=***",
        ),
        (
            "postgresql://db/x?apikey=Zk7qx&ssl_key=Zk7qx",
            "postgresql://db/x?apikey=***&ssl_key=***",
        ),
        (
            "postgresql://db/x?password=Zk7qx&password=Zk7qx",
            "postgresql://db/x?password=***&password=***",
        ),
        (
            "postgresql://db/x?sslmode=require;password=Zk7qx",
            "postgresql://db/x?sslmode=require;password=***",
        ),
        ("postgresql://db/x?password=Zk7&qx", "postgresql://db/x?password=***&***"),
        ("postgresql://db/x?password=Zk7qx#frag", "postgresql://db/x?password=***"),
        ("postgresql://h1:5432,h2:5433/db?target_session_attrs=primary", None),
        ("postgresql://[::1]:5432/db", None),
        ("postgresql:///db?host=/var/run/postgresql", None),
        ("postgresql://db/x?search_path=t_1&application_name=bl", None),
        (
            "postgresql://db/x?user=me@corp&password=Zk7qx",
            "postgresql://db/x?user=me@corp&password=***",
        ),
        # unreadable: an unescaped / ? # : in a password moves it past the user information
        ("postgresql://bl:Zk7/qx@db/x", "postgresql://***"),
        ("postgresql://bl:Zk7?qx@db/x", "postgresql://***"),
        ("postgresql://bl:Zk7#qx@db/x", "postgresql://***"),
        ("postgresql://bl:12/Zk7qx@db/x", "postgresql://***"),
        ("postgresql://bl:12#Zk7qx@db", "postgresql://***"),
        ("postgresql://bl:Zk7@qx@db/x", "postgresql://bl@db/x"),
        ("postgresql://[::1/x?password=Zk7qx", "postgresql://***"),
        ("postgres:Zk7qx@db/x", "postgres:***"),
        ("data/ledger.db", None),
    ],
)
def test_redact_hides_every_credential_and_keeps_the_rest(url: str, shown: str | None) -> None:
    assert redact(url) == (url if shown is None else shown)
    assert "Zk7" not in redact(url)
    assert "qx" not in redact(url)


def test_credential_names() -> None:
    for name in ("password", "sslpassword", "passfile", "sslkey", "PassWord", "token", "secret",
                 "api_key", "pwd", " password "):  # fmt: skip
        assert is_credential(name), name
    for name in ("user", "host", "port", "dbname", "sslmode", "sslcert", "sslrootcert",
                 "application_name", "search_path", "options", "target_session_attrs"):  # fmt: skip
        assert not is_credential(name), name


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://bl:pw@db:5432/x?sslmode=require", None),
        ("postgresql://bl:p%40ss%2Fw%3Frd@db/x", None),
        ("postgresql://bl:pa/ss@db/x", "%-escaped"),
        ("postgresql://bl:p@ss@db/x", "%40"),
        ("postgresql://db/x?password=ab&cd", "needs a value"),
    ],
)
def test_urls_a_driver_would_misread_are_named(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)


CREDENTIAL_NAMES = ["password", "sslpassword", "passfile", "sslkey", "token", "client_secret",
                    "apikey", "PGPASSWORD"]  # fmt: skip
PLAIN = st.sampled_from(
    ["sslmode=require", "application_name=bl", "search_path=t_1", "target_session_attrs=any",
     "user=postgres", "connect_timeout=3"]
)  # fmt: skip


def _spell(name: str, draw: Any) -> str:
    """A parameter name as a URL may carry it: any case, some characters %-escaped."""
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)
    return "".join(f"%{ord(c):02X}" if draw(st.booleans()) else c for c in cased)


@st.composite
def urls_with_secrets(draw: Any) -> tuple[str, list[str]]:
    secrets = []
    fields = draw(st.lists(PLAIN, max_size=4))
    for _ in range(draw(st.integers(1, 3))):
        secret = "Zq9" + draw(st.text(min_size=4, max_size=24).filter(lambda t: t.strip()))
        secrets.append(secret)
        encode = draw(st.sampled_from([lambda s: quote(s, safe=""), quote_plus]))
        name = _spell(draw(st.sampled_from(CREDENTIAL_NAMES)), draw)
        fields.insert(draw(st.integers(0, len(fields))), f"{name}={encode(secret)}")
    userinfo = ""
    if draw(st.booleans()):
        secret = "Zq9" + draw(st.text(min_size=4, max_size=24))
        secrets.append(secret)
        userinfo = f"postgres:{quote(secret, safe='')}@"
    separator = draw(st.sampled_from(["&", ";"]))
    host = draw(st.sampled_from(["127.0.0.1:5432", "db.internal", "[::1]:5433", "h1,h2:6432"]))
    return f"postgresql://{userinfo}{host}/bounceledger?{separator.join(fields)}", secrets


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}


@settings(max_examples=300, deadline=None)
@given(case=urls_with_secrets())
def test_no_secret_survives_redaction_whatever_the_order_or_encoding(
    case: tuple[str, list[str]],
) -> None:
    url, secrets = case
    shown = redact(url)
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in shown, (url, shown)
    parts = urlsplit(shown)
    assert parts.path == "/bounceledger"  # the rest stays readable
    assert HIDDEN in shown


# -- N5: the CLI and `serve` print no password -----------------------------------------


def _missing_database_urls() -> list[str]:
    """URLs of a database that does not exist on the test server (or of a server that
    is not there): connecting fails, and the error names the URL."""
    server = urlsplit(pg.server_url())
    hostport = f"{server.hostname}:{server.port or 5432}"
    user = server.username or "postgres"
    return [
        f"postgresql://{hostport}/no_such_db_r2?user={user}&password={PASSWORD}",
        f"postgresql://{user}:{PASSWORD}@{hostport}/no_such_db_r2",
        f"postgresql://{user}@{hostport}/no_such_db_r2?sslpassword={PASSWORD}&password={PASSWORD}",
        f"postgresql://{hostport}/no_such_db_r2?password={quote(PASSWORD + '/&?#@')}&user={user}",
    ]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("BOUNCELEDGER_DB", None)
    return subprocess.run(
        [bounceledger(), *args], capture_output=True, text=True, timeout=60, env=environment
    )


def _no_password(text: str) -> None:
    for spelling in spellings(PASSWORD) | spellings(PASSWORD + "/&?#@"):
        assert spelling not in text, text
    assert "S3cret" not in text, text


@pytest.mark.parametrize("url", _missing_database_urls())
def test_cli_errors_never_print_the_password(url: str, tmp_path: Path) -> None:
    status = _run("status", "x@example.com", "--db", url)
    assert status.returncode == 1, status
    assert "cannot connect to postgresql://" in status.stderr, status.stderr
    _no_password(status.stdout + status.stderr)

    source = tmp_path / "source.db"
    populated = _run("suppress", "x@example.com", "--note", "seed", "--db", str(source))
    assert populated.returncode == 0, populated.stderr
    migrated = _run("migrate", "--from", str(source), "--to", url)
    assert migrated.returncode == 1, migrated
    assert "cannot connect to postgresql://" in migrated.stderr, migrated.stderr
    _no_password(migrated.stdout + migrated.stderr)

    from_env = _run("status", "x@example.com", env={"BOUNCELEDGER_DB": url})
    _no_password(from_env.stdout + from_env.stderr)


def test_the_query_password_is_shown_as_stars() -> None:
    url = _missing_database_urls()[0]
    status = _run("status", "x@example.com", "--db", url)
    assert "no_such_db_r2?user=" in status.stderr
    assert "&password=***" in status.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD[:6]}/{PASSWORD[6:]}@127.0.0.1:5432/x",
        f"postgresql://postgres:{PASSWORD[:6]}@{PASSWORD[6:]}@127.0.0.1:5432/x",
        f"postgresql://postgres:{PASSWORD[:6]}?{PASSWORD[6:]}@127.0.0.1:5432/x",
        f"postgresql://127.0.0.1:5432/x?password={PASSWORD[:6]}&{PASSWORD[6:]}",
        f"postgres:{PASSWORD}@127.0.0.1:5432/x",
    ],
)
def test_a_url_the_driver_would_misread_is_refused_without_its_password(url: str) -> None:
    status = _run("status", "x@example.com", "--db", url)
    assert status.returncode == 2, status
    assert "Invalid value for '--db'" in status.stderr
    for piece in (PASSWORD, PASSWORD[:6], PASSWORD[6:]):
        assert piece not in status.stderr, status.stderr


@pytest.mark.parametrize("url", _missing_database_urls()[:2])
def test_serve_failing_to_start_logs_no_password(url: str, tmp_path: Path) -> None:
    process = subprocess.run(
        [bounceledger(), "serve", "--port", str(free_port()), "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "BOUNCELEDGER_DB"},
    )
    assert process.returncode != 0
    assert "cannot start: cannot connect to postgresql://" in process.stderr, process.stderr
    _no_password(process.stdout + process.stderr)


# -- N9: no address in a log line ---------------------------------------------------


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
# how each travels in a URL: escaped, or as a browser or curl would leave it
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
