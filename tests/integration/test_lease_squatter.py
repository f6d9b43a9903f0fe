"""A role that can merely connect to the database holds the projector's lease (issue 19;
security review 2, N2): the service says so at start, notices that nobody folds, and folds
without the lease — acknowledged bounces still suppress, a metric and a log line name the
cause, and the instance takes the lease once the squatter lets go."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from api.settings import load_settings
from tests import pg
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET

pytestmark = pytest.mark.postgres

LEASE_CLASS = 0x626C5F70  # ledger/postgres.py: the projector lease's advisory lock class


def as_role(url: str, role: str) -> str:
    """The same database and search path, connected as `role` (trust authentication)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def test_a_squatting_role_cannot_stop_suppression(
    make_client: Callable[..., Any], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    role = f"bl_squatter_{secrets.token_hex(4)}"
    schema = parse_qs(urlsplit(pg_url).query)["search_path"][0]
    admin = await pg.connect(pg_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN")  # no privilege on any table
    squatter = await pg.connect(as_role(pg_url, role))
    try:
        await squatter.execute("SELECT pg_advisory_lock($1, hashtext($2))", LEASE_CLASS, schema)
        settings = load_settings(
            {
                "BOUNCELEDGER_DB": pg_url,
                "SMTP2GO_WEBHOOK_SECRET": SECRET,
                "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
                "BOUNCELEDGER_MAX_PROJECTION_LAG": "2",
            }
        )
        with caplog.at_level(logging.WARNING):
            async with make_client(settings=settings) as client:
                # the squatter may read nothing of the ledger: it only took a lock
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await squatter.fetchval(f"SELECT count(*) FROM {schema}.receipts")
                await post_webhook(client, hard_bounce("squatted@example.org"))
                status = await eventually_suppressed(client, "squatted@example.org")
                assert status["reason"] == "hard_bounce"
                health = (await client.get("/healthz", headers=AUTH)).json()
                assert health["projecting"] is False  # the lease is the squatter's
                metrics = (await client.get("/metrics", headers=AUTH)).text
                assert "bounceledger_projector_lease_stalled 1.0" in metrics
                # the squatter lets go: this instance takes the lease and leads again
                await squatter.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", LEASE_CLASS, schema
                )
                deadline = time.monotonic() + 10
                while not (await client.get("/healthz", headers=AUTH)).json()["projecting"]:
                    assert time.monotonic() < deadline, "the instance never took the lease"
                    await asyncio.sleep(0.1)
        messages = [record.getMessage() for record in caplog.records]
        assert any("may connect to database" in m and "REVOKE CONNECT" in m for m in messages)
        assert any("folding without the lease" in m for m in messages)
    finally:
        await squatter.close()
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def eventually_suppressed(client: Any, email: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = (await client.get(f"/v1/suppressions/{email}", headers=AUTH)).json()
        if status.get("suppressed"):
            return status
        assert time.monotonic() < deadline, f"never suppressed: {status}"
        await asyncio.sleep(0.1)
