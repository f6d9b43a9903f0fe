"""One receipt never stops the projection (issue 18, finding N1): a receipt whose facts
cannot be folded — a value the database refuses, a fold that fails — is set aside with
its reason, a log line and the `on_set_aside` hook, and the projector goes on with the
next receipt; an unreachable database stops the step instead (nothing is set aside)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger import NewReceipt, Store, StoreUnavailable, open_store
from projections import Projector, views
from projections.facts import Keyed, derive
from projections.mapping import Mapper
from projections.queries import suppression_counts
from tests.api.helpers import hard_bounce

pytestmark = pytest.mark.both_backends


def _bounce(address: str) -> NewReceipt:
    return NewReceipt(
        source="smtp2go",
        received_at=time.time_ns() // 1000,
        content_type="application/json",
        body=hard_bounce(address),
        headers={},
    )


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(db_path)
    try:
        yield opened
    finally:
        await opened.close()


async def _set_aside(store: Store, seq: int) -> str | None:
    async with store.reading() as tx:
        return await views.set_aside_reason(tx, seq)


async def test_a_receipt_whose_fold_fails_is_set_aside_and_the_next_ones_are_folded(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    projector = Projector(store)
    await projector.start()
    heard: list[tuple[int, str]] = []
    projector.on_set_aside = lambda seq, reason: heard.append((seq, reason))
    original = Mapper.fold_facts

    def failing(self: Mapper, email: str, *args: Any, **kwargs: Any) -> Any:
        if email == "boom@example.com":
            raise RuntimeError("a fold that fails")
        return original(self, email, *args, **kwargs)

    monkeypatch.setattr(Mapper, "fold_facts", failing)
    for address in ("one@example.com", "boom@example.com", "two@example.com"):
        await store.append(_bounce(address))
    with caplog.at_level(logging.ERROR, logger="bounceledger.projector"):
        assert await projector.step() == 3
    assert projector.projected_seq == 3
    assert (await suppression_counts(store)).get("hard_bounce") == 2
    reason = await _set_aside(store, 2)
    assert reason == "RuntimeError: a fold that fails"
    assert heard == [(2, reason)]
    assert await _set_aside(store, 1) is None
    assert any("receipt 2 set aside" in record.getMessage() for record in caplog.records)
    # the projection goes on: a later receipt is folded as usual
    await store.append(_bounce("three@example.com"))
    assert await projector.step() == 1
    assert (await suppression_counts(store)).get("hard_bounce") == 3


async def test_a_value_the_database_refuses_sets_aside_its_receipt_alone(
    store: Store, backend: str
) -> None:
    """PostgreSQL's TEXT refuses U+0000 (SQLite stores it): the receipt whose fact holds
    one is set aside there, and the receipts around it are folded on both backends."""
    projector = Projector(store)
    await projector.start()
    before = await store.append(_bounce("before@example.com"))
    odd = await store.append(_bounce("odd@example.com"))
    stored = await store.get(odd.seq)
    assert stored is not None
    # what a decoder bug would hand over: a recipient no database should have been given
    crafted = [
        Keyed(k.key, msgspec.structs.replace(k.fact, recipient="nul\x00user@example.com"))
        for k in derive(stored)
    ]
    projector.hand_over(before.seq, derive((await store.get(before.seq)) or stored))
    projector.hand_over(odd.seq, crafted)
    after = await store.append(_bounce("after@example.com"))
    assert await projector.step() == 3
    assert projector.projected_seq == after.seq
    reason = await _set_aside(store, odd.seq)
    if backend == "postgresql":
        assert reason is not None
        assert "refused a value" in reason
        assert (await suppression_counts(store)).get("hard_bounce") == 2
    else:
        assert reason is None
        assert (await suppression_counts(store)).get("hard_bounce") == 3


async def test_an_unreachable_database_sets_nothing_aside(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    projector = Projector(store)
    await projector.start()
    await store.append(_bounce("one@example.com"))

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the database is down")

    monkeypatch.setattr(views, "plan", unavailable)
    with pytest.raises(StoreUnavailable):
        await projector.step()
    assert projector.projected_seq == 0
    monkeypatch.undo()
    assert await projector.step() == 1
    assert await _set_aside(store, 1) is None
