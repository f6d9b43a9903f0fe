"""Operator actions: receipts of source `operator` with who and why, kept by any rebuild."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from projections import KNOWN_SOURCES, load_policy
from projections.recipients import format_time, to_micros
from tests.audit.helpers import (
    FORM,
    LOCAL_USER,
    WEBHOOK,
    append_sync,
    as_json,
    cli,
    get_json,
    invoke,
    ok_json,
    post,
    receipt,
    receipt_count,
    rows,
    smtp2go_event,
    write_policy,
)
from tests.conftest import AUTH, SECRET, fixture_bytes, settle

NOBODY = "nobody@example.org"  # hard-bounced by the fixture at 2026-05-04T10:15:02Z
BOB = "bob@example.com"
HARD = fixture_bytes("smtp2go", "hard_bounce.form")
# A retry of an old bounce arriving late: its event time is before any operator action.
LATE_OLD_HARD = as_json(
    smtp2go_event("bounce", NOBODY, "2026-05-05T08:00:00Z", "old-retry", bounce="hard")
)
# A bounce from the future of every operator action the tests take.
NEW_HARD = as_json(
    smtp2go_event("bounce", NOBODY, "2030-01-01T00:00:00Z", "new-hard", bounce="hard")
)
SOFT_FOR_BOB = as_json(smtp2go_event("bounce", BOB, "2026-05-04T11:00:00Z", "bob-s", bounce="soft"))
THRESHOLD_ONE = "soft_bounce_threshold = 1\n"


async def receipts(client: Any) -> int:
    return int((await get_json(client, "/healthz"))["receipts"])


async def operator_bodies(client: Any) -> list[dict[str, Any]]:
    page = await get_json(client, "/v1/audit/receipts", source="operator")
    bodies = []
    for item in page["items"]:
        shown = await get_json(client, f"/v1/audit/receipts/{item['seq']}")
        assert shown["source"] == "operator"
        bodies.append({"seq": item["seq"], **json.loads(shown["body_text"])})
    return bodies


async def test_http_put_suppresses_by_hand_with_who_and_why(client: Any) -> None:
    response = await client.put(
        f"/v1/suppressions/{BOB.upper()}",
        json={"note": "asked by phone, ticket 4711"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    status = response.json()
    assert (status["email"], status["suppressed"], status["reason"]) == (BOB, True, "manual")
    assert status["receipt"] == 1
    (body,) = await operator_bodies(client)
    assert body["seq"] == 1
    assert body["action"] == "suppress"
    assert body["email"] == BOB
    assert body["actor"] == "ops"  # the API key's name, never the key
    assert body["note"] == "asked by phone, ticket 4711"
    shown = await get_json(client, "/v1/audit/receipts/1")
    assert "test-api-key" not in json.dumps(shown)

    (entry,) = await get_json(client, f"/v1/audit/recipients/{BOB}/events")
    assert (entry["source"], entry["kind"], entry["raw_kind"]) == (
        "operator",
        "operator_suppress",
        "suppress",
    )
    assert (entry["actor"], entry["note"], entry["ignored"]) == (
        "ops",
        "asked by phone, ticket 4711",
        False,
    )
    listed = await get_json(client, "/v1/suppressions")
    assert [(i["email"], i["reason"], i["receipt"]) for i in listed["items"]] == [
        (BOB, "manual", 1)
    ]


async def test_http_refuses_an_action_without_a_note_and_appends_nothing(client: Any) -> None:
    await post(client, HARD, FORM)
    await settle(client)
    refusals: list[dict[str, Any]] = [
        {"json": {"note": ""}},
        {"json": {"note": "   \t"}},
        {"json": {}},
        {"json": {"reason": "forgot the field name"}},
        {"content": b"not json", "headers": {"content-type": "application/json"}},
        {},
    ]
    for method in ("PUT", "DELETE"):
        for refusal in refusals:
            extra = dict(refusal)
            headers = {**AUTH, **extra.pop("headers", {})}
            response = await client.request(
                method, f"/v1/suppressions/{NOBODY}", headers=headers, **extra
            )
            assert response.status_code == 400, (method, extra, response.text)
    assert await receipts(client) == 1
    assert (await get_json(client, f"/v1/suppressions/{NOBODY}"))["reason"] == "hard_bounce"
    # an address that is only spaces is refused too
    response = await client.put("/v1/suppressions/%20%20", json={"note": "x"}, headers=AUTH)
    assert response.status_code == 400
    assert await receipts(client) == 1
    # and without an API key nobody acts at all
    response = await client.put(f"/v1/suppressions/{BOB}", json={"note": "sneaky"})
    assert response.status_code == 401
    assert await receipts(client) == 1


async def test_http_release_lifts_a_hard_bounce_until_a_later_one(client: Any) -> None:
    await post(client, HARD, FORM)
    await settle(client)
    response = await client.request(
        "DELETE",
        f"/v1/suppressions/{NOBODY}",
        json={"note": "mailbox recreated, confirmed by the user"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False
    (body,) = await operator_bodies(client)
    assert (body["action"], body["actor"], body["seq"]) == ("release", "ops", 2)

    explanation = await get_json(client, f"/v1/suppressions/{NOBODY}/explain")
    assert explanation["steps"][-1]["effect"] == (
        "released by ops (mailbox recreated, confirmed by the user): lifted hard_bounce"
    )

    # the provider retrying the very bounce the release lifted changes nothing
    response = await client.post(
        WEBHOOK, content=HARD, params={"token": SECRET}, headers={"content-type": FORM}
    )
    assert response.json()["duplicate"] is True
    await settle(client)
    status = await get_json(client, f"/v1/suppressions/{NOBODY}")
    assert status["suppressed"] is False
    assert status["events"] == 2
    # a hard bounce after the release (by event time) suppresses again; a time in the
    # far future would be replaced by the receipt time, so this one is a second ahead
    soon = datetime.now(UTC) + timedelta(seconds=1)
    new_hard = as_json(smtp2go_event("bounce", NOBODY, soon.isoformat(), "new-hard", bounce="hard"))
    seq = await post(client, new_hard)
    await settle(client)
    status = await get_json(client, f"/v1/suppressions/{NOBODY}")
    assert (status["suppressed"], status["reason"], status["receipt"]) == (True, "hard_bounce", seq)
    assert status["since"] == format_time(to_micros(soon))
    kinds = [e["kind"] for e in await get_json(client, f"/v1/audit/recipients/{NOBODY}/events")]
    assert kinds == ["bounce", "operator_release", "bounce"]


async def test_http_evidence_received_after_a_release_suppresses_though_dated_before(
    client: Any,
) -> None:
    """Issue 12, item 1: a release lifts only what the ledger held when it was made."""
    await post(client, HARD, FORM)
    await settle(client)
    response = await client.request(
        "DELETE", f"/v1/suppressions/{NOBODY}", params={"note": "user says fixed"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    late = await post(client, LATE_OLD_HARD)  # dated before the release, received after it
    await settle(client)
    status = await get_json(client, f"/v1/suppressions/{NOBODY}")
    assert (status["suppressed"], status["reason"], status["receipt"]) == (
        True,
        "hard_bounce",
        late,
    )
    assert status["since"] == "2026-05-05T08:00:00Z"
    explanation = await get_json(client, f"/v1/suppressions/{NOBODY}/explain")
    assert explanation["steps"][-1]["effect"] == (
        "released by ops (user says fixed): lifted nothing; "
        "kept hard_bounce (evidence received after the release)"
    )
    # the late bounce, and the release that says why the first one no longer counts
    assert [step["event"]["receipt"] for step in explanation["evidence"]] == [late, late - 1]


async def test_http_identical_actions_are_two_receipts(client: Any) -> None:
    for _ in range(2):
        response = await client.put(f"/v1/suppressions/{BOB}", json={"note": "same"}, headers=AUTH)
        assert response.status_code == 200
    bodies = await operator_bodies(client)
    assert [b["seq"] for b in bodies] == [1, 2]
    assert bodies[0]["at"] < bodies[1]["at"]
    status = await get_json(client, f"/v1/suppressions/{BOB}")
    assert (status["reason"], status["receipt"], status["events"]) == ("manual", 1, 2)
    for _ in range(2):
        response = await client.request(
            "DELETE", f"/v1/suppressions/{BOB}", json={"note": "same", "also": ["manual"]},
            headers=AUTH,
        )  # fmt: skip
        assert response.status_code == 200
        assert response.json()["suppressed"] is False
    # the second release found nothing left to lift: it records nothing
    assert [b["action"] for b in await operator_bodies(client)] == [
        "suppress",
        "suppress",
        "release",
    ]


async def test_operator_actions_survive_a_rebuild_under_another_policy(
    tmp_path: Path, make_client: Callable[..., Any], db_path: Path
) -> None:
    async with make_client() as client:
        await post(client, HARD, FORM)
        await post(client, SOFT_FOR_BOB)
        await settle(client)
        assert (await get_json(client, f"/v1/suppressions/{BOB}"))["suppressed"] is False
        for method, email, note in (
            ("DELETE", NOBODY, "fixed"),
            ("PUT", "carol@example.com", "legal hold"),
        ):
            response = await client.request(
                method, f"/v1/suppressions/{email}", json={"note": note}, headers=AUTH
            )
            assert response.status_code == 200

    policy_file = write_policy(tmp_path / "one.toml", THRESHOLD_ONE)
    rebuilt = await cli(
        "rebuild", "--db", db_path, "--policy", policy_file, "--note", "threshold 1", "--json"
    )
    report = ok_json(rebuilt)
    assert report["receipts"] == 4
    assert report["dry_run"] is False
    # one soft bounce is now enough for bob; the operator's decisions stand
    assert [(c["email"], c["after"]["reason"]) for c in report["changed"]] == [
        (BOB, "soft_bounce_threshold")
    ]

    async def status(email: str) -> dict[str, Any]:
        result = await cli("status", email, "--db", db_path, "--policy", policy_file, "--json")
        return dict(ok_json(result))

    assert (await status("carol@example.com"))["reason"] == "manual"
    assert (await status(NOBODY))["suppressed"] is False
    assert (await status(BOB))["reason"] == "soft_bounce_threshold"

    # a server started under that policy answers the same
    policy = load_policy(policy_file, known_sources=KNOWN_SOURCES)
    async with make_client(policy=policy) as client:
        await settle(client)
        carol = await get_json(client, "/v1/suppressions/carol@example.com")
        assert (carol["suppressed"], carol["reason"]) == (True, "manual")
        assert (await get_json(client, f"/v1/suppressions/{NOBODY}"))["suppressed"] is False


def _seed(db: Path) -> None:
    append_sync(db, [receipt(HARD, received_at="2026-05-04T10:15:05Z", ctype=FORM)])


def test_cli_suppress_records_the_local_user_and_the_note(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _seed(db)
    result = invoke("suppress", "Bob@Example.com", "--note", "asked by phone", "--db", db)
    assert result.exit_code == 0, result.output
    assert "bob@example.com: SUPPRESSED (manual)" in result.stdout
    assert "evidence in receipt 2" in result.stdout

    (listed,) = ok_json(invoke("audit", "receipts", "--source", "operator", "--db", db, "--json"))
    assert listed["seq"] == 2
    body = json.loads(invoke("audit", "receipt", "2", "--raw", "--db", db).stdout_bytes)
    assert body["action"] == "suppress"
    assert body["email"] == BOB
    assert body["actor"] == f"local:{LOCAL_USER}"
    assert body["note"] == "asked by phone"

    as_json_status = ok_json(invoke("status", BOB, "--db", db, "--json"))
    assert (as_json_status["reason"], as_json_status["receipt"]) == ("manual", 2)
    (entry,) = ok_json(invoke("audit", "recipient", BOB, "--db", db, "--json"))
    assert (entry["kind"], entry["actor"], entry["note"]) == (
        "operator_suppress",
        f"local:{LOCAL_USER}",
        "asked by phone",
    )


@pytest.mark.parametrize("error", [KeyError("getpwuid(): uid not found"), OSError("no login")])
def test_cli_actions_without_a_login_name_record_an_unknown_local_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # a container without a passwd entry or $USER: getpass.getuser() raises
    def no_user() -> str:
        raise error

    monkeypatch.setattr(getpass, "getuser", no_user)
    db = tmp_path / "ledger.db"
    _seed(db)
    result = invoke("suppress", BOB, "--note", "asked by phone", "--db", db)
    assert result.exit_code == 0, result.output
    result = invoke("release", BOB, "--also", "manual", "--note", "fixed", "--db", db)
    assert result.exit_code == 0, result.output
    actors = [
        json.loads(invoke("audit", "receipt", str(seq), "--raw", "--db", db).stdout_bytes)["actor"]
        for seq in (2, 3)
    ]
    assert actors == ["local:unknown", "local:unknown"]


def test_cli_refuses_an_action_without_a_note_and_appends_nothing(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _seed(db)
    for command in ("suppress", "release"):
        missing = invoke(command, NOBODY, "--db", db)
        assert missing.exit_code == 2
        assert "Missing option '--note'" in missing.stderr
        for blank in ("", "   "):
            refused = invoke(command, NOBODY, "--note", blank, "--db", db)
            assert refused.exit_code == 2, (command, blank, refused.output)
            assert "--note" in refused.stderr
            assert "note" in refused.stderr
    assert receipt_count(db) == 1
    assert ok_json(invoke("status", NOBODY, "--db", db, "--json"))["reason"] == "hard_bounce"


def test_cli_release_lifts_a_hard_bounce_until_a_later_one(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _seed(db)
    result = invoke("release", NOBODY, "--note", "fixed", "--db", db, "--json")
    assert ok_json(result)["suppressed"] is False
    # a byte-identical retry of the lifted bounce is not appended again
    append_sync(db, [receipt(HARD, received_at="2026-11-23T00:00:00Z", ctype=FORM)])
    assert ok_json(invoke("status", NOBODY, "--db", db, "--json"))["suppressed"] is False
    append_sync(db, [receipt(NEW_HARD, received_at="2030-01-01T00:00:05Z")])
    status = ok_json(invoke("status", NOBODY, "--db", db, "--json"))
    assert (status["suppressed"], status["reason"], status["receipt"]) == (True, "hard_bounce", 3)
    steps = ok_json(invoke("explain", NOBODY, "--db", db, "--json"))["steps"]
    assert steps[1]["effect"] == f"released by local:{LOCAL_USER} (fixed): lifted hard_bounce"
    assert steps[1]["event"]["receipt"] == 2


def test_cli_identical_actions_are_two_receipts(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _seed(db)
    for _ in range(2):
        assert invoke("suppress", BOB, "--note", "same", "--db", db).exit_code == 0
    listed = ok_json(invoke("audit", "receipts", "--source", "operator", "--db", db, "--json"))
    assert [item["seq"] for item in listed] == [2, 3]
    assert listed[0]["body_sha256"] != listed[1]["body_sha256"]
    assert rows(db, "SELECT COUNT(*) FROM receipts WHERE source = 'operator'") == [(2,)]


def test_cli_operator_actions_survive_a_rebuild_under_another_policy(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _seed(db)
    append_sync(db, [receipt(SOFT_FOR_BOB, received_at="2026-05-04T11:00:05Z")])
    assert invoke("release", NOBODY, "--note", "fixed", "--db", db).exit_code == 0
    assert invoke("suppress", "carol@example.com", "--note", "hold", "--db", db).exit_code == 0
    policy = write_policy(tmp_path / "one.toml", THRESHOLD_ONE)
    # the projection was built under the defaults: reading under another policy is refused
    refused = invoke("status", BOB, "--db", db, "--policy", policy)
    assert refused.exit_code == 1
    assert invoke("rebuild", "--db", db, "--policy", policy, "--note", "one").exit_code == 0
    listed = ok_json(invoke("suppressions", "--db", db, "--policy", policy, "--json"))
    assert [(item["email"], item["reason"]) for item in listed] == [
        (BOB, "soft_bounce_threshold"),
        ("carol@example.com", "manual"),
    ]
    # back to the defaults (an empty file): the same two operator decisions, bob is no
    # longer suppressed
    defaults = write_policy(tmp_path / "defaults.toml", "")
    back = invoke("rebuild", "--db", db, "--policy", defaults, "--note", "back to defaults")
    assert back.exit_code == 0
    listed = ok_json(invoke("suppressions", "--db", db, "--json"))
    assert [(item["email"], item["reason"]) for item in listed] == [("carol@example.com", "manual")]


async def test_http_a_release_takes_effect_on_a_bounce_dated_in_year_9999(client: Any) -> None:
    """Issue 13, item 13: a hard bounce dated 9999-12-31 sorted after every release, so
    `DELETE` answered 200 and the address stayed suppressed forever. The event time is
    now clamped to the receipt time (issue 12, item 15), so the release lifts it."""
    far = as_json(smtp2go_event("bounce", NOBODY, "9999-12-31T00:00:00Z", "y9999", bounce="hard"))
    await post(client, far)
    await settle(client)
    assert (await get_json(client, f"/v1/suppressions/{NOBODY}"))["suppressed"] is True
    response = await client.request(
        "DELETE", f"/v1/suppressions/{NOBODY}", params={"note": "not a real bounce"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False
    await settle(client)
    assert (await get_json(client, f"/v1/suppressions/{NOBODY}"))["suppressed"] is False
