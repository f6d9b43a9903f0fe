"""Explain: the verdict, the policy values that decided it, and the evidence it rests on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from projections import DEFAULT_POLICY, KNOWN_SOURCES, load_policy, policy_hash
from tests.audit.helpers import (
    FORM,
    append_sync,
    as_form,
    as_json,
    cli,
    get_json,
    invoke,
    ok_json,
    post,
    receipt,
    smtp2go_event,
    write_policy,
)
from tests.conftest import AUTH, fixture_bytes, settle

NOBODY = "nobody@example.org"
FULL = "full.box@example.net"


def soft(n: int, time: str) -> bytes:
    return as_json(
        smtp2go_event("bounce", FULL, time, f"soft-{n}", bounce="soft", message=f"452 full #{n}")
    )


def delivered(n: int, time: str, rcpt: str = FULL) -> bytes:
    return as_json(smtp2go_event("delivered", rcpt, time, f"dlv-{n}"))


# Soft-bounce history, posted in this order (receipt numbers 1..6):
SOFT_HISTORY = [
    soft(1, "2026-05-01T10:00:00Z"),  # 1: counted, then reset by the delivery
    delivered(1, "2026-05-02T10:00:00Z"),  # 2: the reset the count starts after
    soft(3, "2026-05-04T10:00:00Z"),  # 3: posted before #2 by event time, arrives first
    soft(2, "2026-05-03T10:00:00Z"),  # 4
    as_json(smtp2go_event("open", FULL, "2026-05-03T12:00:00Z", "open-1")),  # 5: ignored
    soft(4, "2026-05-05T10:00:00Z"),  # 6: the third since the reset: suppressed
]


def check_soft_explanation(explanation: dict[str, Any], digest: str) -> None:
    status = explanation["status"]
    assert status["email"] == FULL
    assert status["suppressed"] is True
    assert status["reason"] == "soft_bounce_threshold"
    assert status["since"] == "2026-05-05T10:00:00Z"
    assert status["receipt"] == 6
    assert explanation["policy"] == {
        "hash": digest,
        "soft_bounce_threshold": 3,
        "soft_bounce_window": None,
        "delivery_clears_soft_bounces": True,
    }
    evidence = explanation["evidence"]
    # the delivery that reset the count, then exactly the three soft bounces that counted
    assert [step["event"]["receipt"] for step in evidence] == [2, 4, 3, 6]
    assert [step["event"]["kind"] for step in evidence] == ["delivered", *["bounce"] * 3]
    assert [step["event"]["bounce_class"] for step in evidence[1:]] == ["soft"] * 3
    assert evidence[0]["effect"].startswith("reset:")
    assert [step["effect"] for step in evidence[1:]] == [
        "soft bounce counted: 1 of 3",
        "soft bounce counted: 2 of 3",
        "suppressed: soft_bounce_threshold",
    ]
    assert all(step["decisive"] for step in evidence)
    # every event is a step, in event-time order; only the evidence is decisive
    steps = explanation["steps"]
    assert [step["event"]["receipt"] for step in steps] == [1, 2, 4, 5, 3, 6]
    assert [step["decisive"] for step in steps] == [False, True, True, False, True, True]
    assert steps[3]["effect"].startswith("ignored: ")


def test_cli_explains_a_soft_bounce_suppression(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [receipt(b, received_at="2026-05-06T00:00:00Z") for b in SOFT_HISTORY])
    check_soft_explanation(
        ok_json(invoke("explain", FULL, "--db", db, "--json")), policy_hash(DEFAULT_POLICY)
    )
    text = invoke("explain", FULL, "--db", db)
    assert text.exit_code == 0
    out = text.stdout
    assert "SUPPRESSED (soft_bounce_threshold)" in out
    assert f"policy {policy_hash(DEFAULT_POLICY)[:12]}: soft-bounce threshold 3" in out
    assert "delivery clears soft bounces" in out
    marked = [line for line in out.splitlines() if line.startswith(" * ")]
    assert [line.split("receipt")[1].split()[0] for line in marked] == ["2", "4", "3", "6"]


async def test_http_explains_a_soft_bounce_suppression(client: Any) -> None:
    for body in SOFT_HISTORY:
        await post(client, body)
    await settle(client)
    explanation = await get_json(client, f"/v1/suppressions/{FULL.upper()}/explain")
    check_soft_explanation(explanation, policy_hash(DEFAULT_POLICY))
    # each piece of evidence points at a receipt that holds it
    for step in explanation["evidence"]:
        seq = step["event"]["receipt"]
        shown = await get_json(client, f"/v1/audit/receipts/{seq}")
        assert step["event"]["event_id"] in shown["body_text"]


def check_hard_explanation(explanation: dict[str, Any]) -> None:
    assert explanation["status"]["reason"] == "hard_bounce"
    assert explanation["status"]["receipt"] == 2
    assert explanation["status"]["since"] == "2026-05-04T10:15:02Z"
    (evidence,) = explanation["evidence"]
    assert evidence["effect"] == "suppressed: hard_bounce"
    assert evidence["event"]["receipt"] == 2
    assert evidence["event"]["bounce_class"] == "hard"
    assert evidence["event"]["diagnostic"].startswith("550 5.1.1 <nobody@example.org>")
    assert [s["event"]["receipt"] for s in explanation["steps"]] == [1, 2, 3]
    assert explanation["steps"][2]["effect"] == "delivered: no change"  # heals no hard bounce


HARD_HISTORY = [
    (delivered(1, "2026-05-03T10:00:00Z", NOBODY), "application/json"),
    (fixture_bytes("smtp2go", "hard_bounce.form"), FORM),  # 2026-05-04T10:15:02Z
    (delivered(2, "2026-05-05T10:00:00Z", NOBODY), "application/json"),
]


async def test_http_explains_a_hard_bounce(client: Any) -> None:
    for body, ctype in HARD_HISTORY:
        await post(client, body, ctype)
    await settle(client)
    check_hard_explanation(await get_json(client, f"/v1/suppressions/{NOBODY}/explain"))


def test_cli_explains_a_hard_bounce(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(
        db, [receipt(b, received_at="2026-05-06T00:00:00Z", ctype=c) for b, c in HARD_HISTORY]
    )
    check_hard_explanation(ok_json(invoke("explain", NOBODY, "--db", db, "--json")))
    out = invoke("explain", NOBODY, "--db", db).stdout
    assert "SUPPRESSED (hard_bounce) since 2026-05-04T10:15:02Z, evidence in receipt 2" in out
    assert "Recipient address rejected: User unknown" in out


def test_cli_explains_an_address_never_seen(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [receipt(delivered(1, "2026-05-03T10:00:00Z"), received_at="2026-05-03")])
    explanation = ok_json(invoke("explain", "stranger@example.com", "--db", db, "--json"))
    assert explanation["status"]["suppressed"] is False
    assert explanation["evidence"] == []
    assert explanation["steps"] == []
    assert (
        "no events for this address" in invoke("explain", "stranger@example.com", "--db", db).stdout
    )


STRICT = """
soft_bounce_threshold = 2
soft_bounce_window = "36h"
delivery_clears_soft_bounces = false
"""


async def test_explain_reports_the_configured_policy_values(
    tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    path = write_policy(tmp_path / "strict.toml", STRICT)
    policy = load_policy(path, known_sources=KNOWN_SOURCES)
    # soft (May 1), delivery (May 2, does not clear), soft (May 4: May 1 is out of the window),
    # soft (May 4 evening): two within 36h -> suppressed
    history = [
        soft(1, "2026-05-01T10:00:00Z"),
        delivered(1, "2026-05-02T10:00:00Z"),
        soft(2, "2026-05-04T08:00:00Z"),
        as_form(smtp2go_event("bounce", FULL, "2026-05-04T20:00:00Z", "soft-3", bounce="soft")),
    ]
    async with make_client(policy=policy) as client:
        for body in history:
            await post(client, body, FORM if body.startswith(b"event=") else "application/json")
        await settle(client)
        explanation = await get_json(client, f"/v1/suppressions/{FULL}/explain")
    expected_policy = {
        "hash": policy_hash(policy),
        "soft_bounce_threshold": 2,
        "soft_bounce_window": "36h",
        "delivery_clears_soft_bounces": False,
    }
    assert explanation["policy"] == expected_policy
    assert explanation["status"]["reason"] == "soft_bounce_threshold"
    # receipt 1 records the policy this instance was started with (projections/policy_history.py)
    assert [s["event"]["receipt"] for s in explanation["evidence"]] == [4, 5]
    assert explanation["steps"][1]["effect"] == "delivered: no change"

    result = await cli("explain", FULL, "--db", tmp_path / "ledger.db", "--policy", path, "--json")
    assert ok_json(result) == explanation
    text = (await cli("explain", FULL, "--db", tmp_path / "ledger.db", "--policy", path)).stdout
    assert "soft-bounce threshold 2, window 36h; delivery does not clear soft bounces" in text


async def test_explain_needs_an_api_key(client: Any) -> None:
    response = await client.get(f"/v1/suppressions/{NOBODY}/explain")
    assert response.status_code == 401
    response = await client.get(f"/v1/suppressions/{NOBODY}/explain", headers=AUTH)
    assert response.status_code == 200


# Soft bounces keep coming after the threshold was reached (receipts 1..6), and a second
# address whose hard bounce is followed by a delivery that clears an older soft bounce.
AFTER_THRESHOLD = [
    delivered(0, "2026-05-01T00:00:00Z"),
    *(soft(n, f"2026-05-0{n + 1}T00:00:00Z") for n in range(1, 6)),
]
B = "b@example.com"
HARD_THEN_DELIVERY = [
    as_json(smtp2go_event("bounce", B, "2026-05-01T00:00:00Z", "b-soft", bounce="soft")),
    as_json(smtp2go_event("bounce", B, "2026-05-02T00:00:00Z", "b-hard", bounce="hard")),
    delivered(9, "2026-05-03T00:00:00Z", B),
]


def check_later_soft_bounces(explanation: dict[str, Any]) -> None:
    """The evidence is the three soft bounces that reached the threshold, not the latest
    three: those after the suppression began did not make it."""
    assert explanation["status"]["since"] == "2026-05-04T00:00:00Z"
    assert explanation["status"]["receipt"] == 4
    assert [s["event"]["receipt"] for s in explanation["evidence"]] == [2, 3, 4]
    assert explanation["evidence"][-1]["effect"] == "suppressed: soft_bounce_threshold"


def check_hard_then_delivery(explanation: dict[str, Any], hard: int) -> None:
    """A delivery after a hard bounce resets soft bounces; the hard verdict does not rest
    on it."""
    assert explanation["status"]["reason"] == "hard_bounce"
    assert explanation["steps"][2]["effect"].startswith("reset:")
    assert [s["event"]["receipt"] for s in explanation["evidence"]] == [hard]


def test_cli_evidence_is_what_made_the_verdict(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    history = [*AFTER_THRESHOLD[:4], *HARD_THEN_DELIVERY, *AFTER_THRESHOLD[4:]]
    # receipts: 1 delivered, 2-4 soft 1..3, 5-7 b's history, 8-9 soft 4..5
    append_sync(db, [receipt(body, received_at="2026-05-09T00:00:00Z") for body in history])
    explanation = ok_json(invoke("explain", FULL, "--db", db, "--json"))
    check_later_soft_bounces(explanation)
    assert [s["event"]["receipt"] for s in explanation["steps"]] == [1, 2, 3, 4, 8, 9]
    check_hard_then_delivery(ok_json(invoke("explain", B, "--db", db, "--json")), hard=6)


async def test_http_evidence_is_what_made_the_verdict(client: Any) -> None:
    for body in (*AFTER_THRESHOLD, *HARD_THEN_DELIVERY):
        await post(client, body)
    await settle(client)
    check_later_soft_bounces(await get_json(client, f"/v1/suppressions/{FULL}/explain"))
    check_hard_then_delivery(await get_json(client, f"/v1/suppressions/{B}/explain"), hard=8)


async def test_http_evidence_for_an_address_not_suppressed(client: Any) -> None:
    # released after a hard bounce: the release is what the verdict rests on
    await post(client, fixture_bytes("smtp2go", "hard_bounce.form"), FORM)
    await settle(client)
    response = await client.request(
        "DELETE", f"/v1/suppressions/{NOBODY}", json={"note": "fixed"}, headers=AUTH
    )
    assert response.status_code == 200
    released = await get_json(client, f"/v1/suppressions/{NOBODY}/explain")
    assert released["status"]["suppressed"] is False
    assert [s["event"]["source"] for s in released["evidence"]] == ["operator"]
    assert released["evidence"][0]["effect"] == "released by ops (fixed): lifted hard_bounce"
    # two soft bounces since a reset: counted toward the threshold, with that reset
    for body in (soft(1, "2026-05-01T00:00:00Z"), delivered(1, "2026-05-02T00:00:00Z")):
        await post(client, body)
    for n in (2, 3):
        await post(client, soft(n, f"2026-05-0{n + 1}T00:00:00Z"))
    await settle(client)
    pending = await get_json(client, f"/v1/suppressions/{FULL}/explain")
    assert pending["status"]["suppressed"] is False
    assert pending["status"]["soft_bounces"] == 2
    assert [s["event"]["receipt"] for s in pending["evidence"]] == [4, 5, 6]
    assert pending["evidence"][0]["event"]["kind"] == "delivered"
