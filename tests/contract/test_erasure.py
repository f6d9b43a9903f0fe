"""Erasure's contract, on every backend: the person's bodies are removed or redacted, the
projection forgets the address, its keyed hash stays suppressed (through a rebuild too),
`verify` passes and names the record, and a body changed without a record breaks it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import NewReceipt, Store, export_ledger, import_receipts
from projections import operator, queries
from projections.erasing import erase, erasures_in, reapply
from projections.erasure_history import erasures
from projections.erasure_keys import ErasureKey
from projections.errors import ErasureRefused
from projections.policy import DEFAULT_POLICY
from projections.projector import Projector
from projections.rebuild import rebuild
from tests.contract.backends import Ledgers, OnPostgres, OnSQLite

# the module (the package's `rebuild` is the function of the same name)
rebuilding = importlib.import_module("projections.rebuild")
KEY = ErasureKey(b"k" * 32)
NOW = 1_780_000_300_000_000
ALICE, BOB = "alice@example.org", "bob@example.net"
SENDGRID = Path(__file__).parent.parent / "fixtures/sendgrid/batch.json"


def smtp2go(n: int, email: str, event: str = "bounce") -> NewReceipt:
    body = {
        "event": event,
        "rcpt": email,
        "email_id": f"1q{n:06d}-alice-{n}",
        "context": f"smtp;550 5.1.1 <{email}>: Recipient address rejected",
        "bounce": "hard",
        "time": "2026-11-30T10:00:00Z",
    }
    return NewReceipt(
        source="smtp2go",
        received_at=1_780_000_000_000_000 + n,
        content_type="application/json",
        body=json.dumps(body).encode(),
    )


def sendgrid_pair() -> NewReceipt:
    """A SendGrid batch: a spam report from Alice and a bounce of Bob's, one POST."""
    events = [
        {"email": ALICE, "timestamp": 1780000000, "event": "spamreport",
         "sg_event_id": "c3BhbS0x", "sg_message_id": "m1.filter"},
        {"email": BOB, "timestamp": 1780000001, "event": "bounce", "type": "bounce",
         "reason": "550 5.1.1 unknown user", "status": "5.1.1",
         "sg_event_id": "Ym91bmNlLTE", "sg_message_id": "m2.filter"},
    ]  # fmt: skip
    return NewReceipt(
        source="sendgrid",
        received_at=1_780_000_100_000_000,
        content_type="application/json",
        body=json.dumps(events).encode(),
    )


async def projected(store: Store) -> Projector:
    projector = Projector(store, DEFAULT_POLICY)
    await projector.start()
    await projector.catch_up()
    return projector


async def history(store: Store) -> dict[str, int]:
    seqs = {"hard": (await store.append(smtp2go(1, ALICE))).seq}
    seqs["shared"] = (await store.append(sendgrid_pair())).seq
    seqs["other"] = (await store.append(smtp2go(2, "carol@example.com"))).seq
    seqs["manual"] = await operator.record(
        store,
        "suppress",
        ALICE,
        actor="local:test",
        note="asked by phone",
        at=1_780_000_200_000_000,
    )
    return seqs


async def database_text(store: Store) -> str:
    """Every text and blob of the tables an erasure touches, as one lowercase string."""
    out = []
    async with store.reading() as tx:
        for table in ("bodies", "recipient_facts", "recipient_state", "suppressions", "quarantine"):
            for row in await tx.fetch(f"SELECT * FROM {table}"):
                out += [
                    bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                    for v in row
                ]
    return "\n".join(out).lower()


class ErasureContract:
    async def test_an_erased_address_is_gone_and_stays_suppressed(self, ledgers: Ledgers) -> None:
        store = await ledgers.fresh()
        seqs = await history(store)
        projector = await projected(store)
        before = await queries.status(store, ALICE, projector.policy_hash, KEY)
        assert (before.reason, before.erased) == ("complaint", None)

        report = await erase(
            store,
            KEY,
            "Alice@Example.org",
            actor="local:dpo",
            note="DSAR 118",
            at=NOW,
            request="118",
        )
        assert report.removed == [seqs["hard"], seqs["manual"]]
        assert report.redacted == [seqs["shared"]]
        assert set(report.reasons) == {"complaint", "hard_bounce", "manual"}
        assert report.subject == KEY.subject(ALICE)
        assert ALICE not in await database_text(store)
        assert "asked by phone" not in await database_text(store)  # the operator's note

        await projector.follow()
        after = await queries.status(store, ALICE, projector.policy_hash, KEY)
        assert (after.suppressed, after.reason, after.erased) == (True, "complaint", report.subject)
        checked = await queries.check(store, projector.policy_hash, [ALICE, BOB], KEY)
        assert set(checked) == {ALICE, BOB}
        assert checked[BOB].reason == "hard_bounce"  # Bob's evidence is kept, redacted around
        # without the key, the address alone is not found: the keyed hash is
        assert not (await queries.status(store, ALICE, projector.policy_hash)).suppressed

        assert await store.verify() == (seqs["manual"] + 1, None)
        stats = await store.body_stats()
        assert (stats.erased, stats.erased_by) == (3, (report.seq,))
        assert (await store.get(seqs["hard"])).erased_by == report.seq  # type: ignore[union-attr]
        assert [entry.subject for entry in await erasures(store)] == [report.subject]

        # a rebuild re-derives everything from the bodies left: nothing comes back
        await rebuild(store, DEFAULT_POLICY)
        await projector.follow()
        again = await queries.status(store, ALICE, projector.policy_hash, KEY)
        assert (again.suppressed, again.reason) == (True, "complaint")
        assert (await queries.status(store, BOB, projector.policy_hash)).reason == "hard_bounce"
        assert ALICE not in await database_text(store)

    async def test_an_address_never_suppressed_is_kept_suppressed_by_the_erasure(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.fresh()
        await store.append(smtp2go(1, ALICE, event="delivered"))
        projector = await projected(store)
        report = await erase(store, KEY, ALICE, actor="dpo", note="asked to be forgotten", at=NOW)
        assert report.reasons == ()
        await projector.follow()
        status = await queries.status(store, ALICE, projector.policy_hash, KEY)
        assert (status.suppressed, status.reason) == (True, "manual")

    async def test_a_body_changed_without_a_record_breaks_verify(self, ledgers: Ledgers) -> None:
        store = await ledgers.fresh()
        seqs = await history(store)
        await projected(store)
        await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
        async with store.writing() as tx:  # claims an erasure of Carol's body, no record names it
            await tx.execute(
                "UPDATE bodies SET data = ?, size = 0, codec = 0, dictionary = NULL, erased_by = "
                "(SELECT MAX(erased_by) FROM bodies) WHERE seq = ?",
                b"",
                seqs["other"],
            )
        assert (await store.verify())[1] == seqs["other"]

    async def test_a_redacted_body_altered_afterwards_breaks_verify(self, ledgers: Ledgers) -> None:
        store = await ledgers.fresh()
        seqs = await history(store)
        await projected(store)
        await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
        async with store.writing() as tx:
            await tx.execute(
                "UPDATE bodies SET data = ?, size = 2, codec = 0, dictionary = NULL WHERE seq = ?",
                b"[]",
                seqs["shared"],
            )
        assert (await store.verify())[1] == seqs["shared"]

    async def test_an_export_carries_the_erasure(self, ledgers: Ledgers, tmp_path: Path) -> None:
        store = await ledgers.fresh()
        await history(store)
        await projected(store)
        report = await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
        path = tmp_path / "ledger.jsonl"
        with path.open("wb") as out:
            await export_ledger(store, out)
        assert ALICE.encode() not in path.read_bytes().lower()
        copy = await ledgers.open("copy")
        with path.open("rb") as source:
            await import_receipts(copy, source)
        assert await copy.verify() == (report.seq, None)
        projector = await projected(copy)
        status = await queries.status(copy, ALICE, projector.policy_hash, KEY)
        assert (status.suppressed, status.erased) == (True, report.subject)

    async def test_an_old_copy_restored_gets_the_erasures_made_since(
        self, ledgers: Ledgers, tmp_path: Path
    ) -> None:
        store = await ledgers.fresh()
        await history(store)
        path = tmp_path / "backup.jsonl"
        with path.open("wb") as out:  # the backup, taken before anyone was erased
            await export_ledger(store, out)
        await store.append(smtp2go(9, "zed@example.com"))  # after the backup
        await projected(store)
        first = await erase(store, KEY, ALICE, actor="dpo", note="DSAR 1", at=NOW)
        second = await erase(store, KEY, "zed@example.com", actor="dpo", note="DSAR 2", at=NOW)

        restored = await ledgers.open("restored")
        with path.open("rb") as source:
            await import_receipts(restored, source)
        projector = await projected(restored)
        assert (await queries.status(restored, ALICE, projector.policy_hash)).suppressed
        records = erasures_in(await store.read(0, 1000))
        reports = await reapply(restored, KEY, records, actor="dpo", at=NOW)
        assert [r.subject for r in reports] == [first.subject, second.subject]
        assert (len(reports[0].removed), reports[1].removed) == (2, [])  # zed: never here
        assert ALICE not in await database_text(restored)
        await projector.follow()
        for email, report in ((ALICE, first), ("zed@example.com", second)):
            status = await queries.status(restored, email, projector.policy_hash, KEY)
            assert (status.suppressed, status.erased) == (True, report.subject)
            assert {c.reason for c in status.causes} == set(report.reasons)
        assert await restored.verify() == (await restored.last_seq(), None)
        assert await reapply(restored, KEY, records, actor="dpo", at=NOW) == []
        other = ErasureKey(b"another-key-" * 3)
        with pytest.raises(ErasureRefused, match="another key"):
            await reapply(restored, other, records, actor="dpo", at=NOW)

    async def test_an_erasure_without_a_projection_or_a_note_is_refused(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.fresh()
        await store.append(smtp2go(1, ALICE))
        with pytest.raises(ErasureRefused, match="never been projected"):
            await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
        await projected(store)
        with pytest.raises(ErasureRefused, match="note"):
            await erase(store, KEY, ALICE, actor="dpo", note="  ", at=NOW)
        with pytest.raises(ErasureRefused, match="not an email address"):
            await erase(store, KEY, "nobody", actor="dpo", note="DSAR", at=NOW)
        assert await store.last_seq() == 1


class TestErasureOnSQLite(OnSQLite, ErasureContract):
    pass


@pytest.mark.postgres
class TestErasureOnPostgres(OnPostgres, ErasureContract):
    pass


class TestErasedFilesOnSQLite(OnSQLite):
    """What a search of the SQLite files themselves (the database and its WAL) finds."""

    async def test_no_trace_is_left_in_the_files(self, ledgers: Ledgers, tmp_path: Path) -> None:
        store = await ledgers.fresh()
        await history(store)
        await projected(store)
        await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
        files = [p for p in tmp_path.rglob("*") if p.is_file() and ".db" in p.name]
        assert files
        for path in files:
            text = path.read_bytes().lower()
            for needle in (b"alice@example.org", b"alice%40example.org", b"asked by phone"):
                assert needle not in text, (path.name, needle)


class TestErasureDuringARebuild(OnSQLite):
    """An erasure that commits while a rebuild folds: the rebuild read the address's facts
    before they went, and its swap must not bring the address's state back."""

    async def test_the_swap_drops_what_the_rebuild_folded_of_the_erased_address(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = await ledgers.fresh()
        await history(store)
        projector = await projected(store)
        compare = rebuilding._compare
        erased: list[int] = []

        async def erase_midway(store_: Store, batch: Any, *args: Any) -> Any:
            # the batch is folded (Alice's state in it), not yet written to the shadow
            if not erased and any(state.email == ALICE for state in batch):
                report = await erase(store, KEY, ALICE, actor="dpo", note="DSAR", at=NOW)
                erased.append(report.seq)
            return await compare(store_, batch, *args)

        monkeypatch.setattr(rebuilding, "_compare", erase_midway)
        await rebuild(store, DEFAULT_POLICY)
        assert erased
        await projector.follow()
        assert ALICE not in await database_text(store)
        status = await queries.status(store, ALICE, projector.policy_hash, KEY)
        assert (status.suppressed, status.erased) == (True, KEY.subject(ALICE))
        assert (await queries.status(store, BOB, projector.policy_hash)).reason == "hard_bounce"
