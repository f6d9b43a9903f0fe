"""The projection's SQLite tables and the incremental apply that keeps them.

Tables (a rebuild writes `*_next` copies, then swaps them in one transaction):
- `projection_meta`: the checkpoint (last receipt folded) and the policy it was built under;
- `recipient_events`: every normalized event by recipient in history order, unique by
  de-duplication key — the recipient index, and what an out-of-order event refolds from;
- `recipient_state`: each recipient's folded state;
- `suppressions`: just the suppressed addresses, what senders query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import aiosqlite
import msgspec

from projections.events import NormalizedEvent, decode_event, encode_event
from projections.fold import replay
from projections.mapping import Placed
from projections.policy import Policy
from projections.state import RecipientState, decode_state, encode_state

TABLES = ("recipient_events", "recipient_state", "suppressions")

META = """
CREATE TABLE IF NOT EXISTS projection_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    policy_hash TEXT    NOT NULL,
    policy      TEXT    NOT NULL
);
"""

_VIEWS = """
CREATE TABLE IF NOT EXISTS recipient_events{suffix} (
    email TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    ord   INTEGER NOT NULL,
    key   BLOB    NOT NULL UNIQUE,
    event BLOB    NOT NULL,
    PRIMARY KEY (email, at, seq, ord)
) WITHOUT ROWID;
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

SCHEMA = META + _VIEWS.format(suffix="")
_CHUNK = 500


def views_script(suffix: str) -> str:
    """DDL for the view tables, with a suffix for a rebuild's shadow copies."""
    return _VIEWS.format(suffix=suffix)


def event_row(placed: Placed) -> tuple[str, int, int, int, bytes, bytes]:
    event = placed.event
    return (event.recipient, event.at, event.seq, event.ord, placed.key, encode_event(event))


def state_rows(
    states: Iterable[RecipientState],
) -> tuple[list[tuple[str, bytes]], list[tuple[str, str, int, int]], list[str]]:
    """Rows for recipient_state, rows for suppressions, and emails no longer suppressed."""
    state_out: list[tuple[str, bytes]] = []
    suppressed: list[tuple[str, str, int, int]] = []
    released: list[str] = []
    for state in states:
        state_out.append((state.email, encode_state(state)))
        if state.causes and state.since is not None:
            cause = state.causes[0]
            suppressed.append((state.email, cause.reason, state.since, cause.seq))
        else:
            released.append(state.email)
    return state_out, suppressed, released


async def write_states(
    db: aiosqlite.Connection, states: Iterable[RecipientState], suffix: str = ""
) -> None:
    state_out, suppressed, released = state_rows(states)
    await db.executemany(f"INSERT OR REPLACE INTO recipient_state{suffix} VALUES (?, ?)", state_out)
    await db.executemany(
        f"INSERT OR REPLACE INTO suppressions{suffix} VALUES (?, ?, ?, ?)", suppressed
    )
    await db.executemany(
        f"DELETE FROM suppressions{suffix} WHERE email = ?", [(e,) for e in released]
    )


async def apply(db: aiosqlite.Connection, placed: list[Placed], policy: Policy) -> None:
    """Fold new events into the live tables, inside the caller's write transaction.

    Events already indexed (same key) are dropped: idempotent. A recipient whose new
    events all sort after its last folded event is folded forward; one that got a late,
    out-of-order event is refolded from its whole history, so state depends on event
    time, never on arrival order.
    """
    known = await _known_keys(db, [p.key for p in placed])
    fresh: list[Placed] = []
    for item in placed:
        if item.key not in known:
            known.add(item.key)
            fresh.append(item)
    if not fresh:
        return
    await db.executemany(
        "INSERT INTO recipient_events VALUES (?, ?, ?, ?, ?, ?)", [event_row(p) for p in fresh]
    )
    by_email: dict[str, list[NormalizedEvent]] = defaultdict(list)
    for item in fresh:
        by_email[item.event.recipient].append(item.event)
    states = await load_states(db, list(by_email))
    updated = []
    for email, events in by_email.items():
        state = states.get(email)
        if state is not None and min(e.position for e in events) < state.position:
            updated.append(replay(email, await load_events(db, email), policy))
        else:
            updated.append(replay(email, events, policy, state))
    await write_states(db, updated)


async def _known_keys(db: aiosqlite.Connection, keys: list[bytes]) -> set[bytes]:
    known: set[bytes] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        async with db.execute(
            f"SELECT key FROM recipient_events WHERE key IN ({marks})", chunk
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


async def load_events(db: aiosqlite.Connection, email: str) -> list[NormalizedEvent]:
    """A recipient's indexed events in history order."""
    async with db.execute(
        "SELECT event FROM recipient_events WHERE email = ? ORDER BY at, seq, ord", (email,)
    ) as cur:
        return [decode_event(blob) for (blob,) in await cur.fetchall()]


async def read_meta(db: aiosqlite.Connection) -> tuple[int, str] | None:
    """(checkpoint seq, policy hash) of the live projection, or None before the first run."""
    async with db.execute("SELECT seq, policy_hash FROM projection_meta WHERE id = 1") as cur:
        row = await cur.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def write_meta(db: aiosqlite.Connection, seq: int, digest: str, policy: Policy) -> None:
    await db.execute(
        "INSERT OR REPLACE INTO projection_meta (id, seq, policy_hash, policy) VALUES (1, ?, ?, ?)",
        (seq, digest, msgspec.json.encode(policy, order="sorted").decode()),
    )
