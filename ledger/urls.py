"""Database URLs in messages and logs: the one way a URL is shown (`redact`), and the
check that refuses a URL a driver would misread before it can quote a password."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit

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
