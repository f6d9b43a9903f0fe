"""Group commit (ledger/group.py), against a scripted `write_batch`: every append is
answered once its batch commits, or hears that it failed; nothing queued is ever left
waiting, whatever happens to the batch before it (the mutation audit's G1)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ledger.errors import AppendRejected, StoreUnavailable
from ledger.group import MAX_BATCH, CommitReport, GroupCommit
from ledger.records import AppendResult, NewReceipt

pytestmark = pytest.mark.timeout(10)


def receipt(n: int) -> NewReceipt:
    return NewReceipt(
        source="smtp2go", received_at=n, content_type="text/plain", body=str(n).encode()
    )


class Script:
    """A write_batch that records each batch, waits on `gate` while a batch is in
    flight, and fails the batches whose numbers are in `failing` (counted from 1)."""

    def __init__(self, *, failing: frozenset[int] = frozenset(), hold: bool = False) -> None:
        self.batches: list[list[NewReceipt]] = []
        self.failing = failing
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.seq = 0

    async def __call__(self, receipts: list[NewReceipt]) -> list[AppendResult]:
        self.batches.append(receipts)
        self.started.set()
        await self.gate.wait()
        if len(self.batches) in self.failing:
            raise OSError("disk I/O error")
        results = []
        for _ in receipts:
            self.seq += 1
            results.append(AppendResult(self.seq, False))
        return results


async def test_appends_queued_during_a_commit_go_in_the_next_batch() -> None:
    script = Script(hold=True)
    group = GroupCommit(script)
    first = asyncio.create_task(group.append(receipt(1)))
    await script.started.wait()
    queued = [asyncio.create_task(group.append(receipt(n))) for n in (2, 3)]
    await asyncio.sleep(0)
    script.gate.set()
    results = await asyncio.gather(first, *queued)
    assert [r.seq for r in results] == [1, 2, 3]
    assert [[r.received_at for r in batch] for batch in script.batches] == [[1], [2, 3]]


async def test_a_request_queued_behind_a_failed_commit_is_committed_without_another_append() -> (
    None
):
    """G1: the flusher goes on to what queued while the failing commit was in flight; a
    quiet server must not leave that request waiting for traffic that never comes."""
    script = Script(failing=frozenset({1}), hold=True)
    group = GroupCommit(script)
    a = asyncio.create_task(group.append(receipt(1)))
    await script.started.wait()
    b = asyncio.create_task(group.append(receipt(2)))
    await asyncio.sleep(0)
    script.gate.set()
    with pytest.raises(StoreUnavailable, match="disk I/O error"):
        await a
    assert (await asyncio.wait_for(b, 1)).seq == 1
    await group.drain()
    assert [len(batch) for batch in script.batches] == [1, 1]
    assert group.write_error is None  # the later commit succeeded


async def test_a_failed_commit_is_reported_until_one_succeeds() -> None:
    group = GroupCommit(Script(failing=frozenset({1})))
    with pytest.raises(StoreUnavailable):
        await group.append(receipt(1))
    assert group.write_error == "disk I/O error"
    await group.append(receipt(2))
    assert group.write_error is None


async def test_drain_waits_for_everything_queued() -> None:
    script = Script(hold=True)
    group = GroupCommit(script)
    tasks = [asyncio.create_task(group.append(receipt(n))) for n in range(5)]
    await script.started.wait()
    draining = asyncio.create_task(group.drain())
    await asyncio.sleep(0.01)
    assert not draining.done()
    script.gate.set()
    await draining
    assert all(task.done() for task in tasks)


async def test_a_batch_holds_at_most_max_batch_receipts() -> None:
    script = Script(hold=True)
    group = GroupCommit(script)
    tasks = [asyncio.create_task(group.append(receipt(n))) for n in range(MAX_BATCH + 2)]
    await asyncio.sleep(0)
    script.gate.set()
    await asyncio.gather(*tasks)
    assert [len(batch) for batch in script.batches] == [MAX_BATCH, 2]


async def test_a_client_that_hangs_up_does_not_cancel_the_commit_others_wait_on() -> None:
    script = Script(hold=True)
    group = GroupCommit(script)
    leaving = asyncio.create_task(group.append(receipt(1)))
    staying = asyncio.create_task(group.append(receipt(2)))
    await script.started.wait()
    leaving.cancel()
    script.gate.set()
    assert (await staying).seq == 2
    assert [r.received_at for r in script.batches[0]] == [1, 2]  # still written


async def test_a_failing_commit_hook_neither_loses_the_commit_nor_strands_a_waiter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script()
    group = GroupCommit(script)
    reports: list[CommitReport] = []

    def hook(report: CommitReport) -> None:
        reports.append(report)
        raise RuntimeError("metrics exploded")

    group.on_commit = hook
    with caplog.at_level(logging.ERROR, "bounceledger.ledger"):
        first = await asyncio.wait_for(group.append(receipt(1)), 1)
        second = await asyncio.wait_for(group.append(receipt(2)), 1)
    assert (first.seq, second.seq) == (1, 2)
    assert [len(report.receipts) for report in reports] == [1, 1]
    assert [r.getMessage() for r in caplog.records] == ["the commit hook failed"] * 2


async def test_a_flusher_cancelled_mid_commit_fails_its_batch_and_the_queue() -> None:
    """At shutdown the flusher may be cancelled while a commit is in flight: its waiters,
    and those queued behind it, hear StoreUnavailable (no 2xx) instead of hanging."""
    script = Script(hold=True)
    group = GroupCommit(script)
    in_flight = asyncio.create_task(group.append(receipt(1)))
    await script.started.wait()
    queued = asyncio.create_task(group.append(receipt(2)))
    await asyncio.sleep(0)
    assert group._flusher is not None
    group._flusher.cancel()
    for task in (in_flight, queued):
        with pytest.raises(StoreUnavailable) as failed:
            await asyncio.wait_for(task, 1)
        assert str(failed.value) == "the commit did not complete"
    # the next append starts a new flusher and is committed
    script.gate.set()
    assert (await asyncio.wait_for(group.append(receipt(3)), 1)).seq == 1


async def test_a_result_list_of_the_wrong_length_fails_the_batch_instead_of_hanging() -> None:
    async def short(receipts: list[NewReceipt]) -> list[AppendResult]:
        return [AppendResult(1, False)]  # one result for two receipts: a backend bug

    group = GroupCommit(short)
    tasks = [asyncio.create_task(group.append(receipt(n))) for n in (1, 2)]
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert [str(outcome) for outcome in outcomes] == [
        "the store answered 1 results for 2 receipts"
    ] * 2


async def test_a_receipt_without_a_source_is_refused_before_it_is_queued() -> None:
    script = Script()
    group = GroupCommit(script)
    with pytest.raises(AppendRejected) as refused:
        await group.append(
            NewReceipt(source="", received_at=1, content_type="text/plain", body=b"x")
        )
    assert str(refused.value) == "a receipt needs a source"
    assert script.batches == []


async def test_a_new_group_has_no_failure_to_report_and_no_hook_to_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = GroupCommit(Script())
    assert group.write_error is None  # /readyz before the first commit
    with caplog.at_level(logging.DEBUG, "bounceledger.ledger"):
        assert (await group.append(receipt(1))).seq == 1
    assert caplog.records == []


async def test_the_commit_report_gives_the_results_and_how_long_the_commit_and_waits_took() -> None:
    script = Script(hold=True)
    group = GroupCommit(script)
    reports: list[CommitReport] = []
    group.on_commit = reports.append
    tasks = [asyncio.create_task(group.append(receipt(n))) for n in (1, 2)]
    await script.started.wait()
    await asyncio.sleep(0.05)
    script.gate.set()
    results = await asyncio.gather(*tasks)
    [report] = reports
    assert report.results == results
    assert [r.received_at for r in report.receipts] == [1, 2]
    assert 0.05 <= report.seconds < 5  # the commit held at the gate for 50 ms
    assert len(report.waits) == 2
    assert all(report.seconds <= wait < 5 for wait in report.waits)  # queued before it began


async def test_a_store_failure_reaches_every_waiter_as_the_store_raised_it() -> None:
    failure = StoreUnavailable("the database is read-only")

    async def read_only(receipts: list[NewReceipt]) -> list[AppendResult]:
        raise failure

    group = GroupCommit(read_only)
    with pytest.raises(StoreUnavailable) as failed:
        await group.append(receipt(1))
    assert failed.value is failure
    assert group.write_error == "the database is read-only"


async def test_draining_after_the_flusher_was_cancelled_returns_quietly() -> None:
    """Shutdown cancels the flusher, then drains: the drain must not raise the flusher's
    cancellation into the shutdown."""
    script = Script(hold=True)
    group = GroupCommit(script)
    in_flight = asyncio.create_task(group.append(receipt(1)))
    await script.started.wait()
    assert group._flusher is not None
    group._flusher.cancel()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(in_flight, 1)
    await asyncio.wait_for(group.drain(), 1)
