"""Recipient addresses and event times as the projections compare them."""

from __future__ import annotations

import re
import unicodedata
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
# no quoting, no brackets, no blanks or control characters inside, no trailing dot.
_PLAIN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]*[A-Za-z0-9-]")
# The longest addr-spec there is (RFC 5321: a path of 256 octets, less its `<>`).
MAX_ADDRESS = 254
# What no address holds and not every backend can store: C0 controls, DEL, C1 controls
# (PostgreSQL's TEXT holds no NUL) and lone surrogates (not encodable in UTF-8).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What shows as nothing: zero-width space, non-joiner and joiner, word joiner, the byte
# order mark, the soft hyphen.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# A local part that needs no quoting (RFC 5322 dot-atom; RFC 6532 lets atext be any
# non-ASCII character, blanks excepted).
_ATOM = r'[^\s\x00-\x1f\x7f()<>\[\]:;@\\,."]+'
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def normalize_recipient(address: str) -> str:
    """The one form an address is stored, compared and queried in; "" for text that
    names no recipient (the event is then counted as unattributed).

    - the addr-spec only: `"Bob" <Bob@Example.org>` and `<bob@example.org>` are
      `bob@example.org` (a display name, comments and angle brackets are dropped);
      surrounding whitespace (what `str.strip` trims: blanks, tabs, newlines, NBSP) is
      trimmed, and so are invisible characters anywhere (zero-width space, non-joiner,
      joiner, word joiner, BOM, soft hyphen);
    - refused (""), so that every backend stores and answers the same: text holding a
      control character (U+0000-U+001F, U+007F-U+009F) or a lone surrogate anywhere
      once trimmed and rid of invisible characters (a display name included), and a
      result longer than 254 characters (RFC 5321);
    - lower-cased, the local part included: RFC 5321 lets a server treat `Bob` and `bob`
      as two mailboxes, but no mailbox provider in use does, and a suppression list
      that told them apart would mail someone who said no; plus tags are kept;
    - the local part in Unicode NFC, and unquoted when it needs no quotes (RFC 5321:
      `"bob"@…` is `bob@…`); one that does (a blank, `..`, an edge dot, `@`…) keeps
      them, as `"…"` with only `\\` and `"` escaped;
    - the domain in its ASCII (A-label) form, without a trailing dot: IDNA 2008 (UTS 46)
      where it takes the domain (`bücher.example` is `xn--bcher-kva.example`), else
      label by label IDNA 2008, then IDNA 2003, then bare punycode (`i❤.ws` is
      `xn--i-7iq.ws`, as providers report it).

    Text that holds no parsable address is trimmed, refused or lower-cased the same way.
    Normalising twice changes nothing.
    """
    text = address.strip()
    if _PLAIN.fullmatch(text):  # the hot path: most addresses need nothing more
        return text.lower() if len(text) <= MAX_ADDRESS else ""
    text = text.translate(_INVISIBLE).strip()
    if _UNSTORABLE.search(text):
        return ""
    # Text a parser reads differently the second time (garbage, not addresses) is
    # read again until it stands still, so that normalising twice changes nothing; text
    # still moving after 8 readings ("@" + "< " * 7 + "<." needs one more for every
    # "< ") names no recipient.
    for _ in range(8):
        again = _canonical(text)
        if again == text:
            break
        text = again
    else:
        return ""
    return text if len(text) <= MAX_ADDRESS else ""


def _canonical(text: str) -> str:
    spec = _addr_spec(text.strip())
    local, at, domain = spec.rpartition("@")
    if not at:
        return _nfc(spec.lower())
    return f"{_local(local)}@{_domain(domain)}"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _local(local: str) -> str:
    """A local part lower-cased, in NFC, quoted only if it must be."""
    local = _nfc(local.strip().lower())
    quoted = _QUOTED.fullmatch(local)
    if quoted is None:
        return local
    content = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
    if _DOT_ATOM.fullmatch(content):
        return content
    return '"' + content.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    """A domain in its ASCII (A-label) form, lower-cased, without a trailing dot."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return ".".join(_label(label) for label in domain.split("."))


def _label(label: str) -> str:
    """One label as ASCII: IDNA 2008 (UTS 46), else IDNA 2003 (which takes symbols such
    as emoji), else bare punycode of its NFC form."""
    if label.isascii():
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError:
        pass
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return "xn--" + _nfc(label).encode("punycode").decode("ascii")


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
