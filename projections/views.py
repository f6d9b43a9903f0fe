"""The projection's SQLite tables and the incremental apply that keeps them.

- `projection_meta`: the checkpoint (last receipt folded), the policy it was folded
  under, and the derivation version of the stored facts;
- `recipient_facts`: every fact by recipient in history order, unique by
  de-duplication key — the recipient index and the decode cache, independent of the
  policy, so rebuilds and out-of-order refolds never parse a body again;
- `recipient_state`: each recipient's folded state; `suppressions`: just the
  suppressed addresses, what senders query. A rebuild writes `*_next` copies of these
  two and swaps them in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable

import aiosqlite
import msgspec

from ledger.writer import on_thread
from projections.facts import DERIVATION_VERSION, Fact, Keyed, decode_fact, encode_fact
from projections.mapping import Mapper
from projections.policy import Policy
from projections.state import RecipientState, decode_state, encode_state

STATE_TABLES = ("recipient_state", "suppressions")

META = """
CREATE TABLE IF NOT EXISTS projection_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    policy_hash TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    derivation  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS recipient_facts (
    email TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    ord   INTEGER NOT NULL,
    key   BLOB    NOT NULL UNIQUE,
    fact  BLOB    NOT NULL,
    PRIMARY KEY (email, at, seq, ord)
) WITHOUT ROWID;
"""

_STATE = """
CREATE TABLE IF NOT EXISTS recipient_state{suffix} (
    email TEXT PRIMARY KEY,
    state BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions{suffix} (
    email  TEXT PRIMARY KEY,
    reason TEXT    NOT NULL,
    since  INTEGER NOT NULL,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;
"""

SCHEMA = META + _STATE.format(suffix="")
_CHUNK = 500


def state_script(suffix: str) -> str:
    """DDL for the state tables, with a suffix for a rebuild's shadow copies."""
    return _STATE.format(suffix=suffix)


def fact_row(keyed: Keyed) -> tuple[str, int, int, int, bytes, bytes]:
    fact = keyed.fact
    return (fact.recipient, fact.at, fact.seq, fact.ord, keyed.key, encode_fact(fact))


def write_states(
    conn: sqlite3.Connection, states: Iterable[RecipientState], suffix: str = ""
) -> None:
    """Upsert states; keep the suppressions table in step with them (on the writer's
    thread: `await on_thread(db, write_states, states)`)."""
    state_out: list[tuple[str, bytes]] = []
    suppressed: list[tuple[str, str, int, int]] = []
    released: list[tuple[str]] = []
    for state in states:
        state_out.append((state.email, encode_state(state)))
        if state.causes and state.since is not None:
            cause = state.causes[0]
            suppressed.append((state.email, cause.reason, state.since, cause.seq))
        else:
            released.append((state.email,))
    conn.executemany(f"INSERT OR REPLACE INTO recipient_state{suffix} VALUES (?, ?)", state_out)
    conn.executemany(f"INSERT OR REPLACE INTO suppressions{suffix} VALUES (?, ?, ?, ?)", suppressed)
    conn.executemany(f"DELETE FROM suppressions{suffix} WHERE email = ?", released)


class Plan(msgspec.Struct):
    """What folding a batch of facts will write: the new fact rows and the new states."""

    rows: list[tuple[str, int, int, int, bytes, bytes]]
    states: list[RecipientState]


async def plan(db: aiosqlite.Connection, keyed: list[Keyed], mapper: Mapper) -> Plan:
    """Fold new facts against what `db` shows (reads only: the reader, or the writer).

    A fact already indexed (same key) is a duplicate and is dropped: idempotent. A
    recipient whose new facts all sort after its last folded event is folded forward;
    one that got a late, out-of-order fact is refolded from its whole history, so state
    depends on event time, never on arrival order.
    """
    known = await _known_keys(db, [item.key for item in keyed])
    fresh: list[Keyed] = []
    for item in keyed:
        if item.key not in known:
            known.add(item.key)
            fresh.append(item)
    by_email: dict[str, list[Fact]] = defaultdict(list)
    for item in fresh:
        by_email[item.fact.recipient].append(item.fact)
    states = await load_states(db, list(by_email))
    updated = []
    for email, facts in by_email.items():
        state = states.get(email)
        facts.sort(key=lambda fact: fact.position)
        if state is not None and facts[0].position < state.position:
            indexed = await load_facts(db, email)
            facts, state = sorted([*indexed, *facts], key=lambda fact: fact.position), None
        updated.append(mapper.fold_facts(email, facts, state))
    return Plan(rows=[fact_row(item) for item in fresh], states=updated)


def write_plan(conn: sqlite3.Connection, planned: Plan) -> None:
    """Write a plan inside the caller's write transaction (on the writer's thread)."""
    conn.executemany("INSERT INTO recipient_facts VALUES (?, ?, ?, ?, ?, ?)", planned.rows)
    write_states(conn, planned.states)


async def apply(db: aiosqlite.Connection, keyed: list[Keyed], mapper: Mapper) -> None:
    """Index and fold new facts inside the caller's write transaction on `db`."""
    await on_thread(db, write_plan, await plan(db, keyed, mapper))


async def _known_keys(db: aiosqlite.Connection, keys: list[bytes]) -> set[bytes]:
    known: set[bytes] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        async with db.execute(
            f"SELECT key FROM recipient_facts WHERE key IN ({marks})", chunk
        ) as cur:
            known.update(row[0] for row in await cur.fetchall())
    return known


async def load_states(db: aiosqlite.Connection, emails: list[str]) -> dict[str, RecipientState]:
    """Stored states of the given recipients (absent ones are left out)."""
    states: dict[str, RecipientState] = {}
    for start in range(0, len(emails), _CHUNK):
        chunk = emails[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        async with db.execute(
            f"SELECT state FROM recipient_state WHERE email IN ({marks})", chunk
        ) as cur:
            for (blob,) in await cur.fetchall():
                state = decode_state(blob)
                states[state.email] = state
    return states


async def load_facts(db: aiosqlite.Connection, email: str, until: int | None = None) -> list[Fact]:
    """A recipient's indexed facts in history order, optionally up to event time `until`."""
    async with db.execute(
        "SELECT fact FROM recipient_facts WHERE email = ? AND at <= ? ORDER BY at, seq, ord",
        (email, until if until is not None else 2**62),
    ) as cur:
        return [decode_fact(blob) for (blob,) in await cur.fetchall()]


class Meta(msgspec.Struct, frozen=True):
    """The live projection's checkpoint, policy and fact derivation version."""

    seq: int
    policy_hash: str
    policy: Policy
    derivation: str


async def read_checkpoint(db: aiosqlite.Connection) -> tuple[int, str] | None:
    """(checkpoint seq, policy hash) of the live projection, or None before the first run."""
    async with db.execute("SELECT seq, policy_hash FROM projection_meta WHERE id = 1") as cur:
        row = await cur.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def read_meta(db: aiosqlite.Connection) -> Meta | None:
    """The live projection's meta row, or None before the first run."""
    async with db.execute(
        "SELECT seq, policy_hash, policy, derivation FROM projection_meta WHERE id = 1"
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    policy = msgspec.json.decode(row[2], type=Policy)
    return Meta(int(row[0]), str(row[1]), policy, str(row[3]))


async def write_meta(db: aiosqlite.Connection, seq: int, digest: str, policy: Policy) -> None:
    await db.execute(
        "INSERT OR REPLACE INTO projection_meta (id, seq, policy_hash, policy, derivation) "
        "VALUES (1, ?, ?, ?, ?)",
        (seq, digest, msgspec.json.encode(policy, order="sorted").decode(), DERIVATION_VERSION),
    )
