"""The `bounceledger` command line, through click's CliRunner, plus one real `serve` process."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from api.cli import cli
from ledger import NewReceipt, open_store
from tests.conftest import API_KEY, AUTH, SECRET, STATUS_FIELDS, fixture_bytes
from tests.serving import bounceledger_script, free_port, stop, wait_healthy


def invoke(*args: str | Path) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def soft_bounce(rcpt: str, n: int) -> bytes:
    return json.dumps(
        {
            "event": "bounce",
            "bounce": "soft",
            "id": f"soft-{rcpt}-{n}",
            "email_id": f"mail-{n}",
            "time": f"2026-05-0{n + 1}T09:00:00Z",
            "rcpt": rcpt,
            "message": "452 4.2.2 Mailbox full",
        }
    ).encode()


def populate(db: Path | str, bodies: list[tuple[str, bytes]]) -> None:
    async def go() -> None:
        store = await open_store(db)
        try:
            for n, (content_type, body) in enumerate(bodies):
                await store.append(
                    NewReceipt(
                        source="smtp2go",
                        received_at=1_777_900_000_000_000 + n,
                        content_type=content_type,
                        body=body,
                        headers={"user-agent": "cli-test"},
                    )
                )
        finally:
            await store.close()

    asyncio.run(go())


@pytest.fixture
def ledger(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """A ledger with a hard bounce, a complaint, three soft bounces and a delivery (a
    SQLite file; for `both_backends` tests on PostgreSQL, a URL)."""
    db = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "cli.db"
    populate(
        db,
        [
            ("application/x-www-form-urlencoded", fixture_bytes("smtp2go", "hard_bounce.form")),
            ("application/json", fixture_bytes("smtp2go", "spam.json")),
            *(("application/json", soft_bounce("soft@example.org", n)) for n in range(3)),
            ("application/json", fixture_bytes("smtp2go", "delivered.json")),
        ],
    )
    return db


def write_policy(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- help ---------------------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    for name in cli.commands:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert "Example" in result.output
    assert f"bounceledger {name}" in result.output


@pytest.mark.parametrize("name", ["serve", "status", "suppressions", "rebuild"])
def test_issue_commands_exist(name: str) -> None:
    assert name in cli.commands
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    assert (command.help or "").strip()


# -- missing database ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("status", "a@example.org"),
        ("status", "a@example.org", "--json"),
        ("suppressions",),
        ("suppressions", "--json"),
        ("rebuild",),
        ("rebuild", "--dry-run"),
    ],
)
def test_missing_database_is_a_one_line_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "absent" / "ledger.db"
    result = invoke(*args, "--db", missing)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(missing) in lines[0]
    assert "Traceback" not in result.output
    assert not missing.exists(), "a read must not create the ledger"


# -- status and suppressions --------------------------------------------------------


@pytest.mark.both_backends
def test_status_json(ledger: Path) -> None:
    result = invoke("status", "Nobody@Example.org", "--db", ledger, "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert set(status) == STATUS_FIELDS
    assert status["email"] == "nobody@example.org"
    assert status["suppressed"] is True
    assert status["reason"] == "hard_bounce"
    assert status["since"] == "2026-05-04T10:15:02Z"
    assert status["receipt"] == 1
    assert status["events"] == 1
    assert status["soft_bounces"] == 0
    assert status["last_event_at"] == "2026-05-04T10:15:02Z"


@pytest.mark.both_backends
def test_status_json_soft_bounces_and_unknown(ledger: Path) -> None:
    soft = json.loads(invoke("status", "soft@example.org", "--db", ledger, "--json").output)
    assert soft["suppressed"] is True
    assert soft["reason"] == "soft_bounce_threshold"
    assert soft["soft_bounces"] == 3
    assert soft["receipt"] in (3, 4, 5)
    unknown = json.loads(invoke("status", "nobody@else.org", "--db", ledger, "--json").output)
    assert unknown == {
        "causes": [],
        "newest_evidence": 0,
        "email": "nobody@else.org",
        "suppressed": False,
        "reason": None,
        "since": None,
        "soft_bounces": 0,
        "events": 0,
        "receipt": None,
        "last_event_at": None,
        "erased": None,
    }


@pytest.mark.both_backends
def test_status_text(ledger: Path) -> None:
    result = invoke("status", "nobody@example.org", "--db", ledger)
    assert result.exit_code == 0
    assert "nobody@example.org" in result.output
    assert "SUPPRESSED" in result.output
    assert "hard_bounce" in result.output
    assert "2026-05-04T10:15:02Z" in result.output
    fine = invoke("status", "alice@example.com", "--db", ledger)
    assert fine.exit_code == 0
    assert "alice@example.com: not suppressed" in fine.output
    assert "SUPPRESSED" not in fine.output


@pytest.mark.both_backends
def test_db_from_environment(ledger: Path) -> None:
    result = CliRunner().invoke(
        cli, ["status", "nobody@example.org", "--json"], env={"BOUNCELEDGER_DB": str(ledger)}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["suppressed"] is True


@pytest.mark.both_backends
def test_suppressions_json(ledger: Path) -> None:
    result = invoke("suppressions", "--db", ledger, "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert isinstance(items, list)
    by_email = {item["email"]: item for item in items}
    assert list(by_email) == sorted(by_email)
    assert set(by_email) == {"nobody@example.org", "annoyed@example.com", "soft@example.org"}
    for item in items:
        assert {"email", "reason", "since"} <= set(item)
    assert by_email["nobody@example.org"]["reason"] == "hard_bounce"
    assert by_email["nobody@example.org"]["since"] == "2026-05-04T10:15:02Z"
    assert by_email["annoyed@example.com"]["reason"] == "complaint"
    assert by_email["soft@example.org"]["reason"] == "soft_bounce_threshold"


@pytest.mark.both_backends
def test_suppressions_text(ledger: Path) -> None:
    result = invoke("suppressions", "--db", ledger)
    assert result.exit_code == 0
    for email in ("nobody@example.org", "annoyed@example.com", "soft@example.org"):
        assert email in result.output
    assert "alice@example.com" not in result.output


def test_suppressions_empty_ledger(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    populate(db, [])
    result = invoke("suppressions", "--db", db, "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == []


@pytest.mark.both_backends
def test_cli_sees_receipts_appended_after_the_projection_was_built(ledger: Path) -> None:
    first = json.loads(invoke("status", "late@example.org", "--db", ledger, "--json").output)
    assert first["suppressed"] is False
    body = fixture_bytes("smtp2go", "hard_bounce.json").replace(b"nobody@", b"late@")
    body = body.replace(b"9f2c41d07a3b4e6c8d1f0a2b3c4d5e6f", b"late-event-id")
    populate(ledger, [("application/json", body)])
    status = json.loads(invoke("status", "late@example.org", "--db", ledger, "--json").output)
    assert status["suppressed"] is True
    assert status["receipt"] == 7


# -- rebuild and policies -----------------------------------------------------------


@pytest.mark.both_backends
def test_rebuild_dry_run_then_apply(ledger: Path, tmp_path: Path) -> None:
    raised = write_policy(tmp_path, "soft_bounce_threshold = 5\n")
    before = invoke("status", "soft@example.org", "--db", ledger, "--json")
    assert json.loads(before.output)["reason"] == "soft_bounce_threshold"

    dry = invoke("rebuild", "--db", ledger, "--policy", raised, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["changed"] == [
        {
            "email": "soft@example.org",
            "before": {
                "suppressed": True,
                "reason": "soft_bounce_threshold",
                "reasons": ["soft_bounce_threshold"],
            },
            "after": {"suppressed": False, "reason": None, "reasons": []},
        }
    ]
    # nothing changed: the projection is still the default policy's
    after_dry = invoke("status", "soft@example.org", "--db", ledger, "--json")
    assert after_dry.exit_code == 0, after_dry.output
    assert after_dry.output == before.output
    mismatch = invoke("status", "soft@example.org", "--db", ledger, "--policy", raised)
    assert mismatch.exit_code == 1

    unexplained = invoke("rebuild", "--db", ledger, "--policy", raised, "--json")
    assert unexplained.exit_code == 2
    assert "--note" in unexplained.output
    applied = invoke(
        "rebuild", "--db", ledger, "--policy", raised, "--note", "five from today", "--json"
    )
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["changed"] == report["changed"]
    now = json.loads(
        invoke("status", "soft@example.org", "--db", ledger, "--policy", raised, "--json").output
    )
    assert now["suppressed"] is False
    assert now["soft_bounces"] == 3
    # hard bounces and complaints are unaffected by the threshold
    listed = invoke("suppressions", "--db", ledger, "--policy", raised, "--json")
    assert {item["email"] for item in json.loads(listed.output)} == {
        "nobody@example.org",
        "annoyed@example.com",
    }

    # a second dry run under the same policy changes nobody
    again = invoke("rebuild", "--db", ledger, "--policy", raised, "--dry-run", "--json")
    assert json.loads(again.output)["changed"] == []


@pytest.mark.both_backends
def test_rebuild_text_output(ledger: Path, tmp_path: Path) -> None:
    invoke("status", "x@example.org", "--db", ledger)  # build the default projection
    raised = write_policy(tmp_path, "soft_bounce_threshold = 5\n")
    dry = invoke("rebuild", "--db", ledger, "--policy", raised, "--dry-run")
    assert dry.exit_code == 0
    assert "soft@example.org" in dry.output
    assert "nothing was written" in dry.output
    applied = invoke("rebuild", "--db", ledger, "--policy", raised, "--note", "raised")
    assert applied.exit_code == 0
    assert "soft@example.org" in applied.output
    assert "nothing was written" not in applied.output


def test_a_dry_run_names_live_suppressions_the_rebuild_no_longer_has(ledger: Path) -> None:
    """An address an older decoder stored under another spelling (`"Bob" <bob@x`, as
    before issue 12 item 6) disappears in the rebuild: the diff must say it changes."""
    assert invoke("status", "x@example.org", "--db", ledger).exit_code == 0
    with sqlite3.connect(ledger) as db:
        insert = "INSERT INTO suppressions (email, reason, since, seq) VALUES (?, ?, 1, 1)"
        db.execute(insert, ('"bob" <bob@example.org', "hard_bounce"))
        db.execute(insert, ("zz@example.org", "complaint"))
    dry = invoke("rebuild", "--db", ledger, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    gone = {"suppressed": False, "reason": None, "reasons": []}
    assert json.loads(dry.output)["changed"] == [
        {
            "email": '"bob" <bob@example.org',
            "before": {"suppressed": True, "reason": "hard_bounce", "reasons": ["hard_bounce"]},
            "after": gone,
        },
        {
            "email": "zz@example.org",
            "before": {"suppressed": True, "reason": "complaint", "reasons": ["complaint"]},
            "after": gone,
        },
    ]
    applied = invoke("rebuild", "--db", ledger, "--json")
    assert len(json.loads(applied.output)["changed"]) == 2
    status = json.loads(invoke("status", "zz@example.org", "--db", ledger, "--json").output)
    assert status["suppressed"] is False


@pytest.mark.both_backends
def test_status_under_another_policy_says_rebuild(ledger: Path, tmp_path: Path) -> None:
    assert invoke("status", "a@example.org", "--db", ledger).exit_code == 0
    other = write_policy(tmp_path, "soft_bounce_threshold = 2\n")
    for args in (("status", "a@example.org"), ("suppressions",)):
        result = invoke(*args, "--db", ledger, "--policy", other)
        assert result.exit_code == 1
        assert "rebuild" in result.output
        assert len(result.output.strip().splitlines()) == 1
    env = CliRunner().invoke(
        cli,
        ["status", "a@example.org", "--db", str(ledger)],
        env={"BOUNCELEDGER_POLICY": str(other)},
    )
    assert env.exit_code == 1
    assert "rebuild" in env.output


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("soft_bounce_treshold = 5\n", "soft_bounce_treshold"),
        ("delivery_clears_soft_bounce = false\n", "delivery_clears_soft_bounce"),
        ("[providers.smtp2goo]\nspam = 'complaint'\n", "smtp2goo"),
        ("[providers.smtp2go]\nspam = 'complain'\n", "complain"),
    ],
)
def test_policy_with_a_misspelt_key_is_refused_by_name(
    ledger: Path, tmp_path: Path, text: str, named: str
) -> None:
    bad = write_policy(tmp_path, text, name="bad.toml")
    for args in (("status", "a@example.org"), ("suppressions",), ("rebuild", "--dry-run")):
        result = invoke(*args, "--db", ledger, "--policy", bad)
        assert result.exit_code == 1, (args, result.output)
        assert named in result.output
        assert "Traceback" not in result.output


def test_missing_policy_file_is_a_one_line_error(ledger: Path, tmp_path: Path) -> None:
    result = invoke("status", "a@example.org", "--db", ledger, "--policy", tmp_path / "no.toml")
    assert result.exit_code == 1
    assert "no.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- serve --------------------------------------------------------------------------


def test_serve_real_process(tmp_path: Path) -> None:
    db = tmp_path / "served" / "ledger.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
    }
    env.pop("BOUNCELEDGER_POLICY", None)
    env.pop("BOUNCELEDGER_DB", None)
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [bounceledger_script(), "serve", "--port", str(port), "--db", db],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(base, process, log_path)
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        response = httpx.post(
            f"{base}/v1/webhooks/smtp2go/events",
            params={"token": SECRET},
            content=fixture_bytes("smtp2go", "hard_bounce.form"),
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"seq": 1, "events": 1, "duplicate": False}
        wrong = httpx.post(
            f"{base}/v1/webhooks/smtp2go/events",
            params={"token": "wrong"},
            content=fixture_bytes("smtp2go", "spam.json"),
            timeout=5,
        )
        assert wrong.status_code == 403
        deadline = time.monotonic() + 5
        while True:
            answer = httpx.get(
                f"{base}/v1/suppressions/nobody@example.org", headers=AUTH, timeout=5
            )
            if answer.status_code == 200 and answer.json()["suppressed"]:
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.02)
        assert answer.json()["reason"] == "hard_bounce"
        # a chunked body (no Content-Length) over the limit is refused too
        chunk = b"x" * 65536
        chunked = httpx.post(
            f"{base}/v1/webhooks/smtp2go/events",
            params={"token": SECRET},
            content=iter([chunk] * 17),
            timeout=5,
        )
        assert chunked.status_code == 413
        health = httpx.get(f"{base}/healthz", headers=AUTH, timeout=5).json()
        assert health["receipts"] == 1
    finally:
        stop(process)
        log.close()
    assert db.exists()
    output = log_path.read_bytes()
    assert SECRET.encode() not in output
    # the served ledger is readable by the CLI afterwards
    result = invoke("status", "nobody@example.org", "--db", db, "--json")
    assert json.loads(result.output)["suppressed"] is True


def test_serve_refuses_a_bad_policy_without_starting(tmp_path: Path) -> None:
    bad = write_policy(tmp_path, "soft_bounce_treshold = 5\n")
    result = CliRunner().invoke(
        cli,
        ["serve", "--db", str(tmp_path / "x.db"), "--policy", str(bad)],
        env={"SMTP2GO_WEBHOOK_SECRET": SECRET},
    )
    assert result.exit_code == 1
    assert "soft_bounce_treshold" in result.output


def test_serve_refuses_a_bad_body_limit(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--db", str(tmp_path / "x.db")],
        env={"BOUNCELEDGER_MAX_BODY_BYTES": "lots"},
    )
    assert result.exit_code == 1
    assert "BOUNCELEDGER_MAX_BODY_BYTES" in result.output


# -- stored text is shown, never interpreted (issue 13, item 5) --------------------------------

HOSTILE_RCPT = "[/b]@example.com"
HOSTILE_DIAGNOSTIC = (
    "550 5.1.1 \x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x07click\x1b]8;;\x07 "
    "[link=https://evil.example/]click here[/link] \x9b2J"
)


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    db = tmp_path / "hostile.db"
    body = {
        "event": "bounce",
        "bounce": "hard",
        "id": "hostile-1",
        "time": "2026-05-04T10:00:00Z",
        "rcpt": HOSTILE_RCPT,
        "message": HOSTILE_DIAGNOSTIC,
    }
    populate(db, [("application/json", json.dumps(body).encode())])
    return db


@pytest.mark.parametrize(
    "args",
    [
        ("suppressions",),
        ("status", HOSTILE_RCPT),
        ("explain", HOSTILE_RCPT),
        ("audit", "recipient", HOSTILE_RCPT),
        ("audit", "receipt", "1"),
        ("audit", "receipts"),
    ],
)
def test_stored_markup_and_control_characters_are_shown_not_interpreted(
    hostile: Path, args: tuple[str, ...]
) -> None:
    result = invoke(*args, "--db", hostile)
    assert result.exit_code == 0, result.output
    assert not any(0x00 <= ord(c) < 0x20 and c not in "\n\t" for c in result.output)
    assert not any(0x7F <= ord(c) <= 0x9F for c in result.output)
    if args[0] in ("suppressions", "status", "explain"):
        assert HOSTILE_RCPT in result.output  # the markup is text, not a closing tag
    if args[0] == "explain" or args[:2] == ("audit", "recipient"):
        flat = result.output.replace("\n", "").replace("│", "").replace(" ", "")
        assert "\\x1b[31mred" in flat  # shown as an escape, visibly
        assert "[link=https://evil.example/]clickhere[/link]" in flat


@pytest.mark.parametrize(
    "args",
    [
        ("status", "a@example.org", "--db"),
        ("import", str(Path(__file__)), "--db"),
        ("migrate", "--from", "x.db", "--to"),
    ],
)
def test_a_mistyped_postgresql_url_is_refused_not_taken_for_a_file(
    tmp_path: Path, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`postgresql:/host/db` (one slash) once became a SQLite file in a folder named
    `postgresql:` — a ledger nobody else would ever read."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*args, "postgresql:/postgres@127.0.0.1:5432/postgres")
    assert result.exit_code == 2
    assert "not a PostgreSQL URL" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_on_a_ledger_never_projected_writes_no_projection(
    ledger: Path, tmp_path: Path
) -> None:
    """It once projected the whole ledger first (finding the active policy started a
    projector), so a dry run wrote every state — and a cold rebuild took the slow path."""
    strict = write_policy(tmp_path, "soft_bounce_threshold = 2\n")
    dry = invoke("rebuild", "--db", ledger, "--policy", strict, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["receipts"] == 6
    with sqlite3.connect(ledger) as db:
        for table in ("projection_meta", "recipient_facts", "recipient_state", "suppressions"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


@pytest.mark.both_backends
def test_a_projection_folded_by_another_version_is_rebuilt_by_serve_and_by_rebuild(
    ledger: Path, tmp_path: Path
) -> None:
    """An upgrade that changes the fold changes the policy hash of the same policy: the
    stored projection cannot be caught up. `rebuild` (and `serve`, at start) once failed
    there, pinning a projector to the stored policy that refused its own hash."""
    assert invoke("status", "soft@example.org", "--db", ledger).exit_code == 0
    stale = "UPDATE projection_meta SET policy_hash = 'folded-by-an-older-version'"

    async def age() -> None:
        store = await open_store(ledger)
        try:
            async with store.writing() as tx:
                await tx.execute(stale)
        finally:
            await store.close()

    asyncio.run(age())
    refused = invoke("status", "soft@example.org", "--db", ledger)
    assert refused.exit_code == 1
    assert "rebuild" in refused.output
    rebuilt = invoke("rebuild", "--db", ledger, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    status = json.loads(invoke("status", "soft@example.org", "--db", ledger, "--json").output)
    assert (status["suppressed"], status["events"]) == (True, 3)

    asyncio.run(age())
    from litestar.testing import TestClient

    from api.app import create_app
    from api.settings import load_settings

    settings = load_settings(
        {"BOUNCELEDGER_DB": str(ledger), "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}"}
    )
    with TestClient(app=create_app(settings)) as client:
        served = client.get("/v1/suppressions/soft@example.org", headers=AUTH).json()
    assert (served["suppressed"], served["events"]) == (True, 3)


# -- erasure ------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_erase_keeps_the_address_suppressed_until_its_keyed_hash_is_released(
    ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = invoke("erase", "nobody@example.org", "--note", "DSAR 7", "--db", ledger)
    assert refused.exit_code == 1
    assert "BOUNCELEDGER_ERASURE_KEY" in refused.output
    monkeypatch.setenv("BOUNCELEDGER_ERASURE_KEY", "cli-test-erasure-key-of-32-chars!")
    erased = invoke("erase", "Nobody@Example.org", "--note", "DSAR 7", "--request", "7",
                    "--db", ledger, "--json")  # fmt: skip
    assert erased.exit_code == 0, erased.output
    report = json.loads(erased.output)
    assert (report["reasons"], report["removed"]) == (["hard_bounce"], [1])
    status = json.loads(invoke("status", "nobody@example.org", "--db", ledger, "--json").output)
    assert (status["suppressed"], status["erased"]) == (True, report["subject"])
    listed = invoke("audit", "erasures", "--db", ledger)
    assert "DSAR 7" in listed.output
    assert "nobody@" not in listed.output
    assert "erased or redacted (by receipt 7)" in invoke("verify", "--db", ledger).output

    by_address = invoke("release", "nobody@example.org", "--note", "asked", "--db", ledger)
    assert by_address.exit_code == 1
    assert f"kept suppressed as {report['subject']}: release that keyed hash" in by_address.output
    monkeypatch.delenv("BOUNCELEDGER_ERASURE_KEY")
    unkeyed = invoke("status", "nobody@example.org", "--db", ledger)
    assert unkeyed.exit_code == 1
    assert "which this instance does not hold" in unkeyed.output
    monkeypatch.setenv("BOUNCELEDGER_ERASURE_KEY", "cli-test-erasure-key-of-32-chars!")
    lifted = invoke("release", report["subject"], "--note", "asked to be mailed", "--db", ledger)
    assert lifted.exit_code == 0, lifted.output
    status = json.loads(invoke("status", "nobody@example.org", "--db", ledger, "--json").output)
    assert (status["suppressed"], status["erased"]) == (False, None)


def test_retention_dry_run_then_apply(tmp_path: Path) -> None:
    db = tmp_path / "retained.db"
    populate(db, [("application/json", fixture_bytes("smtp2go", "delivered.json"))])
    assert invoke("status", "x@example.org", "--db", db).exit_code == 0  # projects it
    policy = write_policy(tmp_path, '[retention]\ndelivered = "1d"\n')
    dry = invoke("retention", "--dry-run", "--policy", policy, "--db", db)
    assert dry.exit_code == 0, dry.output
    assert "retention: 1 bodies" in dry.output
    assert "would be removed: delivered 1" in dry.output
    done = invoke("retention", "--policy", policy, "--db", db, "--json")
    assert json.loads(done.output)["records"] == [2]
    assert "1 erased or redacted (by receipt 2)" in invoke("verify", "--db", db).output
    forever = invoke("retention", "--db", db)
    assert "keeps every body forever" in forever.output


def test_erase_again_from_a_newer_copy_after_restoring_a_backup(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCELEDGER_ERASURE_KEY", "cli-test-erasure-key-of-32-chars!")
    backup = tmp_path / "backup.jsonl"
    assert invoke("export", "--db", ledger, "--out", backup).exit_code == 0
    assert invoke("erase", "nobody@example.org", "--note", "DSAR 8", "--db", ledger).exit_code == 0
    restored = tmp_path / "restored.db"
    assert invoke("import", backup, "--db", restored).exit_code == 0
    assert invoke("erase", "--db", restored).exit_code == 2  # EMAIL or --again-from
    again = invoke("erase", "--again-from", ledger, "--db", restored)
    assert again.exit_code == 0, again.output
    assert "erased by receipt 7: 1 bodies removed" in again.output
    status = json.loads(invoke("status", "nobody@example.org", "--db", restored, "--json").output)
    assert (status["suppressed"], status["reason"]) == (True, "hard_bounce")
    assert status["erased"] is not None
    assert (
        "every one is here already"
        in invoke("erase", "--again-from", ledger, "--db", restored).output
    )
