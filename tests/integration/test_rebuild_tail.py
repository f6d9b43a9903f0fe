"""A rebuild while the server ingests loses nothing: receipts appended (and folded under
the old policy) while the rebuild reads, and receipts not yet folded at all, both end up
in the swapped-in projection under the new policy."""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt
from ledger.sqlite import SQLiteStore
from projections import Policy, Projector, queries, rebuild
from projections.policy import policy_hash
from tests.properties.test_invariants import dump

# the module, not the function `projections.rebuild` that shadows it as an attribute
rebuild_module = importlib.import_module("projections.rebuild")

OLD = Policy(soft_bounce_threshold=3)
NEW = Policy(soft_bounce_threshold=2)


def soft(rcpt: str, n: int) -> NewReceipt:
    body = json.dumps(
        {"event": "bounce", "bounce": "soft", "rcpt": rcpt, "id": f"{rcpt}-{n}",
         "time": f"2026-05-0{n}T10:00:00Z"}
    ).encode()  # fmt: skip
    return NewReceipt(source="smtp2go", received_at=n, content_type="application/json", body=body)


async def test_receipts_arriving_during_a_rebuild_are_folded_under_the_new_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        for rcpt in ("a@example.org", "b@example.org", "c@example.org"):
            await store.append(soft(rcpt, 1))
        server = Projector(store, OLD)  # the running server, on the old policy
        await server.start()
        await server.catch_up()

        original = rebuild_module._indexed_groups

        async def ingesting(*args: Any) -> AsyncIterator[Any]:
            first = True
            async for group in original(*args):
                yield group
                if first:  # meanwhile the server takes more webhooks…
                    first = False
                    await store.append(soft("a@example.org", 2))  # folded under OLD
                    await store.append(soft("d@example.org", 1))
                    await server.catch_up()
                    await store.append(soft("b@example.org", 2))  # not folded at all

        monkeypatch.setattr(rebuild_module, "_indexed_groups", ingesting)
        report = await rebuild(store, NEW)
        assert report.receipts == 3  # what it read before the tail

        digest = policy_hash(NEW)
        emails = [f"{x}@example.org" for x in "abcd"]
        after = {email: await queries.status(store, email, digest) for email in emails}
        live = await dump(store)
        monkeypatch.setattr(rebuild_module, "_indexed_groups", original)
        await rebuild(store, NEW)  # quiescent: the reference
        assert await dump(store) == live
        assert live["meta"][0][0] == await store.last_seq() == 6
    finally:
        await store.close()
    # under NEW (threshold 2) the two soft bounces of a and of b suppress; c and d have one
    assert {e for e, s in after.items() if s.suppressed} == {"a@example.org", "b@example.org"}
