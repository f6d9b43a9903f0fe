"""Chaining a group commit's batch (ledger/chain.link_batch), pure: redeliveries get the
first copy's number, a door identity seen with other bytes is a replay, and the
identities to record are exactly the new ones."""

from __future__ import annotations

from ledger.chain import GENESIS, KnownIdentities, Linked, body_digest, link_batch
from ledger.records import AppendResult, NewReceipt


def new(body: bytes, identity: str | None = None, source: str = "ses") -> NewReceipt:
    return NewReceipt(source=source, received_at=1, content_type="", body=body, identity=identity)


def linked(
    batch: list[NewReceipt],
    digests: dict[tuple[str, bytes], int] | None = None,
    identities: KnownIdentities | None = None,
) -> Linked:
    """The batch chained onto a head at receipt 10."""
    hashes = [body_digest(receipt.body) for receipt in batch]
    return link_batch(batch, hashes, digests or {}, 10, GENESIS, identities)


def test_a_replayed_identity_in_the_same_batch_is_refused_and_the_rest_appended() -> None:
    batch = [new(b"a", "msg-1"), new(b"b", "msg-1"), new(b"a", "msg-1"), new(b"c", "msg-2")]
    out = linked(batch)
    assert out.results == [
        AppendResult(11, duplicate=False),
        AppendResult(11, duplicate=True, conflict=True),  # same identity, other bytes
        AppendResult(11, duplicate=True),  # the same bytes again: a redelivery
        AppendResult(12, duplicate=False),  # and the batch goes on after them
    ]
    assert [row[0] for row in out.rows] == [11, 12]
    assert out.identities == [
        ("ses", "msg-1", 11, body_digest(b"a")),
        ("ses", "msg-2", 12, body_digest(b"c")),
    ]


def test_an_identity_already_stored_with_other_bytes_is_a_replay() -> None:
    known = {("ses", "msg-1"): (3, body_digest(b"first"))}
    out = linked([new(b"second", "msg-1"), new(b"first", "msg-1")], identities=known)
    assert out.results == [
        AppendResult(3, duplicate=True, conflict=True),
        AppendResult(3, duplicate=True, conflict=False),
    ]
    assert out.rows == []
    assert out.identities == []  # nothing new to record


def test_a_redelivery_stored_before_its_identity_was_records_the_identity() -> None:
    digests = {("ses", body_digest(b"old")): 4}
    out = linked([new(b"old", "msg-9"), new(b"other", "msg-9")], digests=digests)
    assert out.results == [
        AppendResult(4, duplicate=True),
        AppendResult(4, duplicate=True, conflict=True),  # msg-9 is receipt 4's now
    ]
    assert out.identities == [("ses", "msg-9", 4, body_digest(b"old"))]
    # an identity already recorded is not recorded twice
    again = linked(
        [new(b"old", "msg-9")],
        digests=digests,
        identities={("ses", "msg-9"): (4, body_digest(b"old"))},
    )
    assert again.identities == []


def test_the_batch_leaves_the_head_on_its_last_new_receipt() -> None:
    out = linked([new(b"a"), new(b"b"), new(b"a")])
    assert out.seq == 12
    assert out.chain_hash == out.rows[-1][-1]  # the last row's chain hash
    nothing = linked([new(b"a")], digests={("ses", body_digest(b"a")): 3})
    assert (nothing.seq, nothing.chain_hash) == (10, GENESIS)  # the head it was given
