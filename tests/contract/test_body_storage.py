"""Body storage's contract, on every backend: bodies kept compressed beside the chain (a
dictionary trained per source once a source has enough of them), every body read back
byte for byte, and `verify` naming a receipt whose body is missing or unreadable."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time

import pytest

from ledger import BodyMissing, NewReceipt, Store, receipts
from ledger import body_store as body_storage
from ledger.bodies import MIN_SAMPLES, PLAIN, ZSTD, dictionary_name
from ledger.group import MAX_BATCH
from tests.contract.backends import Ledgers, OnPostgres, OnSQLite
from tests.logs import kept_records


def webhook(n: int, source: str = "smtp2go") -> NewReceipt:
    body = json.dumps(
        {
            "event": ["delivered", "bounce", "spam"][n % 3],
            "rcpt": f"person{n}@example{n % 7}.org",
            "email_id": f"1q{n:08d}-abcdef-{n * 7919 % 100000:05d}",
            "context": "smtp;550 5.1.1 <someone@example.org>: Recipient address rejected",
            "host": f"mail.{source}.com [203.0.113.7]",
        }
    ).encode()
    return NewReceipt(
        source=source,
        received_at=1_780_000_000_000_000 + n,
        content_type="application/json",
        body=body,
        headers={"user-agent": "contract-test"},
    )


NOISE = b"".join(hashlib.sha256(b"%d" % n).digest() for n in range(8))  # does not compress


async def stored_rows(store: Store) -> dict[int, tuple[int, int | None, int, int]]:
    """seq -> (codec, dictionary, raw size, stored size), as body storage holds them."""
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT seq, codec, dictionary, size, length(data) FROM bodies")
    return {int(r[0]): (int(r[1]), r[2], int(r[3]), int(r[4])) for r in rows}


class BodyStorageContract:
    async def test_every_body_comes_back_byte_for_byte(self, ledgers: Ledgers) -> None:
        store = await ledgers.fresh()
        bodies = [b"", b"x", NOISE, webhook(1).body, "jörg €".encode(), bytes(range(256)) * 40]
        for n, body in enumerate(bodies):
            await store.append(NewReceipt(source="ses", received_at=n, content_type="", body=body))
        assert [receipt.body for receipt in await store.read()] == bodies
        assert [(await store.get(n + 1)).body for n in range(len(bodies))] == bodies  # type: ignore[union-attr]
        assert await store.verify() == (len(bodies), None)

    async def test_bodies_are_compressed_and_what_does_not_compress_is_kept_plain(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.fresh()
        text, noise = (
            await store.append(webhook(1)),
            await store.append(
                NewReceipt(source="ses", received_at=2, content_type="", body=NOISE)
            ),
        )
        rows = await stored_rows(store)
        codec, dictionary, size, kept = rows[text.seq]
        assert (codec, dictionary, size) == (ZSTD, None, len(webhook(1).body))
        assert kept < size
        assert rows[noise.seq] == (PLAIN, None, len(NOISE), len(NOISE))
        stats = await store.body_stats()
        assert (stats.bodies, stats.plain, stats.dictionaries) == (2, 1, 0)
        assert stats.raw_bytes == len(webhook(1).body) + len(NOISE)
        assert stats.stored_bytes == kept + len(NOISE)

    async def test_digests_name_each_receipt_s_body_digest_and_source(
        self, ledgers: Ledgers
    ) -> None:
        """What an erasure checks its record against, and compresses a redacted copy for."""
        store = await ledgers.fresh()
        one = await store.append(webhook(1))
        two = await store.append(webhook(2, source="mailgun"))
        async with store.reading() as tx:
            held = await receipts.digests(tx, [one.seq, two.seq, two.seq + 1])
        assert held == {
            one.seq: (hashlib.sha256(webhook(1).body).digest(), "smtp2go"),
            two.seq: (hashlib.sha256(webhook(2, source="mailgun").body).digest(), "mailgun"),
        }

    async def test_a_trained_dictionary_compresses_its_source_s_new_bodies(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.open("trained")
        for n in range(MIN_SAMPLES):
            await store.append(webhook(n))
        assert await store.train_bodies(["mailgun", "smtp2go"]) == {
            "mailgun": False,  # no bodies of its own to train on
            "smtp2go": True,  # trained all the same
        }
        later = await store.append(webhook(10_000))
        other = await store.append(webhook(10_001, source="mailgun"))
        rows = await stored_rows(store)
        trained = rows[later.seq][1]
        assert trained is not None  # the new smtp2go body names the dictionary it needs
        assert rows[other.seq][1] is None  # another source's body does not use it
        assert all(rows[seq][1] is None for seq in range(1, MIN_SAMPLES + 1))
        assert rows[later.seq][3] < rows[1][3]  # smaller than without the dictionary
        assert (await store.body_stats()).dictionaries == 1
        # a reopened store keeps compressing with it, and every body reads back
        await ledgers.close(store)
        again = await ledgers.open("trained")
        newer = await again.append(webhook(10_002))
        assert (await stored_rows(again))[newer.seq][1] == trained
        assert (await again.get(newer.seq)).body == webhook(10_002).body  # type: ignore[union-attr]
        assert (await again.get(later.seq)).body == webhook(10_000).body  # type: ignore[union-attr]
        assert await again.verify() == (MIN_SAMPLES + 3, None)

    async def test_a_dictionary_is_trained_by_itself_once_enough_bodies_are_stored(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(body_storage, "TRAIN_AFTER", MIN_SAMPLES)
        store = await ledgers.fresh()
        for n in range(MIN_SAMPLES - 1):
            await store.append(webhook(n))
        await asyncio.sleep(0.05)
        assert (await store.body_stats()).dictionaries == 0  # not yet due
        await store.append(webhook(MIN_SAMPLES))
        for _ in range(200):  # trained in the background after the commit
            if (await store.body_stats()).dictionaries:
                break
            await asyncio.sleep(0.05)
        assert (await store.body_stats()).dictionaries == 1
        after = await store.append(webhook(99_999))
        assert (await stored_rows(store))[after.seq][1] is not None

    async def test_a_copied_ledger_trains_its_dictionaries_as_it_goes(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An import or a migration appends verbatim, in one transaction: a source's
        dictionary is trained inside it once enough of its bodies are copied."""
        monkeypatch.setattr(body_storage, "TRAIN_AFTER", MIN_SAMPLES)
        count = MAX_BATCH + MIN_SAMPLES  # the copy goes in chunks of MAX_BATCH
        source = await ledgers.fresh()
        for start in range(0, count, 200):  # group-committed, 200 at a time
            await asyncio.gather(*(source.append(webhook(n)) for n in range(start, start + 200)))
        copied = await source.read(limit=10_000)
        target = await ledgers.fresh()
        assert await target.append_verbatim(copied) == len(copied) >= count
        rows = await stored_rows(target)
        assert rows[1][1] is None  # before the dictionary
        assert rows[len(copied)][1] is not None  # compressed with it
        assert (await target.body_stats()).dictionaries == 1
        assert await target.read(limit=10_000) == copied
        assert await target.verify() == (len(copied), None)

    async def test_verify_names_a_receipt_whose_body_is_missing(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("missing")
        for n in range(4):
            await store.append(webhook(n))
        await ledgers.execute_raw("missing", "DELETE FROM bodies WHERE seq = 3")
        assert await store.verify() == (2, 3)
        with pytest.raises(BodyMissing, match="receipt 3: its body is not in body storage"):
            await store.get(3)

    async def test_verify_names_a_receipt_whose_dictionary_is_missing(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.open("no-dictionary")
        await store.append(webhook(0, source="ses"))
        for n in range(1, MIN_SAMPLES + 1):
            await store.append(webhook(n))
        await store.train_bodies(["smtp2go"])
        needs = await store.append(webhook(5_000))
        ident = (await stored_rows(store))[needs.seq][1]
        assert ident is not None
        await ledgers.execute_raw("no-dictionary", "DELETE FROM body_dictionaries")
        assert await store.verify() == (needs.seq - 1, needs.seq)
        # read by a process that never saw the dictionary: the error names it
        await ledgers.close(store)
        body_storage._LOADED.clear()
        again = await ledgers.open("no-dictionary")
        expected = f"receipt {needs.seq}: the body needs dictionary {dictionary_name(ident)}"
        with pytest.raises(BodyMissing, match=expected):
            await again.get(needs.seq)

    async def test_a_body_changed_in_storage_is_named(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("changed")
        for n in range(3):
            await store.append(webhook(n))
        await ledgers.execute_raw(
            "changed",
            "UPDATE bodies SET codec = 0, dictionary = NULL, data = substr(data, 1, 1) "
            "WHERE seq = 2",
        )
        assert await store.verify() == (1, 2)

    async def test_a_reopened_store_trains_on_request_and_reads_every_dictionary_back(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.open("two-sources")
        for n in range(MIN_SAMPLES):
            await store.append(webhook(n))
            await store.append(webhook(n, source="mailgun"))
        await ledgers.close(store)
        again = await ledgers.open("two-sources")  # counts nothing stored before it opened
        assert await again.train_bodies(["smtp2go", "mailgun"]) == {
            "smtp2go": True,
            "mailgun": True,
        }
        async with again.reading() as tx:
            rows = await tx.fetch("SELECT source, created_at, samples FROM body_dictionaries")
        expected = [("mailgun", MIN_SAMPLES), ("smtp2go", MIN_SAMPLES)]
        assert sorted((r[0], r[2]) for r in rows) == expected
        for row in rows:  # microseconds since the epoch, as every time in the ledger
            assert isinstance(row[1], int)
            assert abs(row[1] - time.time_ns() // 1000) < 600 * 1_000_000
        first = await again.append(webhook(20_000))
        await again.append(webhook(20_000, "mailgun"))
        # a process that never saw either dictionary reads both in one go
        body_storage._LOADED.clear()
        bodies = await again.read(after_seq=first.seq - 1)
        assert [r.body for r in bodies] == [webhook(20_000).body, webhook(20_000, "mailgun").body]
        body_storage._LOADED.clear()
        async with again.reading() as tx:
            newest = await receipts.newest_bodies(tx, source="mailgun", limit=1)
        assert newest == [(first.seq + 1, webhook(20_000, "mailgun").body)]
        body_storage._LOADED.clear()
        listed = await again.list_receipts(after_seq=first.seq - 1, source="mailgun")
        assert [r.body for r in listed] == [webhook(20_000, "mailgun").body]

    async def test_a_failed_training_is_logged_and_bodies_are_stored_all_the_same(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ledger import sqlstore

        def broken(samples: object) -> bytes:
            raise RuntimeError("zstd ran out of memory")

        monkeypatch.setattr(body_storage, "TRAIN_AFTER", 3)
        monkeypatch.setattr(sqlstore, "train_dictionary", broken)
        store = await ledgers.fresh()
        with kept_records("bounceledger.ledger", logging.ERROR) as records:
            for n in range(6):
                await store.append(webhook(n))
            for _ in range(100):
                if records:
                    break
                await asyncio.sleep(0.02)
        assert [record.getMessage() for record in records][:1] == [
            "training a body dictionary failed"
        ]
        assert [r.body for r in await store.read()] == [webhook(n).body for n in range(6)]
        assert (await store.body_stats()).dictionaries == 0

    async def test_a_source_too_small_to_train_on_is_due_again_after_as_many_more(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(body_storage, "TRAIN_AFTER", 3)
        store = await ledgers.fresh()
        for n in range(3):
            await store.append(webhook(n))
        assert await store.train_bodies() == {"smtp2go": False}  # 3 < MIN_SAMPLES
        for n in range(3, 5):
            await store.append(webhook(n))
        assert store.packer.untrained() == []
        await store.append(webhook(5))
        assert store.packer.untrained() == ["smtp2go"]

    async def test_closing_a_store_stops_a_training_in_flight(
        self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ledger import sqlstore

        started = asyncio.Event()

        async def slow_train_bodies(self: object, sources: object = None) -> dict[str, bool]:
            started.set()
            await asyncio.sleep(30)
            raise AssertionError("never reached: the store was closed")

        monkeypatch.setattr(body_storage, "TRAIN_AFTER", 2)
        monkeypatch.setattr(sqlstore.SqlStore, "train_bodies", slow_train_bodies)
        store = await ledgers.open("closing")
        with kept_records("bounceledger.ledger", logging.ERROR) as records:
            for n in range(2):
                await store.append(webhook(n))
            await asyncio.wait_for(started.wait(), 5)
            await asyncio.wait_for(ledgers.close(store), 5)  # neither hangs nor raises
            await asyncio.sleep(0.05)
        assert records == []

    async def test_a_new_process_opening_the_ledger_compresses_with_its_dictionary(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.open("cold")
        for n in range(MIN_SAMPLES):
            await store.append(webhook(n))
        await store.train_bodies(["smtp2go"])
        await ledgers.close(store)
        body_storage._LOADED.clear()  # as a process that never read the dictionary
        again = await ledgers.open("cold")
        newer = await again.append(webhook(30_000))
        assert (await stored_rows(again))[newer.seq][1] is not None
        assert (await again.get(newer.seq)).body == webhook(30_000).body  # type: ignore[union-attr]


class TestSQLiteBodyStorage(OnSQLite, BodyStorageContract):
    """Body storage on SQLite."""


@pytest.mark.postgres
class TestPostgresBodyStorage(OnPostgres, BodyStorageContract):
    """Body storage on PostgreSQL."""
