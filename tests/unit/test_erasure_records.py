"""What the ledger knows of erasure records (ledger/erasures.py), and how a copy (an
import, a migration) holds each body an erasure changed to the record that changed it
(ledger/chain.py `verbatim_chunks`)."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest

from ledger import AppendRejected, NewReceipt, Receipt
from ledger.chain import GENESIS, body_digest, link_batch, verbatim_chunks
from ledger.erasures import Erased, Removed, confirmed, removals


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def record(*removed: Removed) -> bytes:
    return json.dumps(
        {"action": "erase", "bodies": [msgspec.to_builtins(r) for r in removed]}
    ).encode()


def test_removals_are_read_from_a_record_and_nothing_else() -> None:
    named = Removed(seq=3, sha256=digest(b"a"), kept=digest(b"b"))
    assert removals(record(named, Removed(seq=4, sha256=digest(b"c")))) == (
        named,
        Removed(seq=4, sha256=digest(b"c")),
    )
    assert removals(b'{"action": "suppress", "email": "a@example.org"}') == ()
    assert removals(b"not json") == ()
    assert removals(b'{"bodies": [{"seq": 1, "sha256": "not hex"}]}') == ()
    assert removals(b'{"bodies": [{"seq": 1, "sha256": "' + b"a" * 64 + b'", "x": 1}]}') == ()


def test_a_change_is_confirmed_only_by_the_later_record_the_body_names() -> None:
    body = record(
        Removed(seq=2, sha256=digest(b"x")), Removed(seq=3, sha256=digest(b"y"), kept=digest(b"z"))
    )
    erased = {2: 9, 3: 9, 5: 9}  # 5: the record does not name it
    assert confirmed({9: body}, erased) == {
        2: Erased(9, body_digest(b"x"), None),
        3: Erased(9, body_digest(b"y"), body_digest(b"z")),
    }
    assert confirmed({9: body}, {2: 8, 3: 9}) == {
        3: Erased(9, body_digest(b"y"), body_digest(b"z"))
    }
    assert confirmed({1: body}, {2: 1, 3: 1}) == {}  # a record before the body it names


def chained(bodies: list[bytes]) -> list[Receipt]:
    batch = [
        NewReceipt(source="ses", received_at=n, content_type="", body=b)
        for n, b in enumerate(bodies)
    ]
    linked = link_batch(batch, [body_digest(b) for b in bodies], {}, 0, GENESIS)
    return [
        Receipt(
            seq=row[0], received_at=row[1], source=row[2], content_type=row[3],
            headers=json.loads(row[4]), peer=row[5], body=body, body_sha256=row[6],
            chain_hash=row[7],
        )
        for row, body in zip(linked.rows, bodies, strict=True)
    ]  # fmt: skip


def copy(receipts: list[Receipt]) -> list[tuple[int, int]]:
    return [
        pair for chunk in verbatim_chunks(receipts, 0, GENESIS, None, 2) for pair in chunk.erased
    ]


def test_a_copy_holds_each_changed_body_to_its_record() -> None:
    original = b'{"to": "alice@example.org"}'
    good = record(Removed(seq=1, sha256=digest(original)))
    first, second, third = chained([original, b"{}", good])
    removed = msgspec.structs.replace(first, body=b"", erased_by=3)
    assert copy([removed, second, third]) == [(1, 3)]

    with pytest.raises(AppendRejected) as missing:
        copy([removed, second])
    assert (
        str(missing.value)
        == "receipt 1's body was erased by receipt 3, which the copy does not hold"
    )

    silent = chained([original, b"{}", record(Removed(seq=2, sha256=digest(b"{}")))])
    with pytest.raises(AppendRejected) as unnamed:
        copy([msgspec.structs.replace(silent[0], body=b"", erased_by=3), *silent[1:]])
    assert str(unnamed.value) == (
        "receipt 1's body was changed by receipt 3, which does not name that change"
    )
    kept_copy = msgspec.structs.replace(first, body=b'{"to": "[erased]"}', erased_by=3)
    with pytest.raises(AppendRejected, match="does not name that change"):
        copy([kept_copy, second, third])  # the record says nothing was kept
