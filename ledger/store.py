"""The store interface every ledger backend implements, and opening one by its address."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote_plus, urlsplit

from ledger.group import CommitReport
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sql import Tx

# The door identity of a stored delivery (source, body) -> identity or None (api/replays.py).
Identify = Callable[[str, bytes], str | None]


class Store(Protocol):
    """An append-only, hash-chained log of receipts, and transactions on the tables
    kept beside it (the projection, the quarantine) in the same database."""

    async def append(self, receipt: NewReceipt) -> AppendResult: ...
    async def drain(self) -> None: ...
    async def append_verbatim(
        self,
        receipts: Iterable[Receipt],
        progress: Callable[[int], None] | None = None,
        identify: Identify | None = None,
    ) -> int: ...
    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult: ...
    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]: ...
    async def arrivals(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, int]]: ...
    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]: ...
    async def get(self, seq: int) -> Receipt | None: ...
    async def last_seq(self) -> int: ...
    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]: ...
    async def wait_for_appends(self, timeout: float) -> None: ...
    async def recheck_writable(self) -> bool: ...
    async def exposure(self) -> list[str]: ...
    async def projector_lease(self) -> bool: ...
    def reading(self) -> AbstractAsyncContextManager[Tx]: ...
    def writing(self, *, durable: bool = True) -> AbstractAsyncContextManager[Tx]: ...
    async def close(self) -> None: ...

    @property
    def write_error(self) -> str | None: ...
    @property
    def on_commit(self) -> Callable[[CommitReport], None] | None: ...
    @on_commit.setter
    def on_commit(self, hook: Callable[[CommitReport], None] | None) -> None: ...


def is_url(target: str | Path) -> bool:
    """Whether a `--db` value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def as_target(text: str | Path) -> str | Path:
    """A `--db` value as a store address: a URL stays text, anything else is a path."""
    return text if is_url(text) else Path(text)


async def open_store(target: str | Path, *, pool_min: int = 2, pool_max: int = 10) -> Store:
    """The ledger at `target`: a `postgresql://` URL (with a pool of `pool_min` to
    `pool_max` connections), or the path of a SQLite file."""
    if is_url(target):
        from ledger.postgres import PostgresStore  # asyncpg only when it is used

        return await PostgresStore.open(str(target), min_size=pool_min, max_size=pool_max)
    from ledger.sqlite import SQLiteStore

    return await SQLiteStore.open(Path(target))


# What a database URL's credentials are replaced by in messages and logs.
HIDDEN = "***"
# A query parameter carries a credential when its name (decoded, any case) holds one of
# these, or ends in `key`: password, sslpassword, passfile, sslkey, token, secret, ...
_CREDENTIAL_WORDS = ("pass", "pwd", "secret", "token")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# One host of a URL's host list (after its user information): a name, an address, an
# escaped socket directory or [IPv6], and a numeric port.
_HOST = re.compile(r"(?:\[[0-9A-Za-z:.%]*\]|[^:\[\]/@?#]*)(?::[0-9]*)?")


def is_credential(name: str) -> bool:
    """Whether a URL query parameter called `name` (as decoded) carries a credential."""
    key = name.strip().lower()
    return key.endswith("key") or any(word in key for word in _CREDENTIAL_WORDS)


def _query(query: str) -> str | None:
    """The query with every credential's value hidden; a field without `=` (part of a
    value holding an unescaped `&`?) hidden whole; None when a name holds an `@`."""
    shown = []
    for field in re.split(r"([&;])", query):
        name, eq, _ = field.partition("=")
        if field in ("&", ";") or not field:
            shown.append(field)
        elif "@" in name:
            return None
        elif not eq:
            shown.append(HIDDEN)
        else:
            shown.append(f"{name}={HIDDEN}" if is_credential(unquote_plus(name)) else field)
    return "".join(shown)


def redact(url: str) -> str:
    """A database URL fit for messages and logs, the one way every message shows one.

    The user information's password is dropped (`postgresql://user@host:5432/db`); the
    value of every query parameter that carries a credential (`password`, `sslpassword`,
    `passfile`, `sslkey`, any name holding `pass`, `pwd`, `secret` or `token`, or ending
    in `key`) becomes `***` (`?sslmode=require&password=***`), and so does a query field
    without `=`; a fragment is dropped; the rest is shown as given. A URL that cannot be
    read unambiguously (an `@` past its user information, a port that is no number: an
    unescaped character of a password) is shown as `scheme://***`. Text that is no URL
    (a file's path) is returned as it is."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return url
    slashes = "//" if url[scheme.end() :].startswith("//") else ""
    shown = _shown(url)
    return f"{scheme.group()}{slashes}{HIDDEN if shown is None else shown}"


def _shown(url: str) -> str | None:
    """What `redact` shows of `url` after its scheme (and //); None when unreadable."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if (
        "@" in parts.path
        or "@" in parts.fragment
        or not all(_HOST.fullmatch(host) for host in hosts.split(","))
    ):
        return None
    query = _query(parts.query)
    if query is None:
        return None
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}@{hosts}" if user else hosts
    return f"{netloc}{parts.path}{'?' if query else ''}{query}"


def url_problem(url: str) -> str | None:
    """Why a database driver would not read `url` as it is written (None when it would):
    a reserved character of a user name or password left unescaped, a query field
    without a value. Such a URL is refused before it reaches the driver, whose error
    message could quote a piece of the password."""
    if _shown(url) is None:
        return (
            "its host or port cannot be read: a reserved character in a user name or "
            "password (/ ? # @ :) must be %-escaped"
        )
    parts = urlsplit(url)
    if parts.netloc.count("@") > 1:
        return "an @ in its user name or password must be %-escaped as %40"
    if any(field and "=" not in field for field in re.split("[&;]", parts.query)):
        return "each query field needs a value (name=value; an & in a value is %26)"
    return None
