"""The fact index's layout (projections/views.py): keyed by (recipient, key), with no index
on the key alone; a recipient's facts read in history order."""

from __future__ import annotations

from pathlib import Path

from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, views
from projections.facts import Fact, Keyed, dedup_key
from projections.mapping import Mapper
from projections.projector import ensure_schema


def _keyed(n: int, seq: int) -> Keyed:
    """Event `e<n>` about recipient n: the same key whichever receipt carries it."""
    recipient = f"r{n:04d}@example.org"
    fact = Fact(
        source="smtp2go",
        raw_kind="delivered",
        recipient=recipient,
        at=1_780_000_000_000_000 + n,
        seq=seq,
        ord=n,
        event_id=f"e{n}",
    )
    return Keyed(dedup_key("smtp2go", fact.event_id, recipient), fact)


async def test_indexed_keys_are_echoes_across_lookup_chunks(tmp_path: Path) -> None:
    """More recipients than one lookup statement holds (views._CHUNK), half of their facts
    indexed already: exactly those are echoes, the rest are new rows."""
    count = 2 * views._CHUNK + 50
    indexed = range(0, count, 2)
    mapper = Mapper(DEFAULT_POLICY)
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        async with store.writing() as tx:
            await ensure_schema(tx)
            await views.apply(tx, [_keyed(n, seq=1) for n in indexed], mapper)
        async with store.reading() as tx:
            planned = await views.plan(tx, [_keyed(n, seq=2) for n in range(count)], mapper)
    finally:
        await store.close()
    assert sorted(planned.echoes) == [(f"r{n:04d}@example.org", 2) for n in indexed]
    assert sorted(row[0] for row in planned.rows) == [
        f"r{n:04d}@example.org" for n in range(count) if n % 2
    ]


async def test_a_recipients_facts_come_back_whole_in_history_order(tmp_path: Path) -> None:
    """Written in another order than history's (and than the keys'), read in history's."""
    facts = [
        Fact(source="smtp2go", raw_kind=kind, recipient="a@example.org", at=at, seq=seq,
             ord=order, event_id=f"e{seq}.{order}", diagnostic="550 5.1.1")
        for kind, at, seq, order in (
            ("bounce", 30, 4, 1), ("delivered", 10, 9, 0), ("bounce", 30, 4, 0),
            ("spam", 20, 2, 0), ("delivered", 30, 3, 5),
        )
    ]  # fmt: skip
    keyed = [Keyed(dedup_key("smtp2go", f.event_id, f.recipient), f) for f in facts]
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        async with store.writing() as tx:
            await ensure_schema(tx)
            await tx.executemany(views.INSERT_FACTS, [views.fact_row(k) for k in keyed])
        async with store.reading() as tx:
            read = await views.load_facts(tx, "a@example.org")
            until = await views.load_facts(tx, "a@example.org", until=20)
    finally:
        await store.close()
    assert read == sorted(facts, key=lambda fact: fact.position)
    assert until == [facts[1], facts[3]]
