"""Erasure as properties over random histories (SMTP2GO deliveries, operator actions, and
Resend bounces naming several recipients), each on a fresh SQLite ledger:

- an erasure never lifts a suppression: the erased address stays suppressed, for every
  reason it had (for `manual` when it had none), also after a rebuild under any policy;
- it never changes another address's verdict, before or after a rebuild;
- nothing the ledger or the projection keeps names the address afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ledger.sqlite import SQLiteStore
from projections import Policy, Projector, queries, rebuild
from projections.erasing import erase
from projections.erasure_keys import ErasureKey
from projections.policy import DEFAULT_POLICY
from projections.redaction import mentions
from tests.properties.histories import ADDRESSES, POLICIES, Delivery, histories, resend_histories
from tests.properties.test_invariants import DB, scratch

KEY = ErasureKey(b"property-test-erasure-key-32-bytes!!")
Verdicts = dict[str, tuple[bool, frozenset[str]]]


async def verdicts(store: SQLiteStore, projector: Projector) -> Verdicts:
    found = await queries.statuses(store, list(ADDRESSES), projector.policy_hash, KEY)
    return {a: (s.suppressed, frozenset(c.reason for c in s.causes)) for a, s in found.items()}


async def traces(store: SQLiteStore, address: str) -> list[str]:
    """Where the ledger's bodies or the projection still mention `address`."""
    found = []
    async with store.reading() as tx:
        for table, column in (("bodies", "data"), ("recipient_facts", "fact")):
            for seq, value in await tx.fetch(f"SELECT seq, {column} FROM {table}"):
                if mentions(bytes(value), address):
                    found.append(f"{table} {seq}")
        for table in ("recipient_facts", "recipient_state", "suppressions"):
            rows = await tx.fetch(f"SELECT email FROM {table} WHERE email = ?", address)
            found += [table] * len(rows)
    for receipt in await store.read(0, 10_000):
        if mentions(receipt.body, address):
            found.append(f"receipt {receipt.seq}")
    return found


async def erased_history(
    deliveries: list[Delivery], victim: str, later: Policy
) -> tuple[Verdicts, Verdicts, Verdicts, list[str]]:
    with scratch() as directory:
        store = await SQLiteStore.open(Path(directory) / "ledger.db")
        try:
            for delivery in deliveries:
                await store.append(delivery.new_receipt())
            projector = Projector(store, DEFAULT_POLICY)
            await projector.start()
            await projector.catch_up()
            before = await verdicts(store, projector)
            await erase(
                store, KEY, victim, actor="property", note="erase", at=1_780_000_000_000_000
            )
            await projector.follow()
            after = await verdicts(store, projector)
            await rebuild(store, later)
            projector = Projector(store, later)
            await projector.start()
            rebuilt = await verdicts(store, projector)
            return before, after, rebuilt, await traces(store, victim)
        finally:
            await store.close()


@DB
@given(
    smtp2go=histories(collisions=False),
    resend=resend_histories(),
    victim=st.sampled_from(ADDRESSES[:4]),
    later=POLICIES,
)
def test_erasure_keeps_the_no_and_changes_no_one_else(
    smtp2go: list[Delivery], resend: list[Delivery], victim: str, later: Policy
) -> None:
    before, after, rebuilt, left = asyncio.run(erased_history([*smtp2go, *resend], victim, later))
    kept = before[victim][1] or frozenset({"manual"})
    assert after[victim] == (True, kept)
    assert rebuilt[victim][0]
    assert kept <= rebuilt[victim][1]  # a later policy may add, never lift
    others = [address for address in ADDRESSES if address != victim]
    assert {a: after[a] for a in others} == {a: before[a] for a in others}
    assert left == []
