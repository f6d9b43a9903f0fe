"""Erasing one address from stored webhook bodies (GDPR), keeping everyone else's facts.

A receipt that mentions the address is either removed whole (`redact` gives None: it
is about that address only, it is an operator action, or it cannot be redacted safely)
or replaced by a redacted copy. The copy is made token by token, so that everything the
address is not in stays byte for byte as it was:

- a JSON body (validated as JSON first) has every string token that mentions the
  address, object keys included, replaced whole by the placeholder: a display name
  (`"Alice Example <alice@example.org>"`) goes with its address, and a list keeps its
  length, so a provider that counts the recipients it lists (`shared`) counts the same.
  A string that itself holds a JSON object or array (an SNS envelope's `Message`) is
  redacted the same way inside, and put back as a string;
- a form body (`application/x-www-form-urlencoded`, or SMTP2GO, which sniffs its
  format) has every name and value that mentions the address replaced by the
  placeholder, percent-encoded;
- anything else that mentions the address is removed whole.

The copy is then checked twice: it must not mention the address in any form `mentions`
finds, and the facts it yields about every other recipient must be the original's
(ignoring their position among the receipt's facts); otherwise the body is removed.

Pure: no I/O. The same inputs always give the same bytes.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote_plus, unquote

import msgspec

from ledger import Receipt
from projections import operator
from projections.facts import Keyed, derive
from projections.providers import smtp2go
from projections.providers.common import JSON_ERRORS
from projections.recipients import normalize_recipient

__all__ = ["FORM", "mentions", "redact"]

FORM = "application/x-www-form-urlencoded"

# How many layers of escaping `mentions` looks through: an address escaped in a JSON
# string inside a JSON string (SNS), percent-encoded twice (`%2540`), and so on.
_ROUNDS = 8
# A JSON string token (in valid JSON, every `"` outside a string starts one).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SURROGATE = re.compile("[\ud800-\udfff]")
# What shows as nothing (as projections.recipients drops it from an address).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def redact(receipt: Receipt, email: str, placeholder: str) -> bytes | None:
    """The body of `receipt` with `email` (a normalized address) erased: None when the
    whole body must go (every fact it yields names `email`, it yields no fact about anyone
    else, it is an operator receipt, or it cannot be redacted safely); otherwise a copy in which
    every string that mentions the address is replaced whole by `placeholder`.

    A body that does not mention the address comes back unchanged (the same object).
    `placeholder` should be non-empty text naming no one: an empty one would shorten the
    lists some providers count recipients in, and the copy would then be refused (removed).
    """
    email = _address(email)
    needles = _needles(email)
    if not _found(receipt.body, needles):
        return receipt.body
    if receipt.source == operator.SOURCE:
        return None
    facts = derive(receipt)
    others = {keyed.fact.recipient for keyed in facts} - {email}
    if not others:
        return None
    body = _redacted_body(receipt, needles, placeholder)
    if body is None or _found(body, needles):
        return None
    copy = msgspec.structs.replace(receipt, body=body)
    return body if _about(derive(copy), others) == _about(facts, others) else None


def mentions(body: bytes, email: str) -> bool:
    """Whether the bytes hold the address in any form a search would find: any letter case,
    JSON \\u-escaped characters, percent-encoding (%40 for @, + or %20 irrelevant), ...

    Also looked through: JSON escapes of any kind (`\\/`, `\\"`) and escapes nested
    inside escaped JSON strings, percent-encoding nested up to a few layers (`%2540`),
    HTML character references (`&#64;`, `&commat;`), invisible characters inside the
    address (zero-width space, soft hyphen...), another Unicode normal form, and the
    domain in its Unicode form (`bücher.example` for `xn--bcher-kva.example`). A space
    and a `+` are taken as the same character (a form decoder reads `+` as a space).
    Not looked through: base64, quoted-printable, MIME encoded words, a quoted local part
    (`"bob"@example.org`).
    """
    return _found(body, _needles(_address(email)))


def _address(email: str) -> str:
    """The address as facts name it (ValueError when there is none: an empty needle
    would be found in every body)."""
    address = normalize_recipient(email)
    if not address:
        raise ValueError("no address to erase")
    return address


# Finding the address.


def _needles(email: str) -> frozenset[str]:
    """The folded forms of the address to look for: as given, and with its domain in
    Unicode."""
    local, at, domain = email.rpartition("@")
    forms = {email, f"{local}{at}{_unicode_domain(domain)}"} if at else {email}
    return frozenset(_folded(form) for form in forms)


def _unicode_domain(domain: str) -> str:
    """`xn--bcher-kva.example` -> `bücher.example` (a label that is not punycode stays)."""
    return ".".join(_unicode_label(label) for label in domain.split("."))


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label


def _folded(text: str) -> str:
    """Text as it is compared: no invisible characters, case-folded, decomposed (NFD: a
    combining mark after the address does not merge into its last letter), `+` for blanks."""
    folded = unicodedata.normalize("NFD", text.translate(_INVISIBLE).casefold())
    return folded.replace(" ", "+")


def _found(body: bytes | str, needles: frozenset[str]) -> bool:
    """Whether any needle is in the text, or in the text with its escapes decoded."""
    text = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
    return any(needle in _folded(view) for view in _views(text) for needle in needles)


def _views(text: str) -> Iterator[str]:
    """The text, then the text with one more layer of escapes decoded, until none is left."""
    yield text
    for _ in range(_ROUNDS):
        decoded = html.unescape(_percent_decoded(_json_unescaped(text)))
        if decoded == text:
            return
        text = decoded
        yield text


def _json_unescaped(text: str) -> str:
    """JSON escapes decoded (`\\u0040` -> `@`, `\\\\` -> `\\`); a surrogate pair is joined."""
    if "\\" not in text:
        return text
    decoded = _JSON_ESCAPE.sub(_unescaped, text)
    if _SURROGATE.search(decoded):
        decoded = decoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return decoded


def _unescaped(match: re.Match[str]) -> str:
    code = match[1]
    return chr(int(code, 16)) if code else _SIMPLE[match[2]]


def _percent_decoded(text: str) -> str:
    return unquote(text) if "%" in text else text


# Redacting.


def _about(facts: list[Keyed], names: set[str]) -> list[Keyed]:
    """The facts about `names`, without their position (`ord`): the placeholder's own
    facts (whatever address a provider reads in it) are left out."""
    return [
        Keyed(keyed.key, msgspec.structs.replace(keyed.fact, ord=0))
        for keyed in facts
        if keyed.fact.recipient in names
    ]


def _redacted_body(receipt: Receipt, needles: frozenset[str], placeholder: str) -> bytes | None:
    """The redacted copy of a JSON or form body; None for any other body."""
    try:
        text = receipt.body.decode("utf-8")
        if _is_json(text):
            return _redacted_json(text, needles, placeholder).encode("utf-8")
        if _is_form(receipt):
            return _redacted_form(text, needles, placeholder).encode("utf-8")
    except (UnicodeError, msgspec.EncodeError):  # a lone surrogate in a nested string
        return None
    return None


def _is_json(text: str) -> bool:
    """Whether the text is one JSON document (a BOM and blanks around it allowed)."""
    document = text.strip().removeprefix("\ufeff").strip()
    if not document:
        return False
    try:
        _json.decode(document)
    except JSON_ERRORS:
        return False
    return True


def _is_form(receipt: Receipt) -> bool:
    """Whether a body that is not JSON is read as a form: by its content type, or from
    SMTP2GO (which reads any body that is not JSON as a form)."""
    media_type = receipt.content_type.partition(";")[0].strip().lower()
    return media_type == FORM or receipt.source == smtp2go.NAME


def _redacted_json(text: str, needles: frozenset[str], placeholder: str) -> str:
    """Valid JSON text with every string token that mentions the address redacted."""
    return _STRING.sub(lambda token: _redacted_string(token[0], needles, placeholder), text)


def _redacted_string(token: str, needles: frozenset[str], placeholder: str) -> str:
    """A JSON string token: unchanged, redacted inside (it holds JSON), or the placeholder."""
    if not _found(token, needles):
        return token
    inner = _nested_json(token)
    if inner is None:
        return _encode.encode(placeholder).decode("utf-8")
    redacted = _redacted_json(inner, needles, placeholder)
    return _encode.encode(redacted).decode("utf-8")


def _nested_json(token: str) -> str | None:
    """The string a JSON token holds when that string is a JSON object or array."""
    try:
        value = _json.decode(token)
    except JSON_ERRORS:
        return None
    if not isinstance(value, str) or value.strip()[:1] not in ("{", "["):
        return None
    return value if _is_json(value) else None


def _redacted_form(text: str, needles: frozenset[str], placeholder: str) -> str:
    """A form body with every name and value that mentions the address redacted; the
    other fields stay as they were encoded."""
    replacement = quote_plus(placeholder, safe="")

    def part(raw: str) -> str:
        return replacement if _found(raw, needles) else raw

    fields = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        fields.append(part(name) + equals + part(value))
    return "&".join(fields)
