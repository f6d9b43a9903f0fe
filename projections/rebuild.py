"""Rebuild: re-fold every recipient's facts under a policy into fresh tables, then swap.

The facts (the policy-independent decode of every receipt) are brought up to date
first, then streamed in recipient order with bounded memory; the new states fill shadow
tables in short transactions, so ingestion goes on meanwhile. The swap is one
transaction: it replaces the live state tables, refolds the recipients whose facts
arrived while the rebuild read (the tail) and records the checkpoint and policy hash —
nothing appended is missed. `dry_run` writes nothing and reports who would change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import msgspec

from ledger import NewReceipt, Receipt, Store
from ledger.sql import Tx
from projections import feed, policy_history, streams, views
from projections.derivation import Row, deriver
from projections.errors import DecodeFailed
from projections.facts import (
    DERIVATION_VERSION,
    Fact,
    decode_fact,
    derive,
    is_erasure,
)
from projections.feed import NOBODY, Verdict, verdict
from projections.mapping import Mapper
from projections.policy import DEFAULT_POLICY, Policy, policy_hash
from projections.projector import Projector, ensure_schema
from projections.state import RecipientState

Progress = Callable[[int, int], None]
_READ_CHUNK = 2000
_FACT_CHUNK = 20_000
_STATE_CHUNK = 5_000


class Change(msgspec.Struct, frozen=True):
    """An address whose verdict differs between the live projection and the rebuild, and
    the streams of the rebuild's policy whose own verdict on it differs."""

    email: str
    before: Verdict
    after: Verdict
    # (left out when the policy defines no streams)
    streams: list[str] | msgspec.UnsetType = msgspec.UNSET


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a rebuild read and what it changed (or would change, on a dry run)."""

    changed: list[Change]
    dry_run: bool
    policy_hash: str
    receipts: int
    events: int
    recipients: int
    suppressed: int


_NOBODY = NOBODY


async def rebuild(
    store: Store,
    policy: Policy,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    record: NewReceipt | None = None,
) -> RebuildReport:
    """Re-read all of history under `policy`; see the module docstring. `record` (the
    policy change, projections/policy_history.py) is appended in the swap's transaction, so
    the ledger's policy history and the live projection never disagree."""
    mapper = Mapper(policy)
    upto, groups = await _sources(store, dry_run, progress)
    if not dry_run:
        await _create_shadow(store)
    changed: list[Change] = []
    events = recipients = suppressed = 0
    batch: list[RecipientState] = []
    compared = ""  # recipients come in address order: every live one up to here is compared

    async def flush(last: bool = False) -> None:
        nonlocal compared
        upto_email = None if last else (batch[-1].email if batch else compared)
        changed.extend(await _compare(store, batch, compared, upto_email))
        compared = upto_email or compared
        if not dry_run:  # the shadow tables: derived, swapped in by a durable commit
            async with store.writing(durable=False) as tx:
                await views.write_states(tx, batch, suffix="_next")
        batch.clear()

    async for email, facts in groups:
        state = mapper.fold_facts(email, facts)
        events += len(facts)
        recipients += 1
        suppressed += state.suppressed
        batch.append(state)
        if len(batch) >= _STATE_CHUNK:
            await flush()
    await flush(last=True)
    digest = policy_hash(policy)
    if not dry_run:
        await _swap(store, mapper, digest, upto, record)
    scopes = [scope for name in sorted(policy.streams) if (scope := streams.scope(policy, name))]
    if scopes:
        changed = [_per_stream(change, scopes) for change in changed]
    return RebuildReport(
        changed=sorted(changed, key=lambda change: change.email),
        dry_run=dry_run,
        policy_hash=digest,
        receipts=upto,
        events=events,
        recipients=recipients,
        suppressed=suppressed,
    )


async def active_policy(store: Store) -> Policy:
    """The policy the live projection is folded under — also when another version of
    this code folded it — or, for a ledger never projected, the latest one it recorded
    (the built-in defaults when none). Reads only: a dry run must write nothing."""
    async with store.reading() as tx:
        meta = await views.read_meta(tx) if await views.exists(tx) else None
    if meta is not None:
        return meta.policy
    return await policy_history.latest(store) or DEFAULT_POLICY


Groups = AsyncIterator[tuple[str, list[Fact]]]


async def _sources(store: Store, dry_run: bool, progress: Progress | None) -> tuple[int, Groups]:
    """The checkpoint the rebuild reads up to, and each recipient's facts up to it.

    Current facts are read from the index; a ledger never projected, or projected by an
    older fact derivation, is derived afresh (in memory on a dry run, which writes
    nothing; into the index otherwise).
    """
    async with store.writing() as tx:
        await ensure_schema(tx)
        meta = await views.read_meta(tx)
    current = meta is not None and meta.derivation == DERIVATION_VERSION
    if current and meta is not None and policy_hash(meta.policy) == meta.policy_hash:
        projector = Projector(store, meta.policy)  # catch up under the live policy first
        await projector.start()
        await projector.catch_up()
        upto = projector.projected_seq
        return upto, _indexed_groups(store, upto, progress)
    if current and meta is not None:
        # Folded by another version of the fold (an upgrade): its states cannot be caught
        # up, but its facts are this code's. Re-read them; the swap folds what follows.
        return meta.seq, _indexed_groups(store, meta.seq, progress)
    upto = meta.seq if meta is not None else await store.last_seq()
    if dry_run:
        return upto, _derived_groups(store, upto, progress)
    await _rederive(store, upto, progress)
    return upto, _indexed_groups(store, upto, progress)


async def _indexed_groups(store: Store, upto: int, progress: Progress | None) -> Groups:
    """Each recipient's indexed facts with seq <= upto, in address order, chunk by chunk."""
    after, done, total = "", 0, 0
    if progress:
        async with store.reading() as tx:
            counted = await tx.fetch("SELECT COUNT(*) FROM recipient_facts")
        total = int(counted[0][0]) if counted else 0
    while True:
        async with store.reading() as tx:
            rows = cast(
                list[tuple[str, bytes, int]],
                await tx.fetch(
                    "SELECT email, fact, seq FROM recipient_facts WHERE email > ? "
                    "ORDER BY email, key LIMIT ?",
                    after,
                    _FACT_CHUNK,
                ),
            )
        if not rows:
            return
        full = len(rows) == _FACT_CHUNK
        last_email = rows[-1][0]
        if full and rows[0][0] == last_email:  # one recipient fills the chunk: read it whole
            async with store.reading() as tx:
                whole = await views.load_facts(tx, last_email)
            done += len(whole)
            if kept := [fact for fact in whole if fact.seq <= upto]:
                yield last_email, kept
            after = last_email
            if progress:
                progress(done, total)
            continue
        group: list[Fact] = []
        group_email = rows[0][0]
        in_order = views.HISTORY_ORDER
        for email, blob, seq in rows:
            if full and email == last_email:
                break  # possibly cut short by the LIMIT: the next chunk starts with it
            if email != group_email:
                if group:
                    group.sort(key=in_order)
                    yield group_email, group
                group_email, group = email, []
            if seq <= upto:
                group.append(decode_fact(blob))
            done += 1
        if group:
            group.sort(key=in_order)
            yield group_email, group
        after = group_email if full else last_email
        if progress:
            progress(done, total)


async def _derived_groups(store: Store, upto: int, progress: Progress | None) -> Groups:
    """Facts derived straight from the receipts (first copy of each key wins), grouped."""
    seen: set[bytes] = set()
    by_email: dict[str, list[Fact]] = defaultdict(list)
    after = 0
    while after < upto and (receipts := await store.read(after, min(_READ_CHUNK, upto - after))):
        for receipt in receipts:
            for keyed in derive(receipt):
                if keyed.key not in seen:
                    seen.add(keyed.key)
                    by_email[keyed.fact.recipient].append(keyed.fact)
        after = receipts[-1].seq
        if progress:
            progress(after, upto)
    for email in sorted(by_email):
        yield email, sorted(by_email[email], key=lambda fact: fact.position)


async def _rederive(store: Store, upto: int, progress: Progress | None) -> None:
    """Replace the fact index with facts derived by this code from receipts <= upto.

    Three things overlap: reading the next receipts (the reader's thread), deriving
    facts from these (decoding, in Python: here, or for a large ledger in worker
    processes, projections/derivation.py), and appending the last ones' facts to a
    staging table without any index (the writer's thread). Then one statement copies
    the first copy of each key into the fact index in its own order, and the key index
    is built by sorting (views.facts_from_staged): inserting random keys into two B-trees
    one by one left the main thread idle, waiting (bench/README.md, "Measured reasons").
    All of it is derived data, committed without waiting for the disk.
    """
    async with store.writing() as tx:
        await tx.execute("DROP TABLE IF EXISTS recipient_facts")
        await tx.execute("DROP TABLE IF EXISTS recipient_facts_staged")
        await tx.execute("DELETE FROM projection_set_aside")  # derived afresh: tried again
        for statement in views.staged_facts_schema(tx.types):
            await tx.execute(statement)

    def read_after(seq: int) -> asyncio.Task[list[Receipt]]:
        return asyncio.create_task(store.read(seq, min(_READ_CHUNK, upto - seq)))

    async def append(rows: list[tuple[Any, ...]]) -> None:
        async with store.writing(durable=False) as tx:
            await tx.executemany(views.INSERT_STAGED, rows)

    reading = read_after(0) if upto > 0 else None
    writing: asyncio.Task[None] | None = None
    deriving: deque[tuple[int, asyncio.Future[list[Row]]]] = deque()

    async def write_next() -> None:  # the oldest chunk's rows, in seq order
        nonlocal writing
        after, rows = deriving[0][0], await deriving[0][1]
        deriving.popleft()
        if writing is not None:
            await writing
        writing = asyncio.create_task(append(rows))
        if progress:
            progress(after, upto)

    async with deriver(upto) as chunks:
        depth = 3 if chunks.parallel else 1  # chunks in the workers' hands at once
        try:
            while reading is not None and (receipts := await reading):
                after = receipts[-1].seq
                reading = read_after(after) if after < upto else None
                deriving.append((after, chunks.submit(receipts)))
                if len(deriving) >= depth:
                    await write_next()
            while deriving:
                await write_next()
            if writing is not None:
                await writing
        finally:  # on a failure, nothing left running against the store
            for task in (reading, writing, *(future for _, future in deriving)):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
    async with store.writing(durable=False) as tx:
        for statement in views.facts_from_staged(tx.types):
            await tx.execute(statement)


async def _create_shadow(store: Store) -> None:
    async with store.writing() as tx:
        for table in views.STATE_TABLES:
            await tx.execute(f"DROP TABLE IF EXISTS {table}_next")
        for statement in views.state_schema(tx.types, "_next"):
            await tx.execute(statement)


async def _compare(
    store: Store, states: list[RecipientState], after: str, upto: str | None
) -> list[Change]:
    """Changes between the live verdicts and the rebuilt states of these recipients, and
    of every live suppression in (after, upto] (None: no end) that the rebuild no longer
    has at all — an address the new rules spell otherwise, or read no event for."""
    async with store.reading() as tx:
        listed = await views.lists_reasons(tx)
        before = await _live_verdicts(tx, [state.email for state in states], listed)
        vanished = await _live_between(tx, after, upto, listed)
    changes = []
    for state in states:
        old = before.get(state.email, _NOBODY)
        new = verdict(state)
        if _differ(old, new, listed):
            changes.append(Change(state.email, old, new))
    rebuilt = {state.email for state in states}
    changes += [Change(email, old, _NOBODY) for email, old in vanished if email not in rebuilt]
    return changes


def _per_stream(change: Change, scopes: list[streams.Scope]) -> Change:
    """The change, naming the streams whose verdict on the address it changes (read, both
    before and after, under the rebuild's streams)."""

    def blocked(verdict: Verdict, scope: streams.Scope) -> bool:
        return verdict.suppressed and bool(
            scope.blocked(",".join(verdict.reasons), verdict.reason or "")
        )

    names = [s.name for s in scopes if blocked(change.before, s) != blocked(change.after, s)]
    return msgspec.structs.replace(change, streams=names)


def _differ(old: Verdict, new: Verdict, listed: bool) -> bool:
    """Whether two verdicts differ; against a live projection that kept only the
    strongest reason (`listed` False: folded by an older version), on that reason."""
    if listed:
        return old != new
    return (old.suppressed, old.reason) != (new.suppressed, new.reason)


def _reasons(listed: bool) -> str:
    return "reasons" if listed else "NULL"


async def _live_between(
    tx: Tx, after: str, upto: str | None, listed: bool
) -> list[tuple[str, Verdict]]:
    query = f"SELECT email, reason, {_reasons(listed)} FROM suppressions WHERE email > ?"
    params: tuple[str, ...] = (after,)
    if upto is not None:
        query, params = query + " AND email <= ?", (after, upto)
    rows = await tx.fetch(query + " ORDER BY email", *params)
    return [(email, feed.listed(reason, reasons)) for email, reason, reasons in rows]


async def _live_verdicts(tx: Tx, emails: list[str], listed: bool) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetch(
            f"SELECT email, reason, {_reasons(listed)} FROM suppressions WHERE email IN ({marks})",
            *chunk,
        )
        verdicts.update({email: feed.listed(reason, reasons) for email, reason, reasons in rows})
    return verdicts


async def _swap(
    store: Store, mapper: Mapper, digest: str, upto: int, record: NewReceipt | None
) -> None:
    async with store.writing() as tx:
        meta = await views.read_meta(tx, lock=True)  # no projector step commits meanwhile
        live = meta.seq if meta is not None else upto
        # The tail. Facts of receipts (upto, live] were indexed (and folded under the old
        # policy) while the rebuild read: refold those recipients from their history into
        # the new tables. The checkpoint's row is ours until this transaction commits:
        # no projector step can commit meanwhile.
        emails: set[str] = set()
        erased = False
        after = upto
        while after < live and (
            receipts := await store.read(after, min(_READ_CHUNK, live - after))
        ):
            facts = [k.fact for r in receipts for k in derive(r)]
            emails.update(fact.recipient for fact in facts)
            erased = erased or any(is_erasure(fact) for fact in facts)
            after = receipts[-1].seq
        if erased:  # an erasure while the rebuild read: what it folded of the address goes
            await views.forget_factless(tx, "_next")
        states = [
            mapper.fold_facts(email, await views.load_facts(tx, email)) for email in sorted(emails)
        ]
        await views.write_states(tx, states, suffix="_next")
        # The feed: every address whose verdict the swap changes, between its markers.
        started, _ = await feed.rebuilt(
            tx,
            "_next",
            previous=meta.policy_hash if meta is not None else None,
            policy_hash=digest,
            listed_reasons=await views.lists_reasons(tx),
        )
        for table in views.STATE_TABLES:
            await tx.execute(f"DROP TABLE {table}")
            await tx.rename_table(f"{table}_next", table)
        # Receipts after `live` are derived and applied as the projector would, up to the
        # head as it is now: on PostgreSQL other instances go on appending, and what they
        # append after it the projector folds, under the new policy.
        seq, end = live, await store.last_seq()
        while seq < end and (receipts := await store.read(seq, min(_READ_CHUNK, end - seq))):
            await views.apply(tx, [k for r in receipts for k in derive(r)], mapper)
            seq = receipts[-1].seq
        await views.write_meta(tx, seq, digest, mapper.policy)
        if record is not None:  # last: it holds the ledger's head until the commit
            appended = await store.append_in(tx, record)
            await feed.note_record(tx, started, appended.seq, _note(record))


def _note(record: NewReceipt) -> str | None:
    """The note of a policy change's record (projections/policy_history.py)."""
    try:
        return policy_history.decode(record.body).note
    except DecodeFailed:
        return None
