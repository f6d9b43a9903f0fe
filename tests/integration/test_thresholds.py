"""The soft-bounce threshold and its window, end to end: the window is inclusive.

Provenance: the first deliverability review (issue 12, L3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.doors import policy, post_smtp2go, smtp2go, verdict

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL


async def test_two_soft_bounces_exactly_one_window_apart_both_count(
    make_pclient: Callable[..., Any],
) -> None:
    """Issue 12, item 16 (review L3): the soft-bounce window is inclusive: two soft
    bounces exactly `7d` apart count within a `7d` window."""
    rules = 'soft_bounce_threshold = 2\nsoft_bounce_window = "7d"\n'
    address = "full.box@example.net"
    async with make_pclient(policy=policy(rules)) as client:
        for n, at in enumerate(["2026-05-01T10:00:00Z", "2026-05-08T10:00:00Z"]):
            await post_smtp2go(
                client,
                smtp2go("bounce", address, at, f"l3-{n}", bounce="soft", message="452 4.2.2"),
            )
        got = await verdict(client, address)
        assert (got["suppressed"], got["reason"], got["soft_bounces"]) == (
            True,
            "soft_bounce_threshold",
            2,
        )
