"""Form bodies (`application/x-www-form-urlencoded`), read as `parse_qsl` reads them.

`urllib.parse.unquote_plus` is general: a regex split into ASCII runs, a bytes round
trip, a table lookup per escape. SMTP2GO's bodies escape ASCII punctuation (`%40`, `%3A`,
`%3C`) two dozen times each, and that generality was most of a webhook's decode time
(bench/README.md, "Measured reasons"). Here an escape of an ASCII byte is one dict lookup on the
string itself; anything else (an escape of a byte above 0x7F, which UTF-8 decoding must
see as bytes, or a malformed one) is left to `unquote_plus`, so the result is always
exactly the standard library's (tests/properties/test_forms.py).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_plus

# "3a" -> ":" for every ASCII byte, each hex digit in either case ("3A", "3a")
_ASCII = {
    high + low: chr(code)
    for code in range(0x80)
    for high in {f"{code >> 4:x}", f"{code >> 4:X}"}
    for low in {f"{code & 15:x}", f"{code & 15:X}"}
}


def unquote_form(text: str) -> str:
    """`unquote_plus(text)`, with ASCII escapes decoded without a bytes round trip."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    decoded = _ascii_unquoted(text, _ASCII)
    return unquote_plus(text) if decoded is None else decoded


def _ascii_unquoted(text: str, table: dict[str, str]) -> str | None:
    """`text` with its %XX escapes decoded through `table`; None when one is not in it."""
    parts = text.split("%")
    try:
        return parts[0] + "".join([table[part[:2]] + part[2:] for part in parts[1:]])
    except KeyError:  # a byte above 0x7F (UTF-8 to decode), or not an escape at all
        return None


# The whole body is unquoted in one pass, before it is split: an escaped separator
# ("%26" is "&", "%3D" is "=") becomes a private-use character first, and is put back
# in the names and values it belongs to.
_AMP, _EQ = "\ue000", "\ue001"
_SEPARATED = _ASCII | {"26": _AMP, "3D": _EQ, "3d": _EQ}


def form_pairs(text: str) -> list[tuple[str, str]]:
    """What `parse_qsl(text, keep_blank_values=True)` returns for a str."""
    whole = None
    if "%" in text and _AMP not in text and _EQ not in text:
        whole = _ascii_unquoted(text.replace("+", " "), _SEPARATED)
    if whole is None:  # one field at a time, as parse_qsl does
        return [_pair(field, unquote_form) for field in text.split("&") if field]
    pairs = [_pair(field, None) for field in whole.split("&") if field]
    if _AMP in whole or _EQ in whole:
        pairs = [(_restored(name), _restored(value)) for name, value in pairs]
    return pairs


def _pair(field: str, unquote: Callable[[str], str] | None) -> tuple[str, str]:
    name, _, value = field.partition("=")
    if unquote is not None:
        if "+" in name or "%" in name:
            name = unquote(name)
        if "+" in value or "%" in value:
            value = unquote(value)
    return name, value


def _restored(text: str) -> str:
    return text.replace(_AMP, "&").replace(_EQ, "=")
