"""The service answers end to end: a hard bounce posted is suppressed when asked."""

from __future__ import annotations

from typing import Any

from tests.conftest import AUTH, SECRET, fixture_bytes, settle


async def test_form_hard_bounce_is_suppressed_end_to_end(client: Any) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    response = await client.post(
        "/v1/webhooks/smtp2go/events",
        params={"token": SECRET},
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json() == {"seq": 1, "events": 1, "duplicate": False}
    await settle(client)
    status = await client.get("/v1/suppressions/Nobody@Example.org", headers=AUTH)
    assert status.status_code == 200
    assert status.json()["suppressed"] is True
    assert status.json()["reason"] == "hard_bounce"
    assert status.json()["receipt"] == 1
