"""A projection that falls behind (BOUNCELEDGER_MAX_PROJECTION_LAG): lookups refuse to
answer from it (503) rather than give a stale verdict, /readyz names the cause, and
folding again ends it.

Provenance: the second deliverability review (issue 18, N1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.settings import load_settings
from ledger import StoreUnavailable
from tests.conftest import AUTH, every_provider_environment
from tests.doors import epoch, post_sendgrid, sendgrid_batch, sg_event, verdict

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

NOW = datetime.now(UTC)


async def test_lookups_answer_503_while_the_projection_is_behind(
    make_client: Callable[..., Any], db_path: Path, tmp_path: Path
) -> None:
    """Issue 18, finding N1: when no projector folds (here: every step of this instance's
    projector fails as if the database refused it) and the oldest unprojected receipt is
    older than the bound, lookups answer 503, /readyz fails naming the cause, and the
    metric says so; folding again ends it."""
    settings = load_settings(
        {
            **every_provider_environment(tmp_path, db_path),
            "BOUNCELEDGER_MAX_PROJECTION_LAG": "0.3",
        }
    )
    async with make_client(settings=settings) as client:
        projector = client.app.state.runtime.projector
        folding = projector.step

        async def failing(limit: int = 1000) -> int:
            raise StoreUnavailable("ledger write failed: the disk is full")

        projector.step = failing
        await post_sendgrid(
            client, sendgrid_batch(sg_event("spamreport", "late@example.org", epoch(NOW), "l1"))
        )
        deadline = time.monotonic() + 10
        while lookup := await client.get("/v1/suppressions/late@example.org", headers=AUTH):
            if lookup.status_code != 200:
                break
            assert lookup.json()["suppressed"] is False  # not folded yet: never a verdict
            assert time.monotonic() < deadline, "the service never noticed it was behind"
            await asyncio.sleep(0.1)
        assert lookup.status_code == 503, lookup.text
        assert "behind" in lookup.json()["detail"]
        assert lookup.headers["retry-after"]
        checked = await client.post(
            "/v1/suppressions/check", json={"emails": ["late@example.org"]}, headers=AUTH
        )
        assert checked.status_code == 503
        ready = (await client.get("/readyz", headers=AUTH)).json()
        assert ready["ready"] is False
        assert (
            "the projector here is paused: ledger write failed: the disk is full"
            in (ready["problems"]["projector_caught_up"])
        )
        assert (
            "bounceledger_projection_behind 1.0"
            in (await client.get("/metrics", headers=AUTH)).text
        )
        projector.step = folding
        deadline = time.monotonic() + 10
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the service never caught up"
            await asyncio.sleep(0.1)
        got = await verdict(client, "late@example.org")
        assert (got["suppressed"], got["reason"]) == (True, "complaint")
