"""The fast form reader is `parse_qsl(…, keep_blank_values=True)`, whatever the text."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus, unquote_plus

from hypothesis import example, given
from hypothesis import strategies as st

from projections.providers.forms import form_pairs, unquote_form

# Text made of what form bodies are made of, and of what could trip a shortcut: escapes
# of separators, of bytes above 0x7F, broken escapes, the placeholder characters.
pieces = st.sampled_from(
    ["&", "=", "+", "%", "%26", "%3D", "%3d", "%2B", "%41", "%4a", "%4A", "%C3%A9", "%e9",
     "%zz", "%4", "%%", "a", "Z", "é", "\ue000", "\ue001", " ", "%0A", "%00", "%7F", "%80"]
)  # fmt: skip
form_text = st.lists(pieces | st.text(max_size=3), max_size=30).map("".join)


@given(text=form_text)
@example("a=%26&b%3D=%3d%2B&c")
@example("event=bounce&rcpt=%E2%98%83%40example.org&x=%")
def test_form_pairs_is_parse_qsl(text: str) -> None:
    assert form_pairs(text) == parse_qsl(text, keep_blank_values=True)


@given(text=form_text)
def test_unquote_form_is_unquote_plus(text: str) -> None:
    assert unquote_form(text) == unquote_plus(text)


@given(pairs=st.lists(st.tuples(st.text(), st.text()), max_size=8))
def test_what_urlencode_writes_is_read_back(pairs: list[tuple[str, str]]) -> None:
    text = "&".join(f"{quote_plus(name)}={quote_plus(value)}" for name, value in pairs)
    assert form_pairs(text) == parse_qsl(text, keep_blank_values=True)
