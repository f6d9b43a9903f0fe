"""What every SQL backend's store does the same way, written once over `Tx`.

A backend supplies its transactions (`reading`, `writing`, and `statement` for a read
that needs no snapshot), its group commit's batch append (`_write_batch`, `append_in`:
the hot path, shaped by its driver), and three hooks of the verbatim append: the head
(`_head`), the insert (`_insert`) and moving the head (`_advance`). Everything else — the
receipt reads, the chain check, tailing, the write probe — is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from ledger import body_store
from ledger import receipts as receipt_sql
from ledger.bodies import train as train_dictionary
from ledger.body_store import INSERT_BODIES, TRAIN_ON, Packer
from ledger.chain import BodyRow, ChainRow, IdentityRow, body_digest, verbatim_chunks, verify_chain
from ledger.erasures import confirmed, removals
from ledger.errors import AppendRejected
from ledger.group import MAX_BATCH, GroupCommitted
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sql import Tx
from ledger.store import Identify

log = logging.getLogger("bounceledger.ledger")


class SqlStore(GroupCommitted, ABC):
    """The shared half of a SQL store (see the module docstring); the methods' contracts
    are written on the protocols of ledger/store.py."""

    # The dictionary each source's new bodies are compressed with (each backend sets it
    # when it opens, from the database).
    packer: Packer
    _training: asyncio.Task[None] | None = None

    @abstractmethod
    def reading(self) -> AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    def writing(self, *, durable: bool = True) -> AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult: ...

    @abstractmethod
    async def _write_batch(self, batch: list[NewReceipt]) -> list[AppendResult]:
        """Chain, de-duplicate and commit one group commit's batch (durably)."""

    def statement(self) -> AbstractAsyncContextManager[Tx]:
        """A `Tx` for one read that needs no snapshot of its own (the backend may run it
        outside an explicit transaction); by default a snapshot."""
        return self.reading()

    # -- the verbatim append's hooks -------------------------------------------

    @abstractmethod
    async def _head(self, tx: Tx) -> tuple[int, bytes]:
        """The last sequence number and chain hash, held against other appenders to the
        end of the transaction."""

    async def _insert(
        self, tx: Tx, rows: list[tuple[Any, ...]], ids: list[IdentityRow], bodies: list[BodyRow]
    ) -> None:
        """Insert chained receipt rows, their door identities and their bodies."""
        await tx.executemany(
            f"INSERT INTO receipts ({receipt_sql.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        await tx.executemany(INSERT_BODIES, self.packer.rows(bodies))
        await tx.executemany(
            "INSERT INTO door_ids (source, identity, seq, body_sha256) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            ids,
        )

    async def _advance(self, tx: Tx, seq: int, chain_hash: bytes, appended: int) -> None:
        """After a verbatim append of `appended` receipts: the head is now `seq`."""

    # -- appends ---------------------------------------------------------------

    async def append_verbatim(
        self,
        receipts: Iterable[Receipt],
        progress: Callable[[int], None] | None = None,
        identify: Identify | None = None,
    ) -> int:
        count = 0
        async with self.writing() as tx:
            seq, prev_hash = await self._head(tx)
            for chunk in verbatim_chunks(receipts, seq, prev_hash, identify, MAX_BATCH):
                await self._insert(tx, chunk.rows, chunk.identities, chunk.bodies)
                await body_store.mark_erased(tx, chunk.erased)
                await self._train_within(tx)
                count += len(chunk.rows)
                if progress and chunk.rows:
                    progress(count)
                seq, prev_hash = chunk.seq, chunk.chain_hash
            await self._advance(tx, seq, prev_hash, count)
        self._group.appended.set()
        return count

    @contextlib.asynccontextmanager
    async def erasing(self) -> AsyncIterator[Tx]:
        async with self.writing() as tx:
            await self._head(tx)
            yield tx

    async def erase_in(
        self, tx: Tx, record: NewReceipt, changes: Mapping[int, bytes | None]
    ) -> AppendResult:
        named = {removed.seq: removed for removed in removals(record.body)}
        if set(named) != set(changes):
            raise AppendRejected("the erasure record does not name the bodies it changes")
        held = await receipt_sql.digests(tx, sorted(changes))
        for seq, kept in changes.items():
            digest = held[seq][0] if seq in held else b""
            want = None if kept is None else body_digest(kept).hex()
            if (named[seq].sha256, named[seq].kept) != (digest.hex(), want):
                raise AppendRejected(
                    f"the erasure record does not name receipt {seq}'s body as it is stored"
                )
        result = await self.append_in(tx, record)
        await body_store.erase(
            tx,
            self.packer,
            result.seq,
            {seq: (held[seq][1], kept) for seq, kept in changes.items()},
        )
        return result

    async def forget_freed(self) -> None:
        """Nothing to do by default (PostgreSQL: README, Personal data)."""

    async def recheck_writable(self) -> bool:
        try:
            await self._write_batch([])
            async with self.writing() as tx:
                await tx.execute(
                    "CREATE TABLE IF NOT EXISTS write_probe "
                    "(id INTEGER PRIMARY KEY CHECK (id = 1), at {int} NOT NULL)".format(**tx.types)
                )
                await tx.execute(
                    "INSERT INTO write_probe VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    time.time_ns() // 1000,
                )
        except Exception as exc:  # still failing: keep reporting it
            self.write_error = str(exc) or type(exc).__name__
            return False
        self.write_error = None
        return True

    # -- body dictionaries -----------------------------------------------------

    def _train_when_due(self) -> None:
        """After a commit: train the dictionaries now due (TRAIN_AFTER bodies of a source
        stored without one), in the background, one training at a time."""
        if self.packer.untrained() and (self._training is None or self._training.done()):
            self._training = asyncio.create_task(self._train_quietly())

    async def _train_quietly(self) -> None:
        try:
            await self.train_bodies()
        except Exception:  # bodies are stored all the same, without a dictionary
            log.exception("training a body dictionary failed")

    async def train_bodies(self, sources: Iterable[str] | None = None) -> dict[str, bool]:
        """Train a dictionary for each of `sources` (None: each source due one) on its
        newest bodies, store it, and compress that source's new bodies with it: whether
        each got one (too few bodies: not yet)."""
        done: dict[str, bool] = {}
        for source in list(self.packer.untrained() if sources is None else sources):
            async with self.reading() as tx:
                newest = await receipt_sql.newest_bodies(tx, source=source, limit=TRAIN_ON)
            samples = [body for _, body in newest]
            data = await asyncio.to_thread(train_dictionary, samples)
            if data is None:
                self.packer.not_yet(source)
                done[source] = False
                continue
            async with self.writing() as tx:
                dictionary = await body_store.save(tx, source, data, len(samples))
            self.packer.use(source, dictionary)
            done[source] = True
        return done

    async def body_stats(self) -> body_store.BodyStats:
        async with self.reading() as tx:
            return await body_store.stats(tx)

    async def _train_within(self, tx: Tx) -> None:
        """Inside a long verbatim append (an import, a migration): train the dictionaries
        now due on the bodies the transaction has written, so the rest of the copy is
        compressed with them."""
        for source in self.packer.untrained():
            newest = await receipt_sql.newest_bodies(tx, source=source, limit=TRAIN_ON)
            dictionary = await body_store.train(tx, source, [body for _, body in newest])
            if dictionary is None:
                self.packer.not_yet(source)
            else:
                self.packer.use(source, dictionary)

    async def _stop_training(self) -> None:
        if self._training is not None:
            self._training.cancel()
            await asyncio.gather(self._training, return_exceptions=True)

    # -- reads -----------------------------------------------------------------

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]:
        async with self.statement() as tx:
            return await receipt_sql.after(tx, after_seq, limit)

    async def arrivals(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, int]]:
        async with self.statement() as tx:
            return await receipt_sql.arrivals(tx, after_seq, limit)

    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]:
        async with self.statement() as tx:
            return await receipt_sql.listing(
                tx, after_seq=after_seq, limit=limit, source=source, since=since, until=until
            )

    async def get(self, seq: int) -> Receipt | None:
        async with self.statement() as tx:
            return await receipt_sql.one(tx, seq)

    async def last_seq(self) -> int:
        async with self.statement() as tx:
            return await receipt_sql.last_seq(tx)

    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]:
        async def rows_after(seq: int) -> list[ChainRow]:
            async with self.statement() as tx:
                return await receipt_sql.chain_rows(tx, seq, chunk)

        async with self.reading() as tx:
            erased = await body_store.erased(tx)
            records = {by: await receipt_sql.body_of(tx, by) for by in set(erased.values())}
        held = {by: body for by, body in records.items() if body is not None}
        return await verify_chain(rows_after, confirmed(held, erased))

    # -- tailing ---------------------------------------------------------------

    async def wait_for_appends(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._group.appended.wait(), timeout)
        self._group.appended.clear()

    async def leader_lease(self) -> bool:
        return True

    async def exposure(self) -> list[str]:
        return []
