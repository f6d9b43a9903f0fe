"""Issue 13, item 14: the quarantine is capped per source (BOUNCELEDGER_QUARANTINE_MAX),
listed in keyset pages without bodies, and shows a body only one delivery at a time."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import cli
from api.settings import load_settings
from tests.api.helpers import post_webhook
from tests.conftest import API_KEY, AUTH, SECRET


def _odd(n: int) -> bytes:
    """An authentic SMTP2GO body no decoder reads (its event sits under `evt`)."""
    return json.dumps({"evt": "bounce", "rcpt": f"odd{n}@example.org", "id": f"q{n}"}).encode()


async def _page(client: Any, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v1/quarantine{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_full_quarantine_refuses_without_keeping(
    make_client: Any, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": str(db_path),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "BOUNCELEDGER_QUARANTINE_MAX": "2",
        }
    )
    async with make_client(settings=settings) as client:
        await _fill(client, caplog)


async def _fill(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
        for n in range(4):
            assert (await post_webhook(client, _odd(n))).status_code == 400
    page = await _page(client)
    assert [item["seen"] for item in page["items"]] == [1, 1]
    assert "quarantine for smtp2go is full" in caplog.text
    # a retry of a kept body is still counted; nothing else gets in
    assert (await post_webhook(client, _odd(0))).status_code == 400
    assert [item["seen"] for item in (await _page(client))["items"]] == [2, 1]


async def test_the_listing_pages_and_leaves_bodies_to_the_item_view(client: Any) -> None:
    for n in range(3):
        assert (await post_webhook(client, _odd(n))).status_code == 400
    first = await _page(client, "?limit=2")
    assert len(first["items"]) == 2
    assert all("body_text" not in item for item in first["items"])
    assert first["items"][0]["size"] == len(_odd(0))
    rest = await _page(client, f"?limit=2&after={first['next']}")
    assert len(rest["items"]) == 1
    assert rest["next"] is None
    qid = rest["items"][0]["id"]
    shown = await client.get(f"/v1/quarantine/{qid}", headers=AUTH)
    assert shown.status_code == 200, shown.text
    assert shown.json()["body_text"] == _odd(2).decode()
    assert (await client.get("/v1/quarantine/99", headers=AUTH)).status_code == 404
    assert (await client.get(f"/v1/quarantine/{qid}")).status_code == 401
    assert (await client.get("/v1/quarantine?limit=0", headers=AUTH)).status_code == 400


async def test_the_cli_lists_without_bodies_and_shows_one(make_client: Any, db_path: Path) -> None:
    async with make_client() as client:
        assert (await post_webhook(client, _odd(7))).status_code == 400

    def invoke(*args: str) -> Any:  # the CLI runs its own event loop: keep it off this one
        return asyncio.to_thread(CliRunner().invoke, cli, list(args))

    listed = await invoke("quarantine", "--db", str(db_path), "--json")
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.output)
    assert "body_text" not in item
    assert "odd7@example.org" not in (await invoke("quarantine", "--db", str(db_path))).output
    shown = await invoke("quarantine", "--db", str(db_path), "show", str(item["id"]))
    assert shown.exit_code == 0, shown.output
    assert "odd7@example.org" in shown.output
    missing = await invoke("quarantine", "--db", str(db_path), "show", "99")
    assert missing.exit_code == 1
