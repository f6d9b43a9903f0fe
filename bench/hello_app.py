"""Baseline `hello`: a litestar route that reads the body and answers 200 — the framework's
limit on this machine. Same path shape as the webhook route, so routing costs the same."""

from __future__ import annotations

from litestar import Litestar, Request, post


@post("/v1/webhooks/{provider:str}/events", status_code=200)
async def receive(provider: str, request: Request) -> dict[str, int]:  # type: ignore[type-arg]
    body = await request.body()
    return {"bytes": len(body)}


app = Litestar(route_handlers=[receive], debug=False, logging_config=None)
