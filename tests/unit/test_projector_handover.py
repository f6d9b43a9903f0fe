"""The projector folds facts the door handed over without reading the bodies back, and
reads (and derives) them only for receipts whose facts it was not handed."""

from __future__ import annotations

import time
from pathlib import Path

from ledger import NewReceipt, Receipt
from ledger.sqlite import SQLiteStore
from projections import Projector, views
from projections.facts import derive
from projections.queries import suppression_counts
from tests.api.helpers import hard_bounce


class CountingStore(SQLiteStore):
    """The SQLite store, counting the receipts `read` returns."""

    bodies_read = 0

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]:
        receipts = await super().read(after_seq, limit)
        self.bodies_read += len(receipts)
        return receipts


def _bounce(n: int) -> NewReceipt:
    return NewReceipt(
        source="smtp2go",
        received_at=time.time_ns() // 1000,
        content_type="application/json",
        body=hard_bounce(f"gone{n}@example.com"),
        headers={},
    )


async def test_handed_over_facts_are_folded_without_reading_the_bodies(tmp_path: Path) -> None:
    store = await CountingStore.open(tmp_path / "ledger.db")
    try:
        projector = Projector(store)
        await projector.start()
        for n in range(5):
            result = await store.append(_bounce(n))
            stored = await store.get(result.seq)
            assert stored is not None
            projector.hand_over(result.seq, derive(stored))
        store.bodies_read = 0
        assert await projector.step() == 5
        assert store.bodies_read == 0
        for n in range(5, 8):  # appended, never handed over: read and derived
            await store.append(_bounce(n))
        assert await projector.step() == 3
        assert store.bodies_read == 3
        assert (await suppression_counts(store)).get("hard_bounce") == 8
        async with store.reading() as tx:
            assert await views.read_checkpoint(tx) == (8, projector.policy_hash)
    finally:
        await store.close()
