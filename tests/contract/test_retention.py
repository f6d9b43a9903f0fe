"""Retention's contract, on every backend: the bodies the policy's periods let go are
removed under a retention record (verify still passes), evidence of an active suppression
and every bounce, complaint and operator action are kept, and no verdict changes."""

from __future__ import annotations

import msgspec
import pytest

from projections import queries
from projections.erasure_history import erasures
from projections.policy import Policy
from projections.retention import apply
from tests.contract.backends import Ledgers, OnPostgres, OnSQLite
from tests.contract.test_erasure import projected, smtp2go

DAY = 86_400_000_000
NOW = 1_780_000_000_000_000 + 100 * DAY
POLICY = Policy(retention={"delivered": "90d", "ignored": "30d"})


class RetentionContract:
    async def test_expired_bodies_go_under_a_record_and_no_verdict_changes(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.fresh()
        delivered = (await store.append(smtp2go(1, "carol@example.com", "delivered"))).seq
        bounced = (await store.append(smtp2go(2, "alice@example.org"))).seq
        opened = (await store.append(smtp2go(3, "carol@example.com", "open"))).seq
        projector = await projected(store)
        before = await queries.statuses(
            store, ["alice@example.org", "carol@example.com"], projector.policy_hash
        )

        dry = await apply(store, POLICY, NOW, actor="ops", note="test", dry_run=True)
        assert (dry.bodies, dry.by_kind, dry.records) == (2, {"delivered": 1, "ignored": 1}, [])
        assert (await store.get(delivered)).erased_by is None  # type: ignore[union-attr]

        done = await apply(store, POLICY, NOW, actor="ops", note="quarterly clean-up")
        assert (done.bodies, len(done.records)) == (2, 1)
        for seq in (delivered, opened):
            receipt = await store.get(seq)
            assert (receipt.body, receipt.erased_by) == (b"", done.records[0])  # type: ignore[union-attr]
        assert (await store.get(bounced)).erased_by is None  # type: ignore[union-attr]
        assert await store.verify() == (done.records[0], None)
        await projector.follow()
        after = await queries.statuses(
            store, ["alice@example.org", "carol@example.com"], projector.policy_hash
        )
        assert {a: s.suppressed for a, s in after.items()} == {
            a: s.suppressed for a, s in before.items()
        }
        assert await erasures(store) == []  # a retention record is no erasure
        again = await apply(store, POLICY, NOW, actor="ops", note="again")
        assert (again.bodies, again.records) == (0, [])

    async def test_evidence_of_an_active_suppression_is_kept(self, ledgers: Ledgers) -> None:
        store = await ledgers.fresh()
        bounced = (await store.append(smtp2go(1, "bob@example.net"))).seq
        soft = smtp2go(2, "dan@example.org")
        soft_body = soft.body.replace(b'"hard"', b'"soft"')
        await store.append(msgspec.structs.replace(soft, body=soft_body))
        await projected(store)  # under the defaults: a hard bounce, a soft bounce counted
        # a policy under which both read as ignored: they would go, but for being the
        # evidence the live projection's verdicts rest on
        reread = Policy(retention={"ignored": "1d"}, providers={"smtp2go": {"bounce": "ignore"}})
        report = await apply(store, reread, NOW, actor="ops", note="n")
        assert (report.bodies, report.kept_as_evidence, report.records) == (0, 2, [])
        assert (await store.get(bounced)).erased_by is None  # type: ignore[union-attr]
        nothing = await apply(store, Policy(), NOW, actor="ops", note="n")
        assert (nothing.bodies, nothing.records) == (0, [])


class TestRetentionOnSQLite(OnSQLite, RetentionContract):
    pass


@pytest.mark.postgres
class TestRetentionOnPostgres(OnPostgres, RetentionContract):
    pass
