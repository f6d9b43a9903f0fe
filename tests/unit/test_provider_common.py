"""The helpers every provider decoder shares: JSON bodies, text fields, derived ids and
what a diagnostic text says about a refusal."""

from __future__ import annotations

import pytest

from projections import DecodeFailed
from projections.providers.common import (
    NO_MAILBOX,
    SENDER,
    derived_id,
    json_document,
    json_object,
    text,
    text_refusal,
)


@pytest.mark.parametrize(
    "body",
    [b'\xef\xbb\xbf{"event": "bounce"}', b'  \xef\xbb\xbf {"event": "bounce"}\r\n'],
)
def test_a_body_that_starts_with_a_utf8_byte_order_mark_is_read_as_json(body: bytes) -> None:
    assert json_document(body) == {"event": "bounce"}
    assert json_object(body) == {"event": "bounce"}


@pytest.mark.parametrize("body", [b"", b"  \r\n\t", b"\xef\xbb\xbf", b" \xef\xbb\xbf \n"])
def test_an_empty_body_is_refused_as_an_empty_body(body: bytes) -> None:
    with pytest.raises(DecodeFailed) as refused:
        json_document(body)
    assert str(refused.value) == "empty body"


@pytest.mark.parametrize("body", [b"{", b'{"event": bounce}', b'"\xff"', b"[" * 100_000])
def test_a_body_that_is_not_json_is_refused_with_the_reason(body: bytes) -> None:
    with pytest.raises(DecodeFailed) as refused:
        json_document(body)
    assert str(refused.value).startswith("body is not valid JSON: ")
    assert len(str(refused.value)) > len("body is not valid JSON: ")


@pytest.mark.parametrize("body", [b"[]", b'[{"event": "bounce"}]', b'"bounce"', b"42", b"null"])
def test_a_json_body_that_is_not_one_object_is_refused_as_such(body: bytes) -> None:
    with pytest.raises(DecodeFailed) as refused:
        json_object(body)
    assert str(refused.value) == "body is not a JSON object"


class _Labelled(str):
    """A str whose own display differs from its characters."""

    def __str__(self) -> str:
        return "<hard bounce>"


def test_a_text_field_is_read_by_its_characters_not_by_how_it_displays() -> None:
    assert text(_Labelled(" hard ")) == "hard"
    assert text("  5.1.1 user unknown ") == "5.1.1 user unknown"


def test_derived_ids_are_stable_across_releases() -> None:
    # Derived ids are stored in the ledger and deduplicate redeliveries: the same fields
    # must give the same id in every release.
    assert (
        derived_id("mailgun", "msg-1", None, recipient="Bob@Example.org")
        == "derived:d40d171e5576a27e33f552e685f9fa41"
    )
    assert derived_id("msg-1", "", recipient=None) == "derived:cc75fd1dab2fcefc9e97c16301e68375"


def test_a_missing_field_in_a_derived_id_counts_as_an_empty_one() -> None:
    assert derived_id("msg-1", None) == derived_id("msg-1", "")
    assert derived_id("msg-1", None) == derived_id("msg-1", "", recipient="")
    assert derived_id("msg-1", None) != derived_id("msg-1", "XXXX")
    assert derived_id("msg-1", recipient="bob@example.org") == derived_id(
        "msg-1", recipient="BOB@example.org"
    )


@pytest.mark.parametrize(
    "diagnostic",
    [
        "550 5.1.12 host not found",
        "550 5.1.15 something else",
        "451 15.1.1 not an enhanced code",
        "550 5.1.1.4 not an enhanced code either",
        "version 25.1.1 said no",
    ],
)
def test_a_text_that_only_looks_like_5_1_1_is_not_read_as_an_unknown_mailbox(
    diagnostic: str,
) -> None:
    assert text_refusal(diagnostic) is None


def test_a_text_with_a_look_alike_of_5_1_1_and_a_real_5_7_code_is_a_sender_refusal() -> None:
    assert text_refusal("550 5.1.12 then 5.7.1 message rejected as spam") == SENDER
    assert text_refusal("550 5.7.1 rejected; earlier 5.1.1 user unknown") == NO_MAILBOX
