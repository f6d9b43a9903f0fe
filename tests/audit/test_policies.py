"""The policy as part of the history (issue 9, item 4): `rebuild --policy FILE --note`
records the change in the ledger, a running instance serves the new state without a
restart, and `audit policies` (and GET /v1/audit/policies) lists every change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.audit.helpers import as_json, cli, get_json, post, smtp2go_event, write_policy
from tests.conftest import AUTH, settle

pytestmark = pytest.mark.both_backends

BOB = "bob@example.com"
SOFT = as_json(smtp2go_event("bounce", BOB, "2026-05-04T11:00:00Z", "bob-s", bounce="soft"))
STRICT = "# one soft bounce is enough\nsoft_bounce_threshold = 1\n"


async def wait_for(client: Any, email: str, suppressed: bool, timeout: float = 5.0) -> float:
    """Seconds until the app answers `suppressed` for `email` (503s in between are the
    brief switch); fails after `timeout`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        response = await client.get(f"/v1/suppressions/{email}", headers=AUTH)
        if response.status_code == 200 and response.json()["suppressed"] is suppressed:
            return loop.time() - started
        assert response.status_code in (200, 503), response.text
        if loop.time() - started > timeout:
            raise AssertionError(f"{email} still not suppressed={suppressed}: {response.text}")
        await asyncio.sleep(0.02)


async def test_a_running_instance_follows_a_recorded_policy_change(
    make_client: Any, db_path: Path, tmp_path: Path
) -> None:
    strict = write_policy(tmp_path / "strict.toml", STRICT)
    async with make_client(policy=None) as client:
        await post(client, SOFT)
        await settle(client)
        assert (await get_json(client, f"/v1/suppressions/{BOB}"))["suppressed"] is False
        history = await get_json(client, "/v1/audit/policies")
        assert (history["recorded"], history["changes"]) == (False, [])

        # a change needs a note; nothing is written without one
        refused = await cli("rebuild", "--db", db_path, "--policy", strict)
        assert refused.exit_code == 2
        assert "--note" in refused.output
        applied = await cli(
            "rebuild", "--db", db_path, "--policy", strict, "--note", "one is enough", "--by", "ann"
        )
        assert applied.exit_code == 0, applied.output
        # the running instance serves the new state without a restart
        await wait_for(client, BOB, suppressed=True)
        history = await get_json(client, "/v1/audit/policies")
    assert history["recorded"] is True
    [change] = history["changes"]
    assert (change["actor"], change["note"], change["origin"], change["active"]) == (
        "ann",
        "one is enough",
        str(strict),
        True,
    )
    assert change["toml"] == STRICT  # the file verbatim, comment included
    assert change["policy_hash"] == history["active_hash"]
    assert change["receipt"] == 2  # a receipt of its own, after the soft bounce

    listed = await cli("audit", "policies", "--db", db_path, "--json")
    assert json.loads(listed.stdout) == history
    text = (await cli("audit", "policies", "--db", db_path)).stdout
    assert "one is enough" in text
    assert "active" in text


async def test_a_rebuild_under_the_active_policy_records_nothing(
    make_client: Any, db_path: Path
) -> None:
    async with make_client(policy=None) as client:
        await post(client, SOFT)
        await settle(client)
    rebuilt = await cli("rebuild", "--db", db_path, "--json")  # no --policy: the active one
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["receipts"] == 1
    history = json.loads((await cli("audit", "policies", "--db", db_path, "--json")).stdout)
    assert history["changes"] == []
