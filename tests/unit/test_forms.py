"""Form bodies (`application/x-www-form-urlencoded`) as SMTP2GO and Mailgun send them:
read exactly as `parse_qsl(…, keep_blank_values=True)` reads them, and bodies whose escapes
are all of ASCII bytes decoded without the standard library's general (slow) path."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from projections.providers import forms
from projections.providers.forms import form_pairs, unquote_form

_ENCODED_BODY = (
    "event=bounce&email=bob%40example.org&sender=news%40shop.example"
    "&message-id=%3C20261207.1%40mail.shop.example%3E&bounce=hard&host=mx+1.example.org"
)
_DECODED_PAIRS = [
    ("event", "bounce"),
    ("email", "bob@example.org"),
    ("sender", "news@shop.example"),
    ("message-id", "<20261207.1@mail.shop.example>"),
    ("bounce", "hard"),
    ("host", "mx 1.example.org"),
]


def _must_not_be_called(*args: object, **kwargs: object) -> str:
    raise AssertionError("the general decoding path was taken")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("event=bounce&host=mx+1.example.org", [("event", "bounce"), ("host", "mx 1.example.org")]),
        ("reason=user+unknown&x=", [("reason", "user unknown"), ("x", "")]),
        ("a+b=c", [("a b", "c")]),
        ("plain=value&flag", [("plain", "value"), ("flag", "")]),
    ],
)
def test_a_plus_in_a_form_field_reads_as_a_space(
    body: str, expected: list[tuple[str, str]]
) -> None:
    assert form_pairs(body) == expected == parse_qsl(body, keep_blank_values=True)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a=%26b", [("a", "&b")]),
        ("q=x%3Dy%26z%3dw", [("q", "x=y&z=w")]),
        ("k%26=v", [("k&", "v")]),
    ],
)
def test_escaped_separators_stay_inside_the_name_or_value_they_belong_to(
    body: str, expected: list[tuple[str, str]]
) -> None:
    assert form_pairs(body) == expected == parse_qsl(body, keep_blank_values=True)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a=\ue000", [("a", "\ue000")]),
        ("a=\ue001", [("a", "\ue001")]),
        ("a=%41\ue000", [("a", "A\ue000")]),
        ("a=%41\ue001", [("a", "A\ue001")]),
        ("a=%26\ue000", [("a", "&\ue000")]),
        ("a=%3D\ue001", [("a", "=\ue001")]),
    ],
)
def test_private_use_characters_in_a_body_are_kept_as_they_are(
    body: str, expected: list[tuple[str, str]]
) -> None:
    assert form_pairs(body) == expected == parse_qsl(body, keep_blank_values=True)


def test_a_body_whose_escapes_are_all_ascii_is_decoded_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(forms, "unquote_plus", _must_not_be_called)
    monkeypatch.setattr(forms, "unquote_form", _must_not_be_called)
    assert form_pairs(_ENCODED_BODY) == _DECODED_PAIRS


@pytest.mark.parametrize(
    ("escaped", "expected"),
    [
        ("%3Cmsg%40example.org%3E", "<msg@example.org>"),
        ("%41bc", "Abc"),
        ("user%40example.org", "user@example.org"),
        ("5.1.1+user+unknown%3a+no+such+mailbox", "5.1.1 user unknown: no such mailbox"),
    ],
)
def test_a_value_whose_escapes_are_all_ascii_is_decoded_without_the_general_path(
    monkeypatch: pytest.MonkeyPatch, escaped: str, expected: str
) -> None:
    monkeypatch.setattr(forms, "unquote_plus", _must_not_be_called)
    assert unquote_form(escaped) == expected


def test_a_value_with_an_escape_above_ascii_is_decoded_as_utf8() -> None:
    assert unquote_form("caf%C3%A9+%E2%98%83%41") == "café ☃A"
    assert form_pairs("name=caf%C3%A9&x=%4") == [("name", "café"), ("x", "%4")]
