"""A decoder bug in one receipt must not stall the projection behind it."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Receipt
from projections.facts import derive
from projections.providers import smtp2go


def _receipt(seq: int, body: bytes) -> Receipt:
    return Receipt(
        seq=seq,
        source="smtp2go",
        received_at=1_780_000_000_000_000,
        content_type="application/json",
        body=body,
        headers={},
        peer=None,
        body_sha256=b"\0" * 32,
        chain_hash=b"\0" * 32,
    )


def test_a_decoder_that_raises_unexpectedly_yields_no_facts_and_logs_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(raw: Any) -> Any:
        raise KeyError("a field the decoder forgot could be missing")

    monkeypatch.setattr(smtp2go, "facts", broken)
    body = b'{"event": "bounce", "bounce": "hard", "rcpt": "a@example.org", "id": "1"}'
    with caplog.at_level("ERROR", logger="bounceledger.facts"):
        assert derive(_receipt(7, body)) == []
    assert "receipt 7" in caplog.text


def test_the_same_receipt_derives_normally_without_the_bug() -> None:
    body = b'{"event": "bounce", "bounce": "hard", "rcpt": "a@example.org", "id": "1"}'
    (keyed,) = derive(_receipt(7, body))
    assert keyed.fact.recipient == "a@example.org"
    assert keyed.fact.bounce_class == "hard"
