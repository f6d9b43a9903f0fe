"""Recipient addresses and event times as the projections compare them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import idna

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NUMBER = re.compile(r"^\d{9,16}(?:\.\d+)?$")
# The times a datetime can show (years 1 to 9999, UTC): anything outside is unreadable,
# not a value to store (it may not fit a SQLite INTEGER) or to fail on when shown.
_EARLIEST = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LATEST = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


# What an address that needs no parsing looks like: ASCII, no display name, no comment,
# no quoting, no brackets, no blanks inside, no trailing dot.
_PLAIN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]*[A-Za-z0-9-]")


def normalize_recipient(address: str) -> str:
    """The one form an address is stored, compared and queried in.

    - the addr-spec only: `"Bob" <Bob@Example.org>` and `<bob@example.org>` are
      `bob@example.org` (a display name, comments and angle brackets are dropped);
    - lower-cased, the local part included: RFC 5321 lets a server treat `Bob` and `bob`
      as two mailboxes, but no mailbox provider in use does, and a suppression list
      that told them apart would mail someone who said no;
    - the domain IDNA-encoded (`bücher.example` is `xn--bcher-kva.example`), a trailing
      dot dropped.

    Text that holds no parsable address is trimmed and lower-cased the same way.
    """
    text = address.strip()
    if _PLAIN.fullmatch(text):
        return text.lower()
    # Text a parser reads differently the second time (garbage, not addresses) is
    # read again until it stands still, so that normalising twice changes nothing.
    for _ in range(8):
        again = _canonical(text)
        if again == text:
            break
        text = again
    return text


def _canonical(text: str) -> str:
    spec = _addr_spec(text.strip())
    local, at, domain = spec.rpartition("@")
    if not at:
        return spec.lower()
    return f"{local.strip().lower()}@{_domain(domain)}"


def _addr_spec(text: str) -> str:
    """The addr-spec in `text` as an address parser reads it; the text as it stands (less
    angle brackets) when the parser reads no address with a local part and a domain in
    it, or one that it would not read back the same."""
    _, spec = parseaddr(text)
    local, _, domain = spec.rpartition("@")
    if local and domain and parseaddr(spec)[1] == spec:
        return spec
    return text.strip("<>").strip()


def _domain(domain: str) -> str:
    """A domain in its ASCII (A-label) form, lower-cased, without a trailing dot. A label
    that IDNA refuses (not a valid host name) stays as it is, lower-cased."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return ".".join(_label(label) for label in domain.split("."))


def _label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError:
        return label


_BLANKS = re.compile(r"\s+")


def split_recipients(values: Iterable[str]) -> list[str]:
    """The addresses in fields that each hold a list of addresses in one string, as
    addr-specs: `"Smith, Bob" <bob@x.org>, carol@y.org` is `bob@x.org` and `carol@y.org`
    (a real address parser, so a display name never becomes a recipient of its own).
    `,` and `;` separate addresses; a string of bare addresses with neither (no quotes,
    angle brackets or comments either) is separated at blanks."""
    found: list[str] = []
    for value in values:
        if not any(mark in value for mark in '"<>(),;'):
            value = _BLANKS.sub(",", value.strip())
        found.extend(spec.strip() for _, spec in getaddresses([value]))
    return [spec for spec in found if spec]


def parse_time(text: str | None) -> int | None:
    """An event time as microseconds since the Unix epoch (UTC), or None if unreadable.

    Takes ISO-8601 (a missing offset means UTC; a trailing ` UTC` or ` GMT` is read as
    one), RFC 2822 dates (`Mon, 04 May 2026 10:15:02 +0000`) and epoch seconds or
    milliseconds; a time outside years 1 to 9999 UTC is unreadable.
    """
    if not text:
        return None
    text = text.strip()
    if _EPOCH_NUMBER.match(text):
        seconds = float(text)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        micros = round(seconds * 1_000_000)
    else:
        moment = _datetime(text)
        if moment is None:
            return None
        micros = to_micros(moment)
    return micros if _EARLIEST <= micros <= _LATEST else None


_ZONE_WORD = re.compile(r"\s*(?:UTC|GMT|Z)$", re.IGNORECASE)


def _datetime(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    bare = _ZONE_WORD.sub("", text)
    if bare != text:
        try:
            moment = datetime.fromisoformat(bare)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return parsedate_to_datetime(text)  # RFC 2822 (an unknown zone is UTC)
    except (TypeError, ValueError, IndexError):
        return None


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def format_time(micros: int | None) -> str | None:
    """ISO-8601 UTC text for a microsecond timestamp."""
    if micros is None:
        return None
    moment = _EPOCH + timedelta(microseconds=micros)  # exact: no float rounding
    spec = "seconds" if micros % 1_000_000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
