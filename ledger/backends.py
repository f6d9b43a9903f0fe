"""Choosing a backend by the ledger's address: a registry of URL schemes.

A SQLite file's path has no scheme; a `postgresql://` (or `postgres://`) URL names a
PostgreSQL database. A third backend is one module with an `open_at(address, pool_min,
pool_max)` coroutine, and one line here. Backend modules are imported when first used,
so a SQLite user never loads a PostgreSQL driver.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from ledger.store import Store

# URL scheme -> the module that opens such a ledger.
SCHEMES: dict[str, str] = {
    "postgresql": "ledger.postgres",
    "postgres": "ledger.postgres",
}
FILE = "ledger.sqlite"  # an address without a scheme: a file's path

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class UnknownBackend(ValueError):
    """When an address is a URL of a scheme no backend serves."""


def scheme_of(target: str | Path) -> str | None:
    """The URL scheme of an address (lower-cased), or None for a file's path."""
    if isinstance(target, Path):
        return None
    found = _URL.match(target)
    return found.group(1).lower() if found else None


def is_database_url(target: str | Path) -> bool:
    """Whether an address is a URL some backend serves (not a file's path)."""
    return scheme_of(target) in SCHEMES


def as_target(text: str | Path) -> str | Path:
    """An address as a store target: a URL of a known scheme stays text, a path becomes a
    Path; UnknownBackend for a URL no backend serves (never read as a file name)."""
    scheme = scheme_of(text)
    if scheme is None:
        return Path(text)
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in sorted(SCHEMES))
        raise UnknownBackend(f"no backend serves {scheme}:// addresses (known: {known})")
    return str(text)


async def open_store(target: str | Path, *, pool_min: int = 2, pool_max: int = 10) -> Store:
    """The ledger at `target`: a URL of a registered scheme (with a pool of `pool_min` to
    `pool_max` connections where the backend pools them), or the path of a SQLite file."""
    address = as_target(target)
    scheme = scheme_of(address)
    module = importlib.import_module(FILE if scheme is None else SCHEMES[scheme])
    store: Store = await module.open_at(address, pool_min=pool_min, pool_max=pool_max)
    return store
