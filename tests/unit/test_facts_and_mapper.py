"""Facts derived from operator receipts, and the mapper's questions about deliveries and
shared bounces — each answer stated where the integration suites only see its effect."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from ledger import Receipt
from projections import operator
from projections.errors import PolicyInvalid
from projections.facts import FUTURE_TOLERANCE_US, Fact, _event_time, derive, is_erasure
from projections.mapping import Mapper, read_policy
from projections.policy import DEFAULT_POLICY
from projections.providers import PROVIDERS
from projections.state import RecipientState
from tests.conftest import fixture_bytes
from tests.logs import kept_records


def receipt(source: str, body: bytes, seq: int = 7) -> Receipt:
    return Receipt(
        seq=seq,
        source=source,
        received_at=1_780_000_000_000_000,
        content_type="application/json",
        body=body,
        headers={},
        peer=None,
        body_sha256=hashlib.sha256(body).digest(),
        chain_hash=bytes(32),
    )


def test_an_operator_release_derives_one_fact_with_what_it_lifts_and_saw() -> None:
    body = operator.action_body(
        "release",
        " Alice@Example.org ",
        actor="ops",
        note="confirmed by phone",
        at=1_780_000_000_000_001,
        lifts=("complaint", "unsubscribe"),
        seen=41,
    )
    (keyed,) = derive(receipt(operator.SOURCE, body, seq=7))
    assert keyed.fact == Fact(
        source="operator",
        raw_kind="release",
        recipient="alice@example.org",
        at=1_780_000_000_000_001,
        seq=7,
        ord=0,
        event_id="operator:7",
        actor="ops",
        note="confirmed by phone",
        lifts=("complaint", "unsubscribe"),
        seen=41,
    )
    # the identity of the event: its source, its id and its recipient
    text = b"operator\x1foperator:7\x1falice@example.org"
    assert keyed.key == hashlib.blake2b(text, digest_size=16).digest()


def test_a_decoder_crash_names_the_receipt_and_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from projections.providers import PROVIDERS

    def crash(*_: object) -> list[dict[str, object]]:
        raise RuntimeError("a decoder bug")

    monkeypatch.setattr(PROVIDERS["mailgun"], "decode", crash)
    with kept_records("bounceledger.facts", logging.ERROR) as records:
        assert derive(receipt("mailgun", b"{}", seq=13)) == []
    assert [record.getMessage() for record in records] == [
        "cannot derive facts from receipt 13 (mailgun)"
    ]


def fact(raw_kind: str, *, message_id: str | None = "m-1", shared: int = 0) -> Fact:
    return Fact(
        source="smtp2go",
        raw_kind=raw_kind,
        recipient="a@example.org",
        at=1,
        seq=1,
        ord=0,
        event_id=f"e-{raw_kind}",
        message_id=message_id,
        shared=shared,
    )


def test_only_a_delivery_naming_its_message_is_a_delivery_of_it() -> None:
    mapper = Mapper(DEFAULT_POLICY)
    assert mapper.delivers(fact("delivered"))
    assert not mapper.delivers(fact("delivered", message_id=None))
    assert not mapper.delivers(fact("bounce"))  # it names a message, and is no delivery
    assert not mapper.delivers(fact("spam"))


def test_a_recipient_is_refolded_from_history_only_when_a_shared_bounce_is_involved() -> None:
    mapper = Mapper(DEFAULT_POLICY)
    clean = RecipientState(email="a@example.org")
    holding = RecipientState(email="a@example.org", shared_bounces=1)
    shared = fact("bounce", shared=2)
    assert mapper.needs_history(clean, [shared])  # its message may have been delivered
    assert mapper.needs_history(holding, [fact("delivered")])  # may take one back
    assert not mapper.needs_history(clean, [fact("delivered")])
    assert not mapper.needs_history(holding, [fact("bounce")])
    assert not mapper.needs_history(clean, [fact("bounce")])


def test_a_policy_file_naming_an_event_its_provider_does_not_send_is_refused_by_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[providers.smtp2go]\nbouncd = "hard_bounce"\n')
    with pytest.raises(PolicyInvalid) as refused:
        read_policy(path)
    known = ", ".join(sorted(PROVIDERS["smtp2go"].DEFAULT_MAPPING))
    assert str(refused.value) == (
        f"{path}: [providers.smtp2go] has no event 'bouncd' (known: {known})"
    )


def test_a_fact_about_the_only_recipient_it_names_is_not_shared() -> None:
    for source, name in (("ses", "hard_bounce.json"), ("smtp2go", "hard_bounce.json")):
        (keyed,) = derive(receipt(source, fixture_bytes(source, name), seq=3))
        assert keyed.fact.shared == 0, source
        assert not any("recipients and not which one" in flag for flag in keyed.fact.flags)
        # its identity: the provider, the provider's event id, the recipient
        text = f"{source}\x1f{keyed.fact.event_id}\x1f{keyed.fact.recipient}".encode()
        assert keyed.key == hashlib.blake2b(text, digest_size=16).digest()


def test_an_event_time_up_to_the_tolerance_after_its_receipt_is_kept() -> None:
    received = 1_780_000_000_000_000
    assert _event_time(received + FUTURE_TOLERANCE_US, received) == (
        received + FUTURE_TOLERANCE_US,
        (),
    )
    later, flags = _event_time(received + FUTURE_TOLERANCE_US + 1, received)
    assert later == received
    assert flags[0].endswith("is after the receipt: the receipt time is used")


def test_only_an_operator_erase_is_an_erasure() -> None:
    """What the feed and the rebuild's swap ask of a fact (projections/feed.py skips the
    erasure's own fold; the swap forgets what a rebuild folded of an erased address)."""

    def fact(source: str, kind: str) -> Fact:
        return Fact(source=source, raw_kind=kind, recipient="r@example.org", at=1, seq=1, ord=0,
                    event_id="e")  # fmt: skip

    assert is_erasure(fact(operator.SOURCE, "erase"))
    assert not is_erasure(fact(operator.SOURCE, "suppress"))
    assert not is_erasure(fact(operator.SOURCE, "release"))
    assert not is_erasure(fact("smtp2go", "erase"))  # a provider's event of that name


def test_an_erasure_record_derives_one_fact_about_its_keyed_hash() -> None:
    """Who erased, why and the causes kept travel with the fact (the keyed hash's timeline
    and explain show them)."""
    subject = "hmac-sha256:0a1b2c3d:" + "ab" * 32
    record = operator.Erasure(
        "erase", subject, "dpo@example.org", "DSAR 2026-118", 1_780_000_000_000_000,
        "2026-118", ("complaint",),
    )  # fmt: skip
    new = operator.record_receipt(record)
    receipt = Receipt(
        seq=9, source=new.source, received_at=new.received_at, content_type=new.content_type,
        body=new.body, headers={}, peer=None, body_sha256=b"", chain_hash=b"",
    )  # fmt: skip
    [keyed] = derive(receipt)
    fact = keyed.fact
    assert (fact.recipient, fact.raw_kind, fact.seq, fact.at) == (
        subject, "erase", 9, 1_780_000_000_000_000,
    )  # fmt: skip
    assert (fact.actor, fact.note, fact.lifts) == (
        "dpo@example.org",
        "DSAR 2026-118",
        ("complaint",),
    )
    assert is_erasure(fact)
