"""The seam every SQL backend plugs into: a transaction (`Tx`), and what a statement may
rely on.

Everything above the backends — the receipt log's reads (ledger/receipts.py), the shared
store behaviour (ledger/sqlstore.py), the quarantine, the projection, the console's
sign-outs — is written once, in the SQL every backend accepts (`?` placeholders,
`INSERT … ON CONFLICT`, `RETURNING`, `length()`), and runs through a `Tx`. What the
databases do not share is asked of the `Tx`, never decided by naming a database:

- `types`: the words a CREATE TABLE template fills in (`{int}`, `{blob}`, `{text}`,
  `{table}`, `{identity}`);
- `for_update`: appended to a SELECT whose row the transaction will write;
- `plans_ranges`: whether the database plans a range scan from its own statistics;
- `has_table`, `columns`, `rename_table`, `lock`: catalogue questions and the few
  statements whose spelling differs.

This module imports no database driver: each backend's `Tx` lives beside its store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

Row = Sequence[Any]


class Tx(Protocol):
    """Statements inside one transaction: a read snapshot, or a write that commits when
    the `writing()` block ends (and is rolled back if it raises)."""

    @property
    def types(self) -> Mapping[str, str]:
        """The words of a CREATE TABLE template: `int` (a 64-bit integer), `blob`, `text`
        (what makes a text column compare byte-wise, as Python compares strings), `table`
        (options after the closing parenthesis), `identity` (an integer key the database
        assigns), `scratch` (a table for derived rows a crash may lose, kept out of the
        ledger's own file where the backend can)."""
        ...

    # Appended to a SELECT that reads a row the transaction will write: it must hold the
    # row until the commit where other writers could change it meanwhile.
    for_update: str
    # Whether the database picks a range's index from statistics of its own; where it
    # does not, a query may steer it (projections/search.py).
    plans_ranges: bool

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """The rows of a query."""
        ...

    async def execute(self, sql: str, *args: Any) -> None:
        """Run one statement."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of arguments."""
        ...

    async def has_table(self, name: str) -> bool:
        """Whether a table of that name exists (where the ledger's tables live)."""
        ...

    async def columns(self, table: str) -> set[str]:
        """The names of a table's columns (empty when there is no such table)."""
        ...

    async def rename_table(self, old: str, new: str) -> None:
        """Rename a table, and what the database names after it (its primary key's
        index), so that the old name is free for a new table."""
        ...

    async def lock(self, key: int) -> None:
        """Hold a lock named by `key` to the end of the transaction, against every other
        process writing the same database (a no-op where one writer holds it anyway)."""
        ...


async def fetchrow(tx: Tx, sql: str, *args: Any) -> Row | None:
    """The first row of a query, or None."""
    rows = await tx.fetch(sql, *args)
    return rows[0] if rows else None


def statements(templates: Iterable[str], types: Mapping[str, str], **more: str) -> list[str]:
    """DDL templates filled in with a backend's `types` (and `more`), one statement each."""
    return [template.format(**types, **more).strip() for template in templates]
