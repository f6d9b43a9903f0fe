"""A stored body (ledger/bodies.py): compressed when that is smaller, plain when not, and
always the same bytes back — with or without a dictionary."""

from __future__ import annotations

import hashlib
import json

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bodies import (
    LEVEL,
    MIN_SAMPLES,
    PLAIN,
    ZSTD,
    Dictionary,
    Stored,
    dictionary_id,
    dictionary_name,
    pack,
    train,
    unpack,
)
from ledger.body_store import TRAIN_AFTER, Packer
from ledger.errors import BodyMissing
from tests.conftest import examples


def webhook(n: int) -> bytes:
    """A body of the kind a dictionary learns: the same keys and hosts, other values."""
    return json.dumps(
        {
            "event": ["delivered", "bounce", "spam"][n % 3],
            "rcpt": f"person{n}@example{n % 7}.org",
            "sendtime": f"2026-05-04T10:{n % 60:02d}:00Z",
            "email_id": f"1q{n:08d}-abcdef-{n * 7919 % 100000:05d}",
            "bounce": "hard" if n % 2 else "soft",
            "context": "smtp;550 5.1.1 <someone@example.org>: Recipient address rejected",
            "host": "mail.smtp2go.com [203.0.113.7]",
        }
    ).encode()


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    data = train([webhook(n) for n in range(MIN_SAMPLES * 2)])
    assert data is not None
    return Dictionary(data)


@given(body=st.binary(max_size=4096))
@settings(max_examples=examples(200))
def test_any_bytes_come_back_without_a_dictionary(body: bytes) -> None:
    stored = pack(body)
    assert unpack(stored, {}) == body
    assert len(stored.data) <= len(body)  # never larger than the raw bytes


@given(body=st.binary(max_size=4096) | st.integers(0, 10**6).map(webhook))
@settings(max_examples=examples(200))
def test_any_bytes_come_back_with_a_dictionary(body: bytes, dictionary: Dictionary) -> None:
    stored = pack(body, dictionary)
    assert unpack(stored, {dictionary.id: dictionary}) == body
    assert len(stored.data) <= len(body)
    # a body stored plain names no dictionary; a compressed one names the one it needs
    assert stored.dictionary == (dictionary.id if stored.codec == ZSTD else None)


def test_a_body_that_does_not_compress_is_kept_plain() -> None:
    noise = hashlib.sha256(b"noise").digest() + hashlib.sha256(b"more").digest()
    stored = pack(noise)
    assert stored == Stored(PLAIN, None, noise)


def test_a_webhook_body_compresses_and_a_dictionary_compresses_it_further(
    dictionary: Dictionary,
) -> None:
    body = webhook(10**6 + 1)  # not among the samples
    alone, with_dictionary = pack(body), pack(body, dictionary)
    assert alone.codec == ZSTD
    assert len(alone.data) < len(body)
    assert len(with_dictionary.data) < len(alone.data) / 2


def test_a_missing_dictionary_is_named(dictionary: Dictionary) -> None:
    stored = pack(webhook(3), dictionary)
    with pytest.raises(BodyMissing, match=dictionary_name(dictionary.id)) as raised:
        unpack(stored, {})
    assert "not in the database" in str(raised.value)


def test_an_unknown_codec_and_bytes_that_do_not_decompress_are_refused() -> None:
    with pytest.raises(BodyMissing, match="unknown body codec 7"):
        unpack(Stored(7, None, b"x"), {})
    with pytest.raises(BodyMissing, match="does not decompress"):
        unpack(Stored(ZSTD, None, b"\x28\xb5\x2f\xfd garbage"), {})


def test_a_dictionary_is_named_by_its_bytes(dictionary: Dictionary) -> None:
    assert dictionary.id == dictionary_id(dictionary.data)
    assert Dictionary(dictionary.data).id == dictionary.id
    assert dictionary_id(dictionary.data + b"\x00") != dictionary.id
    assert -(2**63) <= dictionary.id < 2**63  # fits a 64-bit integer column
    assert dictionary_name(-1) == "zdict:ffffffffffffffff"


def test_too_few_samples_train_no_dictionary() -> None:
    assert train([webhook(n) for n in range(MIN_SAMPLES - 1)]) is None
    assert train([b""] * (MIN_SAMPLES * 2)) is None  # empty bodies are no samples


def test_a_stored_frame_keeps_its_size_and_no_checksum_or_dictionary_id(
    dictionary: Dictionary,
) -> None:
    """The receipt's digest is the check, and the body row names the dictionary: neither
    is repeated in every frame (4 bytes each)."""
    body = webhook(77)
    own = Dictionary(dictionary.data)  # made here: the test reaches Dictionary()
    for stored in (pack(body), pack(body, own)):
        params = zstandard.get_frame_parameters(stored.data)
        assert params.content_size == len(body)
        assert params.has_checksum is False
        assert params.dict_id == 0


def test_every_body_is_compressed_at_the_chosen_level(dictionary: Dictionary) -> None:
    body = webhook(78)
    own = Dictionary(dictionary.data)  # made here: the test reaches Dictionary()
    at_level = zstandard.ZstdCompressor(
        level=LEVEL,
        dict_data=zstandard.ZstdCompressionDict(dictionary.data),
        write_checksum=False,
        write_dict_id=False,
    )
    assert pack(body, own).data == at_level.compress(body)
    alone = zstandard.ZstdCompressor(level=LEVEL, write_checksum=False)
    assert pack(body).data == alone.compress(body)


def test_a_source_is_due_a_dictionary_once_enough_bodies_are_stored_without_one(
    dictionary: Dictionary,
) -> None:
    packer = Packer()
    packer.rows([(n, "smtp2go", webhook(n)) for n in range(TRAIN_AFTER - 1)])
    packer.rows([(0, "ses", webhook(0))])
    assert packer.untrained() == []
    packer.rows([(TRAIN_AFTER, "smtp2go", webhook(1))])
    assert packer.untrained() == ["smtp2go"]
    packer.use("smtp2go", dictionary)
    assert packer.untrained() == []
    rows = packer.rows([(9, "smtp2go", webhook(9)), (10, "ses", webhook(10))])
    assert [(seq, ident) for seq, _, ident, _, _ in rows] == [(9, dictionary.id), (10, None)]
    assert packer.untrained() == []  # one with a dictionary is never due again
    packer.use("ses", dictionary)  # a source asked for before it was counted
    assert packer.current == {"smtp2go": dictionary, "ses": dictionary}


def test_a_source_too_small_to_train_on_is_due_again_after_as_many_more() -> None:
    packer = Packer()
    packer.rows([(n, "ses", webhook(n)) for n in range(TRAIN_AFTER)])
    assert packer.untrained() == ["ses"]
    packer.not_yet("ses")
    assert packer.untrained() == []
    packer.rows([(n, "ses", webhook(n)) for n in range(TRAIN_AFTER - 1)])
    assert packer.untrained() == []
    packer.rows([(0, "ses", webhook(0))])
    assert packer.untrained() == ["ses"]
