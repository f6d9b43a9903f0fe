"""`bounceledger changes` on both backends: a rebuild's markers around exactly its dry
run's changes, with the policy change's record and note; an erasure that leaves only the
keyed hash in the feed; pages by cursor; text for people, JSON lines for programs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import invoke, populate, soft_bounce, write_policy

pytestmark = pytest.mark.both_backends

CAROL = "carol@example.org"


@pytest.fixture
def db(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path | str:
    """Two soft bounces of carol's (suppressed at a threshold of 2, not at 3), and one
    hard bounce of dan's."""
    found = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "c.db"
    hard = {"event": "bounce", "bounce": "hard", "id": "h1", "rcpt": "dan@example.org"}
    populate(
        found,
        [
            ("application/json", soft_bounce(CAROL, 1)),
            ("application/json", soft_bounce(CAROL, 2)),
            ("application/json", json.dumps(hard).encode()),
        ],
    )
    return found


def lines(db: Path | str, *args: str) -> list[dict[str, Any]]:
    result = invoke("changes", "--db", db, "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_a_rebuild_writes_its_markers_around_its_dry_run(db: Path | str, tmp_path: Path) -> None:
    strict = write_policy(tmp_path, "soft_bounce_threshold = 2\n")
    before = lines(db, "--after", "0")
    assert [(e["email"], e["after"]["reason"]) for e in before] == [
        ("dan@example.org", "hard_bounce")
    ]
    dry = invoke("rebuild", "--db", db, "--policy", strict, "--dry-run", "--json")
    planned = [change["email"] for change in json.loads(dry.output)["changed"]]
    assert planned == [CAROL]
    done = invoke("rebuild", "--db", db, "--policy", strict, "--note", "two soft bounces do")
    assert done.exit_code == 0, done.output
    entries = lines(db, "--after", before[-1]["cursor"])
    assert [e["type"] for e in entries] == [
        "rebuild.started",
        "suppression.changed",
        "rebuild.completed",
    ]
    started, changed, completed = entries
    assert started["note"] == "two soft bounces do"
    assert started["record"] == 4
    assert started["previous_policy_hash"] != started["policy_hash"]
    assert (changed["email"], changed["cause"], changed["rebuild_id"]) == (
        CAROL,
        "rebuild",
        started["rebuild_id"],
    )
    assert changed["after"]["reason"] == "soft_bounce_threshold"
    assert (completed["changed"], completed["suppressed"]) == (1, 2)
    # a rebuild under the same rules changes nothing: its markers only
    invoke("rebuild", "--db", db, "--policy", strict, "--note", "again")
    again = lines(db, "--after", completed["cursor"])
    assert [e["type"] for e in again] == ["rebuild.started", "rebuild.completed"]
    assert again[1]["changed"] == 0


def test_an_erased_address_is_left_in_the_feed_by_its_keyed_hash(
    db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCELEDGER_ERASURE_KEY", "k" * 40)
    first = lines(db, "--after", "0")
    assert [e["email"] for e in first] == ["dan@example.org"]
    erased = invoke("erase", "dan@example.org", "--db", db, "--note", "DSAR 7")
    assert erased.exit_code == 0, erased.output
    entries = lines(db, "--after", "0")
    assert "dan@example.org" not in json.dumps(entries)
    old, erasure = entries
    assert old["email"] is None
    assert old["subject"].startswith("hmac-sha256:")
    assert (erasure["cause"], erasure["action"]) == ("erasure", "erase")
    assert erasure["subject"] == old["subject"]
    assert erasure["erases"] == [old["id"]]
    assert erasure["after"]["suppressed"] is True
    text = invoke("changes", "--db", db, "--after", "0")
    assert "(erased) hmac-sha256:" in text.output


def test_pages_by_cursor_in_text_and_json(db: Path | str) -> None:
    everything = lines(db, "--after", "0")
    assert len(everything) == 1
    text = invoke("changes", "--db", db, "--after", "0")
    assert text.exit_code == 0
    assert "dan@example.org: not suppressed → hard_bounce  (event, receipt 3)" in text.output
    assert f"next cursor: {everything[0]['cursor']}" in text.output
    assert lines(db, "--after", everything[0]["cursor"]) == []
    assert lines(db, "--after", "0", "--limit", "1") == everything
    refused = invoke("changes", "--db", db, "--after", "bogus")
    assert refused.exit_code == 1
    assert "not a cursor" in refused.output
    expired = invoke("changes", "--db", db, "--after", "feedf00d-1")
    assert expired.exit_code == 1
    assert "another feed" in expired.output


def test_a_second_erasure_names_what_came_after_the_first(
    db: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyed hash was suppressed already: the second erasure changes no verdict, and
    still writes its entry naming the entry the address had got since (found by the
    property test: a mirror kept the address)."""
    monkeypatch.setenv("BOUNCELEDGER_ERASURE_KEY", "k" * 40)
    assert invoke("erase", "dan@example.org", "--db", db, "--note", "DSAR 7").exit_code == 0
    again = {"event": "bounce", "bounce": "hard", "id": "h2", "rcpt": "dan@example.org"}
    populate(db, [("application/json", json.dumps(again).encode())])
    came_back = lines(db, "--after", "0")[-1]
    assert came_back["email"] == "dan@example.org"  # a new webhook: the plain address again
    assert invoke("erase", "dan@example.org", "--db", db, "--note", "DSAR 8").exit_code == 0
    last = lines(db, "--after", came_back["cursor"])
    assert [(e["cause"], e["erases"]) for e in last] == [("erasure", [came_back["id"]])]
    assert last[0]["before"] == last[0]["after"]
    assert "dan@example.org" not in json.dumps(lines(db, "--after", "0"))


@pytest.mark.sqlite_only
def test_a_rebuild_of_a_projection_listing_one_reason_only(db: Path, tmp_path: Path) -> None:
    """A projection folded before the suppressions table listed every reason (no `reasons`
    column): its rebuild compares on the strongest reason, and writes its entries."""
    assert lines(db, "--after", "0")  # folded now
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE suppressions DROP COLUMN reasons")
    strict = write_policy(tmp_path, "soft_bounce_threshold = 2\n")
    done = invoke("rebuild", "--db", db, "--policy", strict, "--note", "two soft bounces do")
    assert done.exit_code == 0, done.output
    changed = [e for e in lines(db, "--after", "0") if e["type"] == "suppression.changed"]
    assert [(e["email"], e["cause"]) for e in changed] == [
        ("dan@example.org", "event"),
        (CAROL, "rebuild"),
    ]
