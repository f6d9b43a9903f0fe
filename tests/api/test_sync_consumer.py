"""The README's consumer (docs/sync_consumer.py), run against a live service on both
backends: after deliveries, a release, a rebuild-free erasure and more deliveries, its
copy equals the service's own list — synced in several passes, and from scratch."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from api.settings import load_settings
from tests.api.helpers import event, hard_bounce
from tests.api.test_changes import deliver, environment, served
from tests.conftest import API_KEY, AUTH

pytestmark = pytest.mark.both_backends

CONSUMER = Path(__file__).parents[2] / "docs" / "sync_consumer.py"


def consumer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_consumer", CONSUMER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def listed(http: httpx.AsyncClient) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    after: str | None = None
    while True:
        params = {"limit": "2"} | ({"after": after} if after else {})
        page = (await http.get("/v1/suppressions", params=params)).json()
        found.update({item["email"]: item["reasons"] for item in page["items"]})
        if not (after := page["next"]):
            return found


async def test_the_readme_consumer_keeps_an_equal_copy(db_path: Path, tmp_path: Path) -> None:
    sync = consumer().sync
    state, fresh = tmp_path / "copy.json", tmp_path / "fresh.json"
    settings = load_settings(environment(db_path) | {"BOUNCELEDGER_ERASURE_KEY": "e" * 40})
    async with (
        served(settings) as (base, _),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10.0) as http,
    ):

        async def copy(path: Path) -> dict[str, list[str]]:
            await asyncio.sleep(0.3)  # the projector folds what was just delivered
            kept = await asyncio.to_thread(sync, base, API_KEY, path)
            return {address: verdict["reasons"] for address, verdict in kept.items()}

        for n, rcpt in enumerate(("alice", "bob", "carol", "dave")):
            await deliver(http, hard_bounce(f"{rcpt}@example.org", f"hb-{n}"))
        await deliver(http, json.dumps(event("spam", "erin@example.org", "c1")).encode())
        assert await copy(state) == await listed(http)
        released = await http.request(
            "DELETE", "/v1/suppressions/bob@example.org", json={"note": "fixed"}
        )
        assert released.status_code == 200, released.text
        erased = await http.post(
            "/v1/erasures", json={"email": "carol@example.org", "note": "DSAR 9"}
        )
        assert erased.status_code == 201, erased.text
        await deliver(http, hard_bounce("frank@example.org", "hb-9"))
        kept = await copy(state)
        assert kept == await listed(http)
        assert "carol@example.org" not in kept
        assert "bob@example.org" not in kept
        assert erased.json()["subject"] in kept  # the keyed hash stays suppressed
        assert await copy(fresh) == kept  # from scratch, the same
        assert json.loads(state.read_text())["cursor"] == json.loads(fresh.read_text())["cursor"]
