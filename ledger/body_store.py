"""Body storage over a `Tx`: the `bodies` and `body_dictionaries` tables, written once for
every backend (what a stored body is: ledger/bodies.py).

- `bodies (seq, codec, dictionary, size, data, erased_by)`: one row per receipt, beside
  the chained `receipts` row that holds its digest; `size` is the raw body's length;
  `erased_by` names the erasure record that removed the body (then empty) or replaced it
  with a redacted copy (ledger/erasures.py);
- `body_dictionaries (id, source, created_at, samples, data)`: the trained dictionaries,
  named by their hash (`bodies.dictionary_id`), never changed once written.

The `Packer` keeps, per source, the dictionary new bodies are compressed with; a store
trains one (`train`) once a source has `TRAIN_AFTER` bodies without one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ledger.bodies import PLAIN, Dictionary, Stored, dictionary_id, pack
from ledger.bodies import train as train_dictionary
from ledger.chain import BodyRow
from ledger.sql import Tx

BODY_COLUMNS = "seq, codec, dictionary, size, data"
INSERT_BODIES = f"INSERT INTO bodies ({BODY_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
# A source's bodies stored without a dictionary before one is trained from them.
TRAIN_AFTER = 1000
# How many of a source's newest bodies a dictionary is trained on.
TRAIN_ON = 2000

# Every dictionary read so far, by name: a name is a hash of the bytes, so an entry is
# right for every database that holds a dictionary of that name.
_LOADED: dict[int, Dictionary] = {}


class Packer:
    """The dictionary each source's new bodies are compressed with (none until trained)."""

    def __init__(self, current: dict[str, Dictionary] | None = None) -> None:
        self.current = dict(current or {})
        self.without: dict[str, int] = {}  # bodies stored without a dictionary, per source

    def rows(self, bodies: Iterable[BodyRow]) -> list[tuple[Any, ...]]:
        """The `bodies` rows (BODY_COLUMNS) of receipts' bodies, each compressed with its
        source's dictionary."""
        out: list[tuple[Any, ...]] = []
        for seq, source, body in bodies:
            dictionary = self.current.get(source)
            if dictionary is None:
                self.without[source] = self.without.get(source, 0) + 1
            codec, ident, data = pack(body, dictionary)
            out.append((seq, codec, ident, len(body), data))
        return out

    def untrained(self) -> list[str]:
        """The sources with TRAIN_AFTER bodies or more stored without a dictionary."""
        return [
            source
            for source, count in self.without.items()
            if count >= TRAIN_AFTER and source not in self.current
        ]

    def not_yet(self, source: str) -> None:
        """A training of `source` found too few bodies: it is due again once TRAIN_AFTER
        more are stored."""
        self.without[source] = 0

    def use(self, source: str, dictionary: Dictionary) -> None:
        """Compress `source`'s bodies with `dictionary` from now on."""
        self.current[source] = dictionary
        self.without.pop(source, None)


async def load_packer(tx: Tx) -> Packer:
    """A packer using each source's newest dictionary in the database."""
    rows = await tx.fetch(
        "SELECT d.source, d.id FROM body_dictionaries d WHERE d.created_at = "
        "(SELECT MAX(n.created_at) FROM body_dictionaries n WHERE n.source = d.source)"
    )
    found = await dictionaries(tx, [int(row[1]) for row in rows])
    return Packer({str(row[0]): found[int(row[1])] for row in rows})


async def dictionaries(
    tx: Tx, ids: Iterable[int | None], *, confirm: bool = False
) -> dict[int, Dictionary]:
    """The dictionaries named by `ids` that the database holds (read once per process;
    `confirm`: only those the database still holds — what `verify` asks)."""
    wanted = {ident for ident in ids if ident is not None}
    missing = sorted(wanted - _LOADED.keys())
    if missing:
        for ident, data in await _select(tx, "id, data", missing):
            data = bytes(data)
            if dictionary_id(data) == int(ident):  # a damaged dictionary is not one
                _LOADED[int(ident)] = Dictionary(data)
    found = {ident: _LOADED[ident] for ident in wanted if ident in _LOADED}
    if confirm and found:
        held = {int(row[0]) for row in await _select(tx, "id", sorted(found))}
        found = {ident: value for ident, value in found.items() if ident in held}
    return found


async def _select(tx: Tx, columns: str, ids: list[int]) -> list[Any]:
    marks = ",".join("?" * len(ids))
    return await tx.fetch(f"SELECT {columns} FROM body_dictionaries WHERE id IN ({marks})", *ids)


async def train(tx: Tx, source: str, samples: list[bytes]) -> Dictionary | None:
    """Train a dictionary for `source` on `samples` (its newest bodies) and store it,
    inside the caller's write transaction; None when they are too few to train on."""
    data = train_dictionary(samples)
    return None if data is None else await save(tx, source, data, len(samples))


async def save(tx: Tx, source: str, data: bytes, samples: int) -> Dictionary:
    """Store a dictionary trained for `source` on `samples` bodies (inside the caller's
    write transaction); one already stored under its name is kept as it is."""
    dictionary = Dictionary(data)
    _LOADED.setdefault(dictionary.id, dictionary)
    await tx.execute(
        "INSERT INTO body_dictionaries (id, source, created_at, samples, data) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        dictionary.id,
        source,
        time.time_ns() // 1000,
        samples,
        data,
    )
    return dictionary


def stored(row_codec: Any, row_dictionary: Any, row_data: Any) -> Stored | None:
    """A `bodies` row's stored body, or None where the receipt has no body row."""
    if row_data is None:
        return None
    ident = None if row_dictionary is None else int(row_dictionary)
    return Stored(int(row_codec), ident, bytes(row_data))


async def erase(
    tx: Tx, packer: Packer, by: int, changes: Mapping[int, tuple[str, bytes | None]]
) -> None:
    """Inside the write transaction that appends erasure record `by`: replace each body
    `changes` names (seq -> its source and the redacted copy to keep, None: nothing),
    marking it as the record's doing."""
    rows: list[tuple[Any, ...]] = []
    for seq, (source, kept) in sorted(changes.items()):
        codec, ident, data = (
            (PLAIN, None, b"") if kept is None else pack(kept, packer.current.get(source))
        )
        rows.append((codec, ident, len(kept or b""), data, by, seq))
    await tx.executemany(
        "UPDATE bodies SET codec = ?, dictionary = ?, size = ?, data = ?, erased_by = ? "
        "WHERE seq = ?",
        rows,
    )


async def mark_erased(tx: Tx, erased: Iterable[tuple[int, int]]) -> None:
    """Inside a verbatim append (an import, a migration): mark the bodies an erasure
    record changed ((seq, record) pairs; the bodies are stored as they came)."""
    await tx.executemany(
        "UPDATE bodies SET erased_by = ? WHERE seq = ?", [(by, seq) for seq, by in erased]
    )


async def erased(tx: Tx) -> dict[int, int]:
    """Every body an erasure record changed: seq -> the record's seq."""
    rows = await tx.fetch("SELECT seq, erased_by FROM bodies WHERE erased_by IS NOT NULL")
    return {int(seq): int(by) for seq, by in rows}


class BodyStats(msgspec.Struct, frozen=True, kw_only=True):
    """What body storage holds: bodies stored, their raw and stored bytes, how many are
    kept plain (they did not compress), the dictionaries, and the bodies erasure records
    changed (removed or redacted) with those records."""

    bodies: int
    raw_bytes: int
    stored_bytes: int
    plain: int
    dictionaries: int
    erased: int = 0
    erased_by: tuple[int, ...] = ()


async def stats(tx: Tx) -> BodyStats:
    """Body storage's figures (one pass over the bodies)."""
    rows = await tx.fetch(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(length(data)), 0), "
        "COALESCE(SUM(CASE WHEN codec = 0 THEN 1 ELSE 0 END), 0) FROM bodies"
    )
    count, raw, kept, plain = (int(value) for value in rows[0])
    dictionaries = int((await tx.fetch("SELECT COUNT(*) FROM body_dictionaries"))[0][0])
    changed = await erased(tx)
    return BodyStats(
        bodies=count,
        raw_bytes=raw,
        stored_bytes=kept,
        plain=plain,
        dictionaries=dictionaries,
        erased=len(changed),
        erased_by=tuple(sorted(set(changed.values()))),
    )
