"""`bounceledger endpoints` on both backends: add (the secret printed once), list (never
a secret), test (a signed message the receiver verifies), pause, resume, remove; refused
without the endpoint key, for a URL other than http(s), for an unknown id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receiver import Receiver, receiving
from tests.test_cli import invoke, populate, soft_bounce

pytestmark = pytest.mark.both_backends

KEY = "endpoint-key-for-the-cli-tests-0123456789"


@pytest.fixture
def db(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path | str:
    """A ledger with one receipt."""
    found = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "e.db"
    populate(found, [("application/json", soft_bounce("carol@example.org", 1))])
    return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNCELEDGER_ENDPOINT_KEY", KEY)


def test_adding_needs_the_endpoint_key(db: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOUNCELEDGER_ENDPOINT_KEY", raising=False)
    monkeypatch.delenv("BOUNCELEDGER_ENDPOINT_KEY_FILE", raising=False)
    result = invoke("endpoints", "add", "https://example.org/hooks", "--db", db)
    assert result.exit_code == 1
    assert "BOUNCELEDGER_ENDPOINT_KEY" in result.output
    assert "BOUNCELEDGER_ENDPOINT_KEY_FILE" in result.output
    listed = invoke("endpoints", "list", "--db", db, "--json")
    assert (listed.exit_code, json.loads(listed.output)) == (0, [])


@pytest.mark.usefixtures("keyed")
def test_a_url_other_than_http_is_refused(db: Path | str) -> None:
    for url, why in (
        ("ftp://example.org/", "not ftp:"),
        ("https://user:pw@example.org/", "credentials"),
    ):
        result = invoke("endpoints", "add", url, "--db", db)
        assert (result.exit_code, why in result.output) == (1, True), result.output
    bad_from = invoke("endpoints", "add", "https://example.org/", "--from", "x", "--db", db)
    assert bad_from.exit_code == 1
    assert "from:" in bad_from.output
    assert json.loads(invoke("endpoints", "list", "--db", db, "--json").output) == []


@pytest.mark.usefixtures("keyed")
def test_add_list_test_pause_resume_remove(db: Path | str, receiver: Receiver) -> None:
    added = invoke(
        "endpoints", "add", receiver.url + "/hooks", "--description", "mirror", "--db", db,
        "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    created = json.loads(added.output)
    eid, secret = created["id"], created["secret"]
    assert (created["state"], created["description"], secret[:6]) == ("active", "mirror", "whsec_")
    text = invoke("endpoints", "add", receiver.url + "/other", "--db", db)
    assert text.exit_code == 0, text.output
    assert "secret (shown this once, never again): whsec_" in text.output

    listed = invoke("endpoints", "list", "--db", db, "--json")
    assert listed.exit_code == 0, listed.output
    assert [e["url"] for e in json.loads(listed.output)] == [
        receiver.url + "/hooks",
        receiver.url + "/other",
    ]
    table = invoke("endpoints", "list", "--db", db)
    assert eid in table.output
    assert "active" in table.output
    for shown in (listed.output, table.output):
        assert secret not in shown
        assert secret.removeprefix("whsec_") not in shown

    tested = invoke("endpoints", "test", eid, "--db", db)
    assert tested.exit_code == 0, tested.output
    assert "test message accepted (HTTP 200" in tested.output
    (got,) = receiver.all()
    body = got.verified(secret)
    assert (got.path, body["type"], body["data"]["endpoint"]) == ("/hooks", "endpoint.test", eid)
    receiver.answer = lambda path, mid, n: 500
    refused = invoke("endpoints", "test", eid, "--db", db, "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"] == "HTTP 500: no"

    paused = invoke("endpoints", "pause", eid, "--db", db)
    assert (paused.exit_code, f"{eid}: paused" in paused.output) == (0, True)
    resumed = invoke("endpoints", "resume", eid, "--db", db, "--json")
    assert json.loads(resumed.output)["state"] == "active"
    assert json.loads(resumed.output)["delivered"] == created["delivered"]  # tests move nothing

    removed = invoke("endpoints", "remove", eid, "--db", db)
    assert (removed.exit_code, removed.output.strip()) == (0, f"removed {eid}")
    again = invoke("endpoints", "remove", eid, "--db", db)
    assert again.exit_code == 1
    assert "no endpoint" in again.output
    for command in ("pause", "resume", "test"):
        missing = invoke("endpoints", command, eid, "--db", db)
        assert (missing.exit_code, "no endpoint" in missing.output) == (1, True), command
    left = json.loads(invoke("endpoints", "list", "--db", db, "--json").output)
    assert [e["url"] for e in left] == [receiver.url + "/other"]
