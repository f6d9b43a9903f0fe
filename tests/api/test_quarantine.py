"""Quarantine: an authentic body that cannot be decoded is refused (400), kept aside with
its reason, listed, and replayed into the ledger once a decoder reads it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import cli
from projections.providers import smtp2go
from tests.api.helpers import post_webhook, receipts, status
from tests.conftest import AUTH, SECRET

# SMTP2GO JSON whose event name sits under a key no decoder reads today.
ODD = json.dumps({"evt": "bounce", "bounce": "hard", "rcpt": "odd@example.org", "id": "q1"})


def _tolerant(original: Any) -> Any:
    """Stand-in for a fixed decoder: reads `evt` as `event`."""

    def decode(body: bytes, content_type: str = "", headers: Any = None) -> Any:
        return original(body.replace(b'"evt"', b'"event"'), content_type, headers)

    return decode


async def _quarantine(client: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/quarantine", headers=AUTH)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_an_authentic_undecodable_body_is_refused_and_kept(client: Any) -> None:
    response = await post_webhook(client, ODD.encode())
    assert response.status_code == 400
    assert await receipts(client) == 0
    (kept,) = await _quarantine(client)
    assert kept["source"] == "smtp2go"
    assert "body_text" not in kept  # bodies only one at a time
    shown = await client.get(f"/v1/quarantine/{kept['id']}", headers=AUTH)
    assert shown.json()["body_text"] == ODD
    assert "`event`" in kept["reason"]
    assert kept["seen"] == 1
    assert kept["replayed_seq"] is None


async def test_retries_of_the_same_bytes_are_kept_once(client: Any) -> None:
    for _ in range(3):
        assert (await post_webhook(client, ODD.encode())).status_code == 400
    (kept,) = await _quarantine(client)
    assert kept["seen"] == 3


async def test_unauthenticated_garbage_is_not_kept(client: Any) -> None:
    assert (await post_webhook(client, ODD.encode(), token="wrong")).status_code == 403
    assert await _quarantine(client) == []


async def test_replay_waits_for_a_decoder_that_reads_it(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await post_webhook(client, ODD.encode())).status_code == 400
    (kept,) = await _quarantine(client)
    still = await client.post(f"/v1/quarantine/{kept['id']}/replay", headers=AUTH)
    assert still.status_code == 200
    assert still.json()["error"].startswith("still undecodable")
    assert await receipts(client) == 0

    monkeypatch.setattr(smtp2go, "decode", _tolerant(smtp2go.decode))
    done = await client.post(f"/v1/quarantine/{kept['id']}/replay", headers=AUTH)
    assert done.status_code == 200, done.text
    assert done.json()["seq"] == 1
    assert await receipts(client) == 1
    assert await _quarantine(client) == []  # replayed ones are listed only with ?all=true
    (replayed,) = (await client.get("/v1/quarantine?all=true", headers=AUTH)).json()["items"]
    assert replayed["replayed_seq"] == 1
    raw = await client.get("/v1/audit/receipts/1?raw=true", headers=AUTH)
    assert raw.content == ODD.encode()  # the bytes as they first arrived


async def test_replaying_an_unknown_id_is_404(client: Any) -> None:
    assert (await client.post("/v1/quarantine/99/replay", headers=AUTH)).status_code == 404


async def test_the_quarantine_needs_an_api_key(client: Any) -> None:
    assert (await client.get("/v1/quarantine")).status_code == 401


async def test_kept_headers_never_include_the_secret(client: Any, db_path: Path) -> None:
    bearer = {"authorization": f"Bearer {SECRET}"}
    assert (await post_webhook(client, ODD.encode(), token=None, headers=bearer)).status_code == 400
    assert SECRET.encode() not in db_path.read_bytes() + _wal(db_path)


def _wal(db_path: Path) -> bytes:
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


async def test_cli_lists_and_replays(
    make_client: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_client() as client:
        assert (await post_webhook(client, ODD.encode())).status_code == 400

    def invoke(*args: str) -> Any:  # the CLI runs its own event loop: keep it off this one
        return asyncio.to_thread(CliRunner().invoke, cli, list(args))

    listed = await invoke("quarantine", "--db", str(db_path), "--json")
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.output)
    assert item["reason"].startswith("event 0 has no")
    stuck = await invoke("quarantine", "--db", str(db_path), "replay", "--all")
    assert stuck.exit_code == 1
    assert "still undecodable" in stuck.output
    monkeypatch.setattr(smtp2go, "decode", _tolerant(smtp2go.decode))
    done = await invoke("quarantine", "--db", str(db_path), "replay", "--all")
    assert done.exit_code == 0, done.output
    assert "replayed as receipt 1" in done.output
    shown = await invoke("status", "odd@example.org", "--db", str(db_path), "--json")
    assert json.loads(shown.output)["reason"] == "hard_bounce"
    async with make_client() as client:
        assert (await status(client, "odd@example.org"))["suppressed"] is True


def test_cli_replay_needs_ids_or_all(db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["quarantine", "--db", str(db_path), "replay"])
    assert result.exit_code == 2
