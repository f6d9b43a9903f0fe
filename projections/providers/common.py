"""Small helpers the provider modules share: JSON bodies, field reading, derived ids."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from projections.errors import DecodeFailed
from projections.recipients import normalize_recipient

Raw = dict[str, Any]

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
