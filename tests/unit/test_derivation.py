"""A cold re-derivation in worker processes writes exactly the fact index, states and
suppressions that deriving on the rebuild's own thread writes — first copy of a key
included, across many chunks in flight at once."""

from __future__ import annotations

import importlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt
from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, derivation, rebuild

FORM = "application/x-www-form-urlencoded"
rebuilding = importlib.import_module("projections.rebuild")  # the module, not the function


def _receipts() -> list[NewReceipt]:
    """SMTP2GO forms and JSON: bounces, deliveries, and redeliveries of one event id with
    other bytes (a later copy of a key that must not win)."""
    made = []
    for n in range(240):
        rcpt = f"user{n % 150 % 37}%40example.org"
        kind = ("bounce&bounce=hard", "delivered", "bounce&bounce=soft", "spam")[n % 4]
        event_id = f"e{n % 150}"  # ids come back: the same key, other bytes
        if n % 3:
            at = f"2026-05-04T10%3A{n % 60:02d}%3A00Z"
            body = f"event={kind}&id={event_id}&rcpt={rcpt}&time={at}&n={n}"
            content_type = FORM
        else:
            event = kind.split("&")[0]
            body = json.dumps({"event": event, "bounce": "hard", "id": event_id,
                               "rcpt": rcpt.replace("%40", "@"), "n": n})  # fmt: skip
            content_type = "application/json"
        made.append(
            NewReceipt(
                source="smtp2go",
                received_at=1_777_000_000_000_000 + n * 1_000_000,  # the same in both
                content_type=content_type,
                body=body.encode(),
                headers={},
            )
        )
    return made


async def _rebuilt(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    store = await SQLiteStore.open(path)
    try:
        for receipt in _receipts():
            await store.append(receipt)
        await rebuild(store, DEFAULT_POLICY)
        async with store.reading() as tx:
            return {
                table: [tuple(row) for row in await tx.fetch(f"SELECT * FROM {table} ORDER BY 1")]
                for table in ("recipient_facts", "recipient_state", "suppressions")
            }
    finally:
        await store.close()


async def test_worker_processes_derive_what_this_thread_derives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilding, "_READ_CHUNK", 16)  # 15 chunks, three in flight
    serial = await _rebuilt(tmp_path / "serial.db")

    pools: list[ProcessPoolExecutor] = []

    class Pool(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(derivation, "PARALLEL_FROM", 0)
    monkeypatch.setattr(derivation.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(derivation, "ProcessPoolExecutor", Pool)
    parallel = await _rebuilt(tmp_path / "parallel.db")
    assert len(pools) == 1
    assert parallel == serial
    assert len(serial["recipient_facts"]) == 150  # one row per key: the first copy's
    assert serial["suppressions"]
