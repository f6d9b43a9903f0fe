"""Baseline `naive`: the usual hand-written handler — one aiosqlite INSERT and COMMIT per
request, WAL, synchronous=FULL, nothing else (no batching, no hashing, no checks).

The connection is in autocommit mode, so each INSERT is its own transaction and is
committed (the WAL fsynced, under FULL) before `execute` returns: one commit per request,
never shared with another request's.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator

import aiosqlite
from litestar import Litestar, Request, post

DB = os.environ.get("BENCH_NAIVE_DB", "naive.db")
_db: aiosqlite.Connection | None = None


@contextlib.asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    global _db
    _db = await aiosqlite.connect(DB, isolation_level=None)
    await _db.execute("PRAGMA journal_mode=WAL")
    await _db.execute("PRAGMA synchronous=FULL")
    await _db.execute(
        "CREATE TABLE IF NOT EXISTS receipts (id INTEGER PRIMARY KEY, received_at INTEGER, "
        "content_type TEXT, body BLOB)"
    )
    try:
        yield
    finally:
        await _db.close()


@post("/v1/webhooks/{provider:str}/events", status_code=200)
async def receive(provider: str, request: Request) -> dict[str, int]:  # type: ignore[type-arg]
    assert _db is not None
    body = await request.body()
    cursor = await _db.execute(
        "INSERT INTO receipts (received_at, content_type, body) VALUES (?, ?, ?)",
        (time.time_ns() // 1000, request.headers.get("content-type", ""), body),
    )
    return {"seq": cursor.lastrowid or 0}


app = Litestar(route_handlers=[receive], lifespan=[lifespan], debug=False, logging_config=None)
