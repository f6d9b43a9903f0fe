"""No database password is ever shown: a PostgreSQL URL's password — in the user
information, or in the query (`?password=`, `sslpassword`, `passfile`, `sslkey`, any
credential-named parameter) — is never printed: by `redact` (the one way a URL is
shown), by the CLI's errors (`status`, `migrate --to`), by `serve` failing to start (the
real process's stderr). A URL whose password holds an unescaped reserved character is
refused before the driver reads it (its error could quote a piece of the password).

Provenance: the second security review (issue 19, N5)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.urls import HIDDEN, is_credential, redact, url_problem
from tests import pg
from tests.reliability.crashing import bounceledger, free_port

PASSWORD = "S3cret-XYZ-7f3a"

# -- redact ---------------------------------------------------------------------


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


# -- the CLI and `serve` print no password --------------------------------------


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
