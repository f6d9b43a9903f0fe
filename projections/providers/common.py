"""Small helpers the provider modules share: JSON bodies, field reading, derived ids, and
what an enhanced status code says about a refusal."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from projections.erasure_keys import PREFIX as KEYED_HASH
from projections.errors import DecodeFailed
from projections.recipients import normalize_recipient

Raw = dict[str, Any]

# Who a permanent refusal is about, as the provider (or the diagnostic text) states it:
# `no_mailbox` the mailbox does not exist (the recipient's fact), `sender` a refusal of
# the sender or the message (policy, reputation, blocklist: RFC 3463 class X.7.X).
Refusal = Literal["no_mailbox", "sender"]
NO_MAILBOX: Refusal = "no_mailbox"
SENDER: Refusal = "sender"

# "Bad destination mailbox address" (RFC 3463 5.1.1) and "recipient address has null
# MX" (RFC 7505 5.1.10) anywhere in a diagnostic text, as a code of its own.
UNKNOWN_MAILBOX = re.compile(r"(?<!\d)(?<!\d\.)5\.1\.(?:1|10)(?!\d)(?!\.\d)")
# A permanent security or policy refusal (5.7.x) anywhere in a diagnostic text.
SENDER_SIDE = re.compile(r"(?<!\d)(?<!\d\.)5\.7\.\d{1,3}(?!\d)(?!\.\d)")
# An enhanced status code where a provider's field states one: `5.1.1`, or at the start
# of a message (`5.7.1 [CS01] Message rejected …`).
_STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)(?!\.\d)")

_json = msgspec.json.Decoder()

# What msgspec raises on a body that is not JSON: a syntax error, invalid UTF-8 inside a
# string, or nesting deeper than the decoder follows.
JSON_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-]+")


def json_document(body: bytes) -> Any:
    """The JSON document in a body (a UTF-8 BOM and surrounding blanks are tolerated)."""
    text = body.strip().removeprefix(b"\xef\xbb\xbf").strip()
    if not text:
        raise DecodeFailed("empty body")
    try:
        return _json.decode(text)
    except JSON_ERRORS as exc:
        raise DecodeFailed(f"body is not valid JSON: {exc}") from exc


def json_object(body: bytes) -> Raw:
    """A body that must hold one JSON object."""
    document = json_document(body)
    if not isinstance(document, dict):
        raise DecodeFailed("body is not a JSON object")
    return document


# A provider's own field that says which kind of mail an event is about (its stream,
# list, group, tag, category, configuration set, custom header…), as (name, value):
# `("message_stream", "broadcast")`, `("tag:campaign", "weekly")` for a named one. The
# policy's `[streams.NAME.match]` maps them to streams (projections/streams.py).
Label = tuple[str, str]
# Bounds on what one event keeps: labels are stored on every fact of the index.
LABELS_KEPT = 32
LABEL_TEXT_MAX = 200


def labels(pairs: Iterable[tuple[str, Any]]) -> tuple[Label, ...]:
    """An event's labels, normalised: names stripped and lower-cased, values as text
    (numbers too: `asm_group_id` 4211 is `"4211"`; objects, arrays, booleans and blanks
    dropped), each cut to LABEL_TEXT_MAX characters; unique, sorted, at most LABELS_KEPT.

    A label says which kind of mail an event is about, never who it is about: one whose
    name or value holds an address (`@`) or an erased address's keyed hash is dropped,
    so the fact index keeps no address in its labels, and redacting a body (which
    replaces addresses with keyed hashes) leaves the other recipients' labels as they were.
    """
    kept: set[Label] = set()
    for name, value in pairs:
        shown = label_value(value)
        key = name.strip().lower()
        if shown is None or not key or _personal(key):
            continue
        kept.add((key[:LABEL_TEXT_MAX], shown))
    return tuple(sorted(kept))[:LABELS_KEPT]


def each(value: Any) -> list[Any]:
    """A field that is one value or an array of them, as a list ([] when missing)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def keyed(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """(`prefix` + key, value) for each entry of a field that should be an object, for
    `labels`: `keyed("metadata:", {"tenant": "t_42"})` -> `[("metadata:tenant", "t_42")]`.
    Blank keys are skipped; anything but an object has no entries."""
    return [(prefix + key.strip(), item) for key, item in obj(value).items() if key.strip()]


def label_value(value: Any) -> str | None:
    """A label's value as `labels` keeps it (None: no label — blank, not a scalar, or
    holding an address or a keyed hash)."""
    shown = text(value)
    return None if shown is None or _personal(shown) else shown[:LABEL_TEXT_MAX]


def _personal(label_text: str) -> bool:
    return "@" in label_text or KEYED_HASH in label_text.lower()  # erasure_keys.PREFIX


def snake(name: str) -> str:
    """`DeliveryDelay` -> `delivery_delay`, `Rendering Failure` -> `rendering_failure`."""
    name = _CAMEL.sub("_", name.strip())
    return _SEPARATORS.sub("_", name).lower()


def text(value: Any) -> str | None:
    """A scalar field as stripped text; None for missing, empty, objects and arrays."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    shown = value if isinstance(value, str) else str(value)
    return shown.strip() or None


def obj(value: Any) -> Raw:
    """A field that should be an object, or {} when it is anything else."""
    return value if isinstance(value, dict) else {}


def derived_id(*parts: str | None, recipient: str | None = None) -> str:
    """A deterministic event id for providers that send none, from identifying fields
    (the recipient as it is compared: case-insensitively)."""
    fields = [*parts, normalize_recipient(recipient) if recipient else None]
    joined = "\x1f".join(part or "" for part in fields)
    return "derived:" + hashlib.sha256(joined.encode()).hexdigest()[:32]


def status_refusal(code: str | None) -> Refusal | None:
    """What an enhanced status code in a provider's field (or at the start of its
    message) says: `no_mailbox` for 5.1.1 / 5.1.10, `sender` for 5.7.x, else None."""
    match = _STATUS.match(code) if code else None
    if match is None or match[1] != "5":
        return None
    if match[2] == "1" and match[3] in ("1", "10"):
        return NO_MAILBOX
    return SENDER if match[2] == "7" else None


def text_refusal(diagnostic: str | None) -> Refusal | None:
    """The refusal a diagnostic text states with an enhanced code anywhere in it (the
    fallback for every provider): 5.1.1 / 5.1.10 wins over 5.7.x."""
    if not diagnostic or "5." not in diagnostic:
        return None
    if "5.1.1" in diagnostic and UNKNOWN_MAILBOX.search(diagnostic):
        return NO_MAILBOX
    if "5.7." in diagnostic and SENDER_SIDE.search(diagnostic):
        return SENDER
    return None


def stronger(*refusals: Refusal | None) -> Refusal | None:
    """The refusal several fields state together: `no_mailbox` wins over `sender`."""
    if NO_MAILBOX in refusals:
        return NO_MAILBOX
    return SENDER if SENDER in refusals else None
