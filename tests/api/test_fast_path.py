"""The webhook fast path (api/fastpath.py) answers exactly as the litestar route does:
the same requests, sent to an app with it and to one without, get the same status,
headers and body, and leave the same ledger — and the fast path did answer them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.settings import load_settings
from ledger import open_store
from tests.api.helpers import FORM, WEBHOOK, event, hard_bounce
from tests.conftest import API_KEY, SECRET

pytestmark = pytest.mark.both_backends

FORM_BODY = (
    b"event=bounce&bounce=hard&id=f1&rcpt=someone%40example.org&time=2026-05-04T10%3A15%3A02Z"
)

# (method, path, query token, headers, body): accepted ones and every kind of refusal
REQUESTS: list[tuple[str, str, str | None, dict[str, str], bytes]] = [
    ("POST", WEBHOOK, SECRET, {"content-type": FORM}, FORM_BODY),
    ("POST", WEBHOOK, SECRET, {"content-type": FORM}, FORM_BODY),  # a redelivery
    ("POST", WEBHOOK, None, {"authorization": f"Bearer {SECRET}"}, hard_bounce("a@example.org")),
    ("POST", WEBHOOK, SECRET, {}, json.dumps([event("open", "", "o1")]).encode()),  # unattributed
    ("POST", WEBHOOK, SECRET, {}, json.dumps(event("delivered", "b@example.org", "d1")).encode()),
    ("POST", WEBHOOK, "wrong-secret", {}, hard_bounce("c@example.org")),
    ("POST", WEBHOOK, None, {}, hard_bounce("c@example.org")),
    ("POST", WEBHOOK, SECRET, {}, b"not a form, not JSON"),  # 400, kept aside once
    ("POST", WEBHOOK, SECRET, {}, b""),
    ("POST", WEBHOOK, SECRET, {}, b"x" * 5000),  # over the body limit below: 413
    ("POST", "/v1/webhooks/sendgrid/events", None, {}, b"[]"),  # no secret set: 404
    ("POST", "/v1/webhooks/nobody/events", SECRET, {}, b"{}"),
    ("POST", "/v1/webhooks//events", SECRET, {}, b"{}"),
    ("GET", WEBHOOK, SECRET, {}, b""),
    ("POST", WEBHOOK + "/", SECRET, {}, hard_bounce("d@example.org")),
    *[("POST", WEBHOOK, f"wrong-{n}", {}, b"{}") for n in range(4)],  # over the throttle
    ("POST", WEBHOOK, SECRET, {}, hard_bounce("e@example.org")),  # now refused: 429
]


async def _answers(
    make_client: Callable[..., Any], db: Path | str, *, fast: bool
) -> tuple[list[tuple[Any, ...]], int, int]:
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": str(db),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "BOUNCELEDGER_MAX_BODY_BYTES": "4096",
            "BOUNCELEDGER_AUTH_FAILURES": "5",
        }
    )
    answers = []
    async with make_client(settings=settings, fast_webhooks=fast) as client:
        for method, path, token, headers, body in REQUESTS:
            params = {"token": token} if token else None
            response = await client.request(
                method, path, params=params, headers=headers, content=body or None
            )
            answers.append((response.status_code, response.headers.multi_items(), response.content))
        answered = client.app.state.fast_webhooks.answered if fast else 0
    store = await open_store(db)
    try:
        receipts = await store.last_seq()
    finally:
        await store.close()
    return answers, answered, receipts


async def test_the_fast_path_answers_as_the_route_does(
    make_client: Callable[..., Any], tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        fast_db, route_db = (
            request.getfixturevalue("pg_url"),
            request.getfixturevalue("pg_fresh_url")(),
        )
    else:
        fast_db, route_db = tmp_path / "fast.db", tmp_path / "route.db"
    fast, answered, fast_receipts = await _answers(make_client, fast_db, fast=True)
    route, _, route_receipts = await _answers(make_client, route_db, fast=False)
    for sent, by_fast, by_route in zip(REQUESTS, fast, route, strict=True):
        assert by_fast == by_route, sent[:3]
    statuses = [status for status, _, _ in fast]
    assert {200, 400, 403, 404, 405, 413, 429} <= set(statuses)
    assert answered == statuses.count(200) - 1  # every 200 but the one to the trailing /
    assert fast_receipts == route_receipts == 5
