"""The change feed's pieces, each stated where the API and the property test only see
their effect: cursors (parse_cursor, Position), reading (times, limits), a rebuild's
entries (before and after, its id, the previous policy) and an erasure's entry."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import Store
from ledger.sqlite import SQLiteStore
from projections import Projector, feed, views
from projections.recipients import format_time
from projections.state import Cause, RecipientState

AT = feed.Position("c0ffee00", head=20, pruned=5)


def test_a_cursor_names_its_feed_and_entry() -> None:
    assert AT.cursor(7) == "c0ffee00-7"
    assert feed.Position("", 0, 0).cursor(0) == "0"  # a feed not started yet
    assert feed.parse_cursor("c0ffee00-7", AT) == 7
    assert feed.parse_cursor("c0ffee00-20", AT) == 20  # the head itself
    assert feed.parse_cursor("c0ffee00-5", AT) == 5  # the last one pruned: the rest is kept


def test_no_cursor_is_the_oldest_kept_now_the_head_zero_the_first() -> None:
    assert feed.parse_cursor(None, AT) == 5
    assert feed.parse_cursor("", AT) == 5
    assert feed.parse_cursor("now", AT) == 20
    fresh = feed.Position("c0ffee00", head=20, pruned=0)
    assert feed.parse_cursor("0", fresh) == 0
    with pytest.raises(feed.Expired, match=r"no longer kept \(kept: after 5\)") as gone:
        feed.parse_cursor("0", AT)
    assert gone.value.resume == "c0ffee00-20"


@pytest.mark.parametrize(
    ("cursor", "why"),
    [
        ("feedf00d-3", "this cursor belongs to another feed (a restored or migrated database)"),
        ("c0-ffee00-3", "this cursor belongs to another feed"),  # the id is all before the last -
        ("c0ffee00-21", "this cursor is ahead of the feed (a database restored from a backup?)"),
        ("c0ffee00-" + "9" * 18, "this cursor is ahead of the feed"),
        ("c0ffee00-4", "the entries after this cursor are no longer kept (kept: after 5)"),
    ],
)
def test_a_cursor_that_cannot_be_read_on_from_is_expired(cursor: str, why: str) -> None:
    with pytest.raises(feed.Expired) as gone:
        feed.parse_cursor(cursor, AT)
    assert str(gone.value).startswith(why)
    assert gone.value.resume == "c0ffee00-20"  # where to read on from, after listing


@pytest.mark.parametrize(
    "text", ["garbage", "c0ffee00-", "-7", "c0ffee00-7x", "c0ffee00-" + "9" * 19, "x" * 80]
)
def test_text_that_is_no_cursor_is_refused(text: str) -> None:
    with pytest.raises(feed.CursorRefused) as refused:
        feed.parse_cursor(text, AT)
    assert str(refused.value) == f"not a cursor of this feed: {text[:40]!r}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        await Projector(opened).start()
        yield opened
    finally:
        await opened.close()


def state(email: str, *reasons: str) -> RecipientState:
    causes = tuple(Cause(r, 1_000_000, 1) for r in reasons)  # type: ignore[arg-type]
    return RecipientState(
        email=email, causes=causes, since=1_000_000 if causes else None, position=(1, 1, 0)
    )


def change(email: str) -> tuple[feed.Entry, str | None, str | None]:
    entry = feed.Changed(
        before=feed.NOBODY, after=feed.Verdict(True, "manual", ("manual",)),
        cause="operator", policy_hash="p",
    )  # fmt: skip
    return entry, email, None


async def test_reading_fills_in_the_number_cursor_time_and_address(store: Store) -> None:
    before = time.time_ns() // 1000
    async with store.writing() as tx:
        numbers = await feed.write(tx, [change("a@example.org"), change("b@example.org")])
    after = time.time_ns() // 1000
    assert numbers == [1, 2]
    async with store.reading() as tx:
        at = await feed.position(tx)
        first, second = await feed.read(tx, 0, 10, at)
        rows = await tx.fetch("SELECT at FROM changes ORDER BY seq")
        assert await feed.read(tx, 0, 1, at) == [first]
        assert await feed.read(tx, 0, 0, at) == [first]  # at least one
    assert (at.head, at.pruned) == (2, 0)
    assert isinstance(first, feed.Changed)
    assert (first.id, first.cursor, first.email) == ("chg_1", at.cursor(1), "a@example.org")
    assert second.id == "chg_2"
    written = int(rows[0][0])
    assert before <= written <= after
    assert first.at == format_time(written) == second.at  # one transaction, one time


async def test_a_rebuilds_entries_carry_both_verdicts_its_id_and_the_previous_policy(
    store: Store,
) -> None:
    async with store.writing() as tx:
        await feed.write(tx, [change("first@example.org")])  # the feed's head moves to 1
        for statement in views.state_schema(tx.types, "_next"):
            await tx.execute(statement)
        await views.write_states(
            tx,
            [
                state("kept@example.org", "complaint", "hard_bounce"),
                state("gone@example.org", "manual"),
            ],
        )
        await views.write_states(
            tx,
            [state("kept@example.org", "complaint"), state("new@example.org", "hard_bounce")],
            suffix="_next",
        )
        started, changed = await feed.rebuilt(
            tx, "_next", previous="old-hash", policy_hash="new-hash", listed_reasons=True
        )
    assert (started, changed) == (2, 3)
    async with store.reading() as tx:
        at = await feed.position(tx)
        entries = await feed.read(tx, 1, 10, at)
    opening, *middle, closing = entries
    assert isinstance(opening, feed.RebuildStarted)
    assert (opening.id, opening.rebuild_id) == ("chg_2", "rb_2")
    assert (opening.previous_policy_hash, opening.policy_hash) == ("old-hash", "new-hash")
    verdicts = {
        e.email: (e.before, e.after, e.rebuild_id) for e in middle if isinstance(e, feed.Changed)
    }
    assert verdicts == {
        "gone@example.org": (feed.Verdict(True, "manual", ("manual",)), feed.NOBODY, "rb_2"),
        "kept@example.org": (
            feed.Verdict(True, "complaint", ("complaint", "hard_bounce")),
            feed.Verdict(True, "complaint", ("complaint",)),
            "rb_2",
        ),
        "new@example.org": (
            feed.NOBODY,
            feed.Verdict(True, "hard_bounce", ("hard_bounce",)),
            "rb_2",
        ),
    }
    assert isinstance(closing, feed.RebuildCompleted)
    assert (closing.rebuild_id, closing.changed, closing.suppressed) == ("rb_2", 3, 2)


async def test_an_erasures_entry_names_its_record_and_what_it_made_anonymous(
    store: Store,
) -> None:
    async with store.writing() as tx:
        await feed.write(tx, [change("a@example.org"), change("b@example.org")])
        await feed.write(tx, [change("a@example.org")])
        anonymous = await feed.erase(tx, "a@example.org", "hmac-sha256:k:aa")
        shut = feed.Verdict(True, "manual", ("manual",))
        await feed.erased(
            tx, "hmac-sha256:k:aa", (feed.NOBODY, shut), erases=anonymous, receipt=41,
            policy_hash="p",
        )  # fmt: skip
    assert anonymous == [1, 3]
    async with store.reading() as tx:
        entries = await feed.read(tx, 0, 10, await feed.position(tx))
    shown = [(e.email, e.subject) for e in entries if isinstance(e, feed.Changed)]
    assert shown == [
        (None, "hmac-sha256:k:aa"),
        ("b@example.org", None),
        (None, "hmac-sha256:k:aa"),
        (None, "hmac-sha256:k:aa"),
    ]
    last = entries[-1]
    assert isinstance(last, feed.Changed)
    assert (last.cause, last.action, last.receipt) == ("erasure", "erase", 41)
    assert (last.before, last.after, last.erases) == (feed.NOBODY, shut, ["chg_1", "chg_3"])


async def test_a_rebuild_record_and_its_note_are_named_in_the_start_marker(store: Store) -> None:
    async with store.writing() as tx:
        for statement in views.state_schema(tx.types, "_next"):
            await tx.execute(statement)
        started, _ = await feed.rebuilt(
            tx, "_next", previous=None, policy_hash="h", listed_reasons=True
        )
        await feed.note_record(tx, started, 9, "why")
        await feed.note_record(tx, started + 1, 10, "not a start marker")  # left as it is
    async with store.reading() as tx:
        opening, closing = await feed.read(tx, 0, 10, await feed.position(tx))
    assert isinstance(opening, feed.RebuildStarted)
    assert (opening.record, opening.note, opening.previous_policy_hash) == (9, "why", None)
    assert isinstance(closing, feed.RebuildCompleted)
