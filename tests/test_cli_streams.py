"""Streams on the command line, on both backends: the example policy of the README
(docs/streams.toml) put into effect by `rebuild --note`, then `status`, `suppressions`,
`suppress` and `release` with `--stream`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.helpers import event
from tests.test_cli import invoke, populate, write_policy

pytestmark = pytest.mark.both_backends

EXAMPLE = Path(__file__).parent.parent / "docs" / "streams.toml"


@pytest.fixture
def streamed(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """A ledger: a newsletter unsubscribe (alice), a promotion complaint (bob), a hard
    bounce of the newsletter (carol), put under the example policy (SMTP2GO unsubscribes
    mapped by the example, as upstream leaves them ignored)."""
    db = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "s.db"
    newsletter, promo = {"X-Stream": "newsletter"}, {"X-Stream": "promo"}
    populate(
        db,
        [
            ("application/json", json.dumps(body).encode())
            for body in (
                event("unsubscribe", "alice@example.org", "u1", **newsletter),
                event("spam", "bob@example.org", "c1", **promo),
                event("bounce", "carol@example.org", "b1", bounce="hard", **newsletter),
            )
        ],
    )
    policy = EXAMPLE  # it maps SMTP2GO's unsubscribes, which upstream leaves ignored
    dry = invoke("rebuild", "--db", db, "--policy", policy, "--dry-run")
    assert dry.exit_code == 0, dry.output
    done = invoke("rebuild", "--db", db, "--policy", policy, "--note", "streams from today")
    assert done.exit_code == 0, done.output
    again = invoke("rebuild", "--db", db, "--policy", policy, "--dry-run", "--json")
    assert json.loads(again.output)["changed"] == []  # the streams kept compare equal
    return db


def _status(db: Path, email: str, *stream: str) -> dict[str, object]:
    result = invoke("status", email, "--db", db, "--json", *stream)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_status_answers_per_stream(streamed: Path) -> None:
    def verdicts(email: str) -> dict[str, bool]:
        return {
            name: bool(_status(streamed, email, "--stream", name)["suppressed"])
            for name in ("transactional", "newsletter", "marketing")
        }

    assert verdicts("alice@example.org") == {
        "transactional": False,
        "newsletter": True,
        "marketing": False,
    }
    assert verdicts("bob@example.org") == {
        "transactional": False,
        "newsletter": False,
        "marketing": True,  # its own complaint; a complaint anywhere also stops it
    }
    assert set(verdicts("carol@example.org").values()) == {True}  # a bounce is global
    assert _status(streamed, "alice@example.org")["suppressed"] is True  # the strictest


def test_status_text_names_the_stream_and_what_does_not_block_it(streamed: Path) -> None:
    blocked = invoke("status", "alice@example.org", "--db", streamed, "--stream", "newsletter")
    assert "SUPPRESSED for stream newsletter (unsubscribe [newsletter])" in blocked.output
    free = invoke("status", "alice@example.org", "--db", streamed, "--stream", "transactional")
    assert "not suppressed for stream transactional" in free.output
    assert "not blocking this stream: unsubscribe" in free.output


def test_suppressions_lists_a_streams_blocked_addresses(streamed: Path) -> None:
    result = invoke("suppressions", "--db", streamed, "--json", "--stream", "transactional")
    assert result.exit_code == 0, result.output
    assert [row["email"] for row in json.loads(result.output)] == ["carol@example.org"]


def test_suppress_and_release_for_one_stream(streamed: Path) -> None:
    done = invoke(
        "suppress", "dan@example.org", "--stream", "newsletter", "--note", "by phone",
        "--db", streamed,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "SUPPRESSED for stream newsletter (manual [newsletter])" in done.output
    assert _status(streamed, "dan@example.org", "--stream", "transactional")["suppressed"] is False
    lifted = invoke(
        "release", "alice@example.org", "--stream", "newsletter", "--also", "unsubscribe",
        "--note", "resubscribed", "--db", streamed,
    )  # fmt: skip
    assert lifted.exit_code == 0, lifted.output
    assert _status(streamed, "alice@example.org", "--stream", "newsletter")["suppressed"] is False


def test_an_unknown_stream_is_a_one_line_error(streamed: Path) -> None:
    result = invoke("status", "alice@example.org", "--db", streamed, "--stream", "weekly")
    assert result.exit_code == 1
    assert "unknown stream 'weekly'" in result.output
    assert "marketing, newsletter, transactional" in result.output
    refused = invoke(
        "suppress", "x@example.org", "--stream", "weekly", "--note", "n", "--db", streamed
    )
    assert refused.exit_code == 1
    assert "unknown stream 'weekly'" in refused.output
    assert _status(streamed, "x@example.org")["events"] == 0  # nothing was recorded


def test_explain_names_the_rule_that_decided_each_stream(streamed: Path) -> None:
    result = invoke("explain", "bob@example.org", "--db", streamed, "--json")
    assert result.exit_code == 0, result.output
    verdicts = {v["stream"]: v for v in json.loads(result.output)["streams"]}
    assert verdicts["marketing"]["suppressed"] is True
    assert (
        "complaint (receipt 2) is in [streams.marketing] blocked_by"
        in (verdicts["marketing"]["rule"])
    )
    assert verdicts["newsletter"]["suppressed"] is False
    assert verdicts["newsletter"]["rule"] == "complaint (receipt 2) belongs to marketing only"
    assert verdicts["transactional"]["suppressed"] is False
    alice = invoke("explain", "alice@example.org", "--db", streamed, "--stream", "newsletter")
    assert "SUPPRESSED for stream newsletter" in alice.output
    assert "suppressed: unsubscribe (smtp2go) [newsletter]" in alice.output  # the event's streams
    assert "transactional: may be mailed — unsubscribe (receipt 1) belongs to newsletter only" in (
        alice.output
    )


def test_a_dry_run_names_the_streams_each_change_affects(streamed: Path, tmp_path: Path) -> None:
    """Dropping the newsletter's match makes its evidence global: alice's unsubscribe
    then blocks transactional mail and promotions too; bob's complaint, matched by promo,
    and carol's hard bounce (global either way) are unchanged. The dry run names the
    streams whose verdict changes."""
    text = EXAMPLE.read_text().replace('postmark_message_stream = ["broadcast"]', "")
    text = text.replace('smtp2go_header = { "X-Stream" = "newsletter" }', "")
    wider = write_policy(tmp_path, text, "wider.toml")
    result = invoke("rebuild", "--db", streamed, "--policy", wider, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    changed = {c["email"]: c for c in json.loads(result.output)["changed"]}
    assert set(changed) == {"alice@example.org"}
    alice = changed["alice@example.org"]
    assert (alice["before"]["reasons"], alice["after"]["reasons"]) == (
        ["unsubscribe@newsletter"],
        ["unsubscribe"],
    )
    assert alice["streams"] == ["marketing", "transactional"]
    text_out = invoke("rebuild", "--db", streamed, "--policy", wider, "--dry-run").output
    assert "unsubscribe@newsletter -> unsubscribe  (streams: marketing, transactional)" in text_out
