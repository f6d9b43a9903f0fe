"""A campaign check takes up to 50,000 addresses in one call, as documented — whatever
bound BOUNCELEDGER_MAX_BODY_BYTES puts on a webhook's body (a list of 50,000 ordinary
addresses is about 1.6 MB, over that bound's 1 MiB default: it was refused with 413)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import AUTH, settle


def addresses(count: int) -> list[str]:
    return [f"person-{n:06d}@mail.example.org" for n in range(count)]


async def test_fifty_thousand_addresses_are_checked_in_one_call(client: Any) -> None:
    assert (await post_webhook(client, hard_bounce("person-000042@mail.example.org"))).is_success
    await settle(client)
    body = json.dumps({"emails": addresses(50_000)}).encode()
    assert len(body) > 1024 * 1024  # over the default bound of a webhook's body
    got = await client.post(
        "/v1/suppressions/check",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert got.status_code == 200, got.text[:200]
    assert got.json()["checked"] == 50_000
    assert [hit["email"] for hit in got.json()["suppressed"]] == ["person-000042@mail.example.org"]


async def test_more_than_fifty_thousand_is_refused_with_the_bound(client: Any) -> None:
    got = await client.post(
        "/v1/suppressions/check", json={"emails": addresses(50_001)}, headers=AUTH
    )
    assert got.status_code == 400
    assert "50000" in got.text


async def test_a_large_check_without_a_key_is_refused_before_its_body_is_read(
    client: Any,
) -> None:
    got = await client.post("/v1/suppressions/check", json={"emails": addresses(50_000)})
    assert got.status_code == 401
