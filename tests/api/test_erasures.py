"""Erasure over HTTP: POST /v1/erasures erases and keeps the address suppressed; it needs
an API key and an erasure key; GET /v1/erasures lists the records without the address."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from api.settings import load_settings
from projections import Policy
from projections.erasure_keys import ErasureKeyMissing
from tests.api.helpers import event, hard_bounce, post_webhook, status
from tests.conftest import API_KEY, AUTH, SECRET, settle

ALICE = "alice@example.org"


def environment(db_path: Path, **more: str) -> dict[str, str]:
    return {
        "BOUNCELEDGER_DB": str(db_path),
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        **more,
    }


async def test_an_erasure_keeps_the_address_suppressed(make_client: Any, db_path: Path) -> None:
    settings = load_settings(environment(db_path, BOUNCELEDGER_ERASURE_KEY="e" * 40))
    async with make_client(settings=settings) as client:
        await post_webhook(client, hard_bounce(ALICE))
        await settle(client)
        body = {"email": ALICE.upper(), "note": "DSAR 118", "request": "118"}
        assert (await client.post("/v1/erasures", json=body)).status_code == 401
        answer = await client.post("/v1/erasures", json=body, headers=AUTH)
        assert answer.status_code == 201, answer.text
        report = answer.json()
        assert (report["reasons"], len(report["removed"])) == (["hard_bounce"], 1)
        found = await status(client, ALICE)
        assert (found["suppressed"], found["reason"], found["erased"]) == (
            True,
            "hard_bounce",
            report["subject"],
        )
        checked = await client.post(
            "/v1/suppressions/check", json={"emails": [ALICE]}, headers=AUTH
        )
        assert [hit["email"] for hit in checked.json()["suppressed"]] == [ALICE]
        listed = await client.get("/v1/erasures", headers=AUTH)
        assert [entry["request"] for entry in listed.json()] == ["118"]
        assert ALICE not in listed.text
        seq = report["removed"][0]
        raw = await client.get(f"/v1/audit/receipts/{seq}?raw=true", headers=AUTH)
        assert (raw.status_code, raw.content) == (200, b"")  # the body is gone
        shown = (await client.get(f"/v1/audit/receipts/{seq}", headers=AUTH)).json()
        assert shown["erased_by"] == report["seq"]


async def test_without_an_erasure_key_nothing_is_erased(make_client: Any, db_path: Path) -> None:
    async with make_client(settings=load_settings(environment(db_path))) as client:
        await post_webhook(client, hard_bounce(ALICE))
        await settle(client)
        answer = await client.post(
            "/v1/erasures", json={"email": ALICE, "note": "DSAR"}, headers=AUTH
        )
        assert answer.status_code == 409
        assert "BOUNCELEDGER_ERASURE_KEY" in answer.json()["detail"]
        assert (await status(client, ALICE))["reason"] == "hard_bounce"
        bad = await client.post("/v1/erasures", json={"email": ALICE}, headers=AUTH)
        assert bad.status_code == 400


async def test_retention_is_a_dry_run_unless_told_otherwise(
    make_client: Any, db_path: Path
) -> None:
    settings = load_settings(environment(db_path))
    policy = Policy(retention={"delivered": "1s"})
    async with make_client(settings=settings, policy=policy) as client:
        posted = await post_webhook(client, json.dumps(event("delivered", ALICE, "d-1")).encode())
        seq = posted.json()["seq"]
        await settle(client)
        await asyncio.sleep(1.2)  # older than the policy keeps deliveries
        assert (await client.post("/v1/retention")).status_code == 401
        dry = (await client.post("/v1/retention", headers=AUTH)).json()
        assert (dry["dry_run"], dry["bodies"], dry["records"]) == (True, 1, [])
        done = await client.post("/v1/retention", params={"dry_run": "false"}, headers=AUTH)
        assert done.json()["bodies"] == 1
        (record,) = done.json()["records"]
        shown = (await client.get(f"/v1/audit/receipts/{seq}", headers=AUTH)).json()
        assert (shown["erased_by"], shown["size"]) == (record, 0)


async def test_an_instance_without_the_key_refuses_to_serve_a_ledger_with_erasures(
    make_client: Any, db_path: Path
) -> None:
    keyed = load_settings(environment(db_path, BOUNCELEDGER_ERASURE_KEY="e" * 40))
    async with make_client(settings=keyed) as client:
        await post_webhook(client, hard_bounce(ALICE))
        await settle(client)
        body = {"email": ALICE, "note": "DSAR 118"}
        assert (await client.post("/v1/erasures", json=body, headers=AUTH)).status_code == 201
    other_key = environment(db_path, BOUNCELEDGER_ERASURE_KEY="f" * 40)
    for environ in (environment(db_path), other_key):
        with pytest.raises(ExceptionGroup) as refused:  # the app's start, in a task group
            async with make_client(settings=load_settings(environ)):
                pass
        assert refused.group_contains(ErasureKeyMissing, match="this instance does not hold")
