"""Helpers shared by the API tests: posting webhooks, reading state, capturing logs."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import AUTH, SECRET

WEBHOOK = "/v1/webhooks/smtp2go/events"
FORM = "application/x-www-form-urlencoded"


def basic(user: str, password: str) -> dict[str, str]:
    credential = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credential}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(kind: str, rcpt: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """One SMTP2GO JSON event."""
    return {
        "event": kind,
        "id": event_id,
        "email_id": f"mail-{event_id}",
        "time": "2026-05-04T10:15:02Z",
        "rcpt": rcpt,
        **fields,
    }


def hard_bounce(rcpt: str, event_id: str | None = None) -> bytes:
    return json.dumps(event("bounce", rcpt, event_id or f"hb-{rcpt}", bounce="hard")).encode()


async def post_webhook(
    client: Any,
    body: bytes,
    *,
    content_type: str | None = "application/json",
    token: str | None = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a body to the SMTP2GO door (token in the query unless token=None)."""
    sent = dict(headers or {})
    if content_type is not None:
        sent["content-type"] = content_type
    params = {"token": token} if token is not None else None
    return await client.post(WEBHOOK, content=body, params=params, headers=sent)


async def receipts(client: Any) -> int:
    """How many receipts the ledger holds, from /healthz."""
    response = await client.get("/healthz", headers=AUTH)
    assert response.status_code == 200
    return int(response.json()["receipts"])


async def status(client: Any, email: str) -> dict[str, Any]:
    response = await client.get(f"/v1/suppressions/{email}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


@contextlib.contextmanager
def all_logs_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Route every logger's records, at DEBUG, into caplog.

    Call inside a started app: litestar's logging setup replaces the root handlers
    (dropping caplog's) and gives `litestar` its own non-propagating handler.
    """
    names = ["", "litestar", "bounceledger", "uvicorn", "aiosqlite"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.level, lg.handlers[:]) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        if caplog.handler not in lg.handlers and (lg.name == "root" or not lg.propagate):
            lg.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for lg, level, handlers in saved:
            lg.setLevel(level)
            lg.handlers[:] = handlers
