"""DELETE /v1/suppressions/{email}: the note may come as JSON or, for clients and proxies
that drop bodies on DELETE, as `?note=`; without one nothing is appended."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import hard_bounce, post_webhook, receipts, status
from tests.conftest import AUTH, settle

pytestmark = pytest.mark.both_backends  # every test here runs on SQLite and PostgreSQL

EMAIL = "gone@example.org"


async def _suppressed(client: Any) -> None:
    assert (await post_webhook(client, hard_bounce(EMAIL, "hb-1"))).status_code == 200
    await settle(client)
    assert (await status(client, EMAIL))["reason"] == "hard_bounce"


async def test_release_takes_the_note_from_the_query_string(client: Any) -> None:
    await _suppressed(client)
    response = await client.delete(
        f"/v1/suppressions/{EMAIL}", params={"note": "fixed by the user"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False


async def test_release_takes_the_note_from_a_json_body(client: Any) -> None:
    await _suppressed(client)
    response = await client.request(
        "DELETE", f"/v1/suppressions/{EMAIL}", json={"note": "fixed"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] is False


async def test_release_without_a_note_is_refused_and_appends_nothing(client: Any) -> None:
    await _suppressed(client)
    before = await receipts(client)
    for params in ({}, {"note": "   "}):
        response = await client.delete(f"/v1/suppressions/{EMAIL}", params=params, headers=AUTH)
        assert response.status_code == 400, response.text
    assert await receipts(client) == before
    assert (await status(client, EMAIL))["suppressed"] is True
