"""The projection's tables and the incremental apply that keeps them (on either backend,
through `ledger.sql.Tx`).

- `projection_meta`: the checkpoint (last receipt folded), the policy it was folded
  under, and the derivation version of the stored facts;
- `recipient_facts`: every fact by recipient, unique by de-duplication key (which names
  the recipient: the pair is the primary key, no index beside it) — the recipient index
  and the decode cache, independent of the policy, so rebuilds and out-of-order refolds
  never parse a body again. A recipient's facts are put in history order when read;
- `recipient_state`: each recipient's folded state; `suppressions`: just the
  suppressed addresses, what senders query — with every active reason (strongest
  first), the source of the evidence receipt and the time of the latest event, so the
  list can be filtered and sorted by index (projections/search.py). A rebuild writes
  `*_next` copies of these two and swaps them in one transaction;
- `recipient_echoes`: receipts whose fact about an address repeats one already in the
  index (the same event redelivered with other bytes): not folded, but about the
  address all the same — an erasure removes them too;
- `projection_set_aside`: receipts the projector could not fold, and why.

Addresses sort byte-wise on both backends (PostgreSQL: `COLLATE "C"`), as Python sorts
them: keyset pages and the rebuild's merge rely on one order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from operator import attrgetter

import msgspec

from ledger import receipts
from ledger.sql import Tx, fetchrow, statements
from projections import feed
from projections.facts import DERIVATION_VERSION, Fact, Keyed, decode_fact, encode_fact
from projections.mapping import Mapper
from projections.policy import Policy, policy_hash
from projections.state import RecipientState, decode_state, encode_state
from projections.streams import tag

STATE_TABLES = ("recipient_state", "suppressions")

_META = """
CREATE TABLE IF NOT EXISTS projection_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         {int}   NOT NULL,
    policy_hash TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    derivation  TEXT    NOT NULL
);
"""

_FACTS_TABLE = """
CREATE TABLE IF NOT EXISTS recipient_facts (
    email TEXT {text} NOT NULL,
    at    {int}   NOT NULL,
    seq   {int}   NOT NULL,
    ord   INTEGER NOT NULL,
    key   {blob}  NOT NULL,
    fact  {blob}  NOT NULL,
    PRIMARY KEY (email, key)
){table};
"""
# The de-duplication key is a hash of the recipient with the event's identity, so the pair
# (recipient, key) is as unique as the key: one B-tree serves the recipient's reads and the
# key's uniqueness (an index on the key alone cost a quarter of the table beside it:
# bench/README.md, "Measured reasons"). A re-derivation (projections/rebuild.py) appends
# the rows first, without any index, then copies them in the table's own order.
# Where a re-derivation appends the facts before they are copied into recipient_facts.
_FACTS_STAGED = """
CREATE {scratch} TABLE recipient_facts_staged (
    email TEXT {text} NOT NULL,
    at    {int}   NOT NULL,
    seq   {int}   NOT NULL,
    ord   INTEGER NOT NULL,
    key   {blob}  NOT NULL,
    fact  {blob}  NOT NULL
);
"""

_STATE = """
CREATE TABLE IF NOT EXISTS recipient_state{suffix} (
    email TEXT {text} PRIMARY KEY,
    state {blob} NOT NULL
){table};
CREATE TABLE IF NOT EXISTS suppressions{suffix} (
    email      TEXT {text} PRIMARY KEY,
    reason     TEXT    NOT NULL,
    since      {int}   NOT NULL,
    seq        {int}   NOT NULL,
    source     TEXT    NOT NULL DEFAULT '',
    last_event {int},
    reasons    TEXT    NOT NULL DEFAULT '',
    UNIQUE (reason, email),
    UNIQUE (reason, since, email),
    UNIQUE (source, email),
    UNIQUE (source, since, email),
    UNIQUE (since, email)
){table};
"""
# The indexes that filter and sort the suppression list (projections/search.py) are
# declared as UNIQUE constraints: each holds the primary key, so they constrain nothing
# more, and being part of the table they are created with it, under names the database
# derives from the table's. SQLite renames them with the table; PostgreSQL picks a free
# name by itself. So the rebuild's `suppressions_next` and its swap (DROP, RENAME) never
# meet an index name of the live table, however many rebuilds follow one another, and
# `CREATE TABLE IF NOT EXISTS` creates them exactly when it creates the table.

# Receipts the projector could not fold (a value the database refused, a fold that
# failed): set aside with the reason, so that one receipt never stops the projection.
# A re-derivation of the fact index (projections/rebuild.py) tries them again.
_SET_ASIDE = """
CREATE TABLE IF NOT EXISTS projection_set_aside (
    seq    {int}  PRIMARY KEY,
    reason TEXT   NOT NULL,
    at     {int}  NOT NULL
);
"""

_ECHOES = """
CREATE TABLE IF NOT EXISTS recipient_echoes (
    email TEXT {text} NOT NULL,
    seq   {int}  NOT NULL,
    PRIMARY KEY (email, seq)
){table};
"""
INSERT_ECHOES = "INSERT INTO recipient_echoes VALUES (?, ?) ON CONFLICT DO NOTHING"

_CHUNK = 500


def _statements(script: str, types: Mapping[str, str], suffix: str = "") -> list[str]:
    """A script's statements, filled in with a backend's DDL words (`Tx.types`)."""
    parts = [part for part in script.split(";") if part.strip()]
    return statements(parts, types, suffix=suffix)


def schema(types: Mapping[str, str]) -> list[str]:
    """DDL for every projection table, and the change feed's (projections/feed.py)."""
    return [
        *_statements(_META + _FACTS_TABLE + _ECHOES + _STATE + _SET_ASIDE, types),
        *feed.schema(types),
    ]


def staged_facts_schema(types: Mapping[str, str]) -> list[str]:
    """DDL for the table a re-derivation appends facts to (no index at all)."""
    return _statements(_FACTS_STAGED, types)


INSERT_STAGED = "INSERT INTO recipient_facts_staged VALUES (?, ?, ?, ?, ?, ?)"


def facts_from_staged(types: Mapping[str, str]) -> list[str]:
    """Fill a new fact index from the staged facts: the first copy (by seq, ord) of each
    key, in the table's own order; the later copies' receipts become echoes; then the
    staging table goes."""
    copy = (
        "INSERT INTO recipient_facts SELECT email, at, seq, ord, key, fact FROM ("
        "SELECT email, at, seq, ord, key, fact, "
        "ROW_NUMBER() OVER (PARTITION BY email, key ORDER BY seq, ord) AS copy "
        "FROM recipient_facts_staged) AS staged WHERE copy = 1 ORDER BY email, key"
    )
    return [
        *_statements(_FACTS_TABLE, types),
        copy,
        "DROP TABLE IF EXISTS recipient_echoes",
        *_statements(_ECHOES, types),
        "INSERT INTO recipient_echoes SELECT DISTINCT s.email, s.seq "
        "FROM recipient_facts_staged s JOIN recipient_facts f "
        "ON f.email = s.email AND f.key = s.key "
        "WHERE f.seq <> s.seq OR f.ord <> s.ord",
        "DROP TABLE recipient_facts_staged",
    ]


def state_schema(types: Mapping[str, str], suffix: str) -> list[str]:
    """DDL for the state tables, with a suffix for a rebuild's shadow copies."""
    return _statements(_STATE, types, suffix)


def fact_row(keyed: Keyed) -> tuple[str, int, int, int, bytes, bytes]:
    fact = keyed.fact
    return (fact.recipient, fact.at, fact.seq, fact.ord, keyed.key, encode_fact(fact))


INSERT_FACTS = "INSERT INTO recipient_facts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"


def evidence(states: Iterable[RecipientState]) -> set[int]:
    """The receipts whose source the suppressions table shows beside these states."""
    return {state.causes[0].seq for state in states if state.causes}


async def write_states(
    tx: Tx,
    states: Iterable[RecipientState],
    suffix: str = "",
    sources: Mapping[int, str] | None = None,
) -> None:
    """Upsert states; keep the suppressions table in step with them. `sources` holds the
    source of each evidence receipt (`evidence`), when the caller read them already."""
    states = list(states)
    if sources is None:
        sources = await receipts.sources(tx, evidence(states))
    state_out: list[tuple[str, bytes]] = []
    suppressed: list[tuple[str, str, int, int, str, int, str]] = []
    released: list[tuple[str]] = []
    for state in states:
        state_out.append((state.email, encode_state(state)))
        if state.causes and state.since is not None:
            cause = state.causes[0]
            reasons = ",".join(dict.fromkeys(tag(c) for c in state.causes))
            row = (
                state.email,
                cause.reason,
                state.since,
                cause.seq,
                sources.get(cause.seq, ""),
                state.position[0],
                reasons,
            )
            suppressed.append(row)
        else:
            released.append((state.email,))
    if state_out:
        await tx.executemany(
            f"INSERT INTO recipient_state{suffix} VALUES (?, ?) "
            "ON CONFLICT (email) DO UPDATE SET state = excluded.state",
            state_out,
        )
    if suppressed:
        await tx.executemany(
            f"INSERT INTO suppressions{suffix} "
            "(email, reason, since, seq, source, last_event, reasons) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, since = excluded.since, "
            "seq = excluded.seq, source = excluded.source, last_event = excluded.last_event, "
            "reasons = excluded.reasons",
            suppressed,
        )
    if released:
        await tx.executemany(f"DELETE FROM suppressions{suffix} WHERE email = ?", released)


class Plan(msgspec.Struct):
    """What folding a batch of facts will write: the new fact rows, the new states, the
    source of each state's evidence receipt, the echoes (facts already indexed), and the
    verdict changes for the feed (under the policy `policy_hash`)."""

    rows: list[tuple[str, int, int, int, bytes, bytes]]
    states: list[RecipientState]
    sources: dict[int, str]
    echoes: list[tuple[str, int]] = []
    changes: list[feed.Pending] = []
    policy_hash: str = ""


async def plan(tx: Tx, keyed: list[Keyed], mapper: Mapper) -> Plan:
    """Fold new facts against what `tx` shows (reads only: a snapshot, or the writer).

    A fact already indexed (same key) is a duplicate and is dropped: idempotent. A
    recipient whose new facts all sort after its last folded event is folded forward;
    one that got a late, out-of-order fact is refolded from its whole history, so state
    depends on event time, never on arrival order — and so is one whose new facts weigh
    a shared bounce against a delivery (Mapper.needs_history).
    """
    known = await _known_keys(tx, keyed)
    fresh: list[Keyed] = []
    echoes: list[tuple[str, int]] = []
    for item in keyed:
        if item.key not in known:
            known.add(item.key)
            fresh.append(item)
        else:
            echoes.append((item.fact.recipient, item.fact.seq))
    by_email: dict[str, list[Fact]] = defaultdict(list)
    for item in fresh:
        by_email[item.fact.recipient].append(item.fact)
    states = await load_states(tx, list(by_email))
    updated = []
    triggers: dict[str, Fact] = {}
    for email, facts in by_email.items():
        state = states.get(email)
        triggers[email] = max(facts, key=lambda fact: (fact.seq, fact.ord))  # the newest
        facts.sort(key=lambda fact: fact.position)
        if state is not None and (
            facts[0].position < state.position or mapper.needs_history(state, facts)
        ):
            indexed = await load_facts(tx, email)
            facts, state = sorted([*indexed, *facts], key=lambda fact: fact.position), None
        updated.append(mapper.fold_facts(email, facts, state))
    sources = await receipts.sources(tx, evidence(updated))
    changes = feed.pending(states, updated, triggers)
    return Plan(
        rows=[fact_row(item) for item in fresh],
        states=updated,
        sources=sources,
        echoes=echoes,
        changes=changes,
        policy_hash=policy_hash(mapper.policy) if changes else "",
    )


async def write_plan(tx: Tx, planned: Plan) -> None:
    """Write a plan inside the caller's write transaction (which holds the checkpoint's
    row: the feed's entries are numbered in commit order)."""
    if planned.rows:
        await tx.executemany(INSERT_FACTS, planned.rows)
    if planned.echoes:
        await tx.executemany(INSERT_ECHOES, planned.echoes)
    await write_states(tx, planned.states, sources=planned.sources)
    await feed.record(tx, planned.changes, planned.policy_hash)


async def apply(tx: Tx, keyed: list[Keyed], mapper: Mapper) -> None:
    """Index and fold new facts inside the caller's write transaction."""
    await write_plan(tx, await plan(tx, keyed, mapper))


async def _known_keys(tx: Tx, keyed: list[Keyed]) -> set[bytes]:
    """Which of these facts' keys the index holds already: the keys of their recipients'
    indexed facts, read through the primary key's leading column (a key names its
    recipient; both backends answer `email IN (…)` from the primary key, where an OR of
    (email, key) pairs costs PostgreSQL a plan of its own per statement)."""
    wanted = {item.key for item in keyed}
    emails = sorted({item.fact.recipient for item in keyed})
    known: set[bytes] = set()
    for start in range(0, len(emails), _CHUNK):
        chunk = emails[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetch(f"SELECT key FROM recipient_facts WHERE email IN ({marks})", *chunk)
        known.update(key for (value,) in rows if (key := bytes(value)) in wanted)
    return known


async def load_states(tx: Tx, emails: list[str]) -> dict[str, RecipientState]:
    """Stored states of the given recipients (absent ones are left out)."""
    states: dict[str, RecipientState] = {}
    for start in range(0, len(emails), _CHUNK):
        chunk = emails[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetch(f"SELECT state FROM recipient_state WHERE email IN ({marks})", *chunk)
        for (blob,) in rows:
            state = decode_state(blob)
            states[state.email] = state
    return states


async def load_state(tx: Tx, email: str) -> RecipientState | None:
    """One recipient's stored state, or None."""
    row = await fetchrow(tx, "SELECT state FROM recipient_state WHERE email = ?", email)
    return decode_state(row[0]) if row else None


async def load_facts(tx: Tx, email: str, until: int | None = None) -> list[Fact]:
    """A recipient's indexed facts in history order, optionally up to event time `until`."""
    rows = await tx.fetch(
        "SELECT fact FROM recipient_facts WHERE email = ? AND at <= ?",
        email,
        until if until is not None else 2**62,
    )
    return in_history_order(decode_fact(blob) for (blob,) in rows)


def in_history_order(facts: Iterable[Fact]) -> list[Fact]:
    """Facts sorted as history has them: by event time, then receipt, then position."""
    return sorted(facts, key=HISTORY_ORDER)


# A fact's place in history, as a sort key.
HISTORY_ORDER = attrgetter("at", "seq", "ord")


async def set_aside(tx: Tx, seq: int, reason: str, at: int) -> None:
    """Record that receipt `seq` was not folded, and why."""
    await tx.execute(
        "INSERT INTO projection_set_aside (seq, reason, at) VALUES (?, ?, ?) "
        "ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason, at = excluded.at",
        seq,
        reason[:2000],
        at,
    )


async def set_aside_reason(tx: Tx, seq: int) -> str | None:
    """Why receipt `seq` was set aside by the projector, or None."""
    row = await fetchrow(tx, "SELECT reason FROM projection_set_aside WHERE seq = ?", seq)
    return str(row[0]) if row else None


class Meta(msgspec.Struct, frozen=True):
    """The live projection's checkpoint, policy and fact derivation version."""

    seq: int
    policy_hash: str
    policy: Policy
    derivation: str


async def exists(tx: Tx) -> bool:
    """Whether the projection's tables exist (a ledger never projected has none)."""
    return await tx.has_table("projection_meta")


async def lists_reasons(tx: Tx) -> bool:
    """Whether the live `suppressions` table lists every active reason (a projection
    folded by a version before PROJECTION_VERSION 4 holds only the strongest)."""
    return "reasons" in await tx.columns("suppressions")


async def read_checkpoint(tx: Tx, *, lock: bool = False) -> tuple[int, str] | None:
    """(checkpoint seq, policy hash) of the live projection, or None before the first run;
    `lock` holds the row to the end of a write transaction."""
    row = await fetchrow(
        tx,
        "SELECT seq, policy_hash FROM projection_meta WHERE id = 1"
        + (tx.for_update if lock else ""),
    )
    return (int(row[0]), str(row[1])) if row else None


async def read_meta(tx: Tx, *, lock: bool = False) -> Meta | None:
    """The live projection's meta row, or None before the first run."""
    row = await fetchrow(
        tx,
        "SELECT seq, policy_hash, policy, derivation FROM projection_meta WHERE id = 1"
        + (tx.for_update if lock else ""),
    )
    if row is None:
        return None
    policy = msgspec.json.decode(row[2], type=Policy)
    return Meta(int(row[0]), str(row[1]), policy, str(row[3]))


async def write_meta(tx: Tx, seq: int, digest: str, policy: Policy) -> None:
    await tx.execute(
        "INSERT INTO projection_meta (id, seq, policy_hash, policy, derivation) "
        "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
        "policy_hash = excluded.policy_hash, policy = excluded.policy, "
        "derivation = excluded.derivation",
        seq,
        digest,
        msgspec.json.encode(policy, order="sorted").decode(),
        DERIVATION_VERSION,
    )


async def forget(tx: Tx, email: str) -> None:
    """Delete everything the projection holds about one address (an erasure)."""
    for table in ("recipient_facts", "recipient_echoes", *STATE_TABLES):
        await tx.execute(f"DELETE FROM {table} WHERE email = ?", email)


async def forget_factless(tx: Tx, suffix: str = "") -> None:
    """Delete the states of addresses that have no fact left: what a rebuild that read the
    facts before an erasure still folded for the erased address."""
    for table in STATE_TABLES:
        await tx.execute(
            f"DELETE FROM {table}{suffix} WHERE NOT EXISTS "
            f"(SELECT 1 FROM recipient_facts f WHERE f.email = {table}{suffix}.email)"
        )


async def forget_receipts(tx: Tx, facts: list[tuple[str, int]]) -> None:
    """Delete the facts receipts gave the recipient index ((address, seq) pairs): their
    bodies are gone."""
    for table in ("recipient_facts", "recipient_echoes"):
        await tx.executemany(f"DELETE FROM {table} WHERE email = ? AND seq = ?", facts)


async def receipts_about(tx: Tx, email: str) -> list[int]:
    """Every receipt the projection knows is about `email`: its facts' and its echoes'."""
    rows = await tx.fetch(
        "SELECT seq FROM recipient_facts WHERE email = ? "
        "UNION SELECT seq FROM recipient_echoes WHERE email = ? ORDER BY 1",
        email,
        email,
    )
    return [int(row[0]) for row in rows]
