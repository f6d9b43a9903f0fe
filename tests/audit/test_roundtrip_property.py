"""Property: export -> import -> rebuild gives a byte-identical projection, for any history."""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import NewReceipt, export_ledger, import_receipts
from ledger.sqlite import SQLiteStore
from projections import Policy, Projector, rebuild
from projections.operator import action_body
from tests.audit.helpers import ledger_rows, projection_dump, rows
from tests.conftest import examples

POOL = ("alice@example.com", "Bob@Example.org", " carol@example.net ", "<dave@example.com>")
KINDS = (
    "delivered", "delivered", "bounce", "bounce", "bounce", "bounced", "spam",
    "open", "opened", "click", "unsubscribe", "resubscribe", "processed", "reject",
)  # fmt: skip
BASE = datetime(2026, 5, 1, tzinfo=UTC)
BASE_US = 1_777_593_600_000_000  # BASE in microseconds
DAY_US = 86_400_000_000


@st.composite
def smtp2go_body(draw: st.DrawFn) -> tuple[str, bytes]:
    """One SMTP2GO delivery: (content type, body) as JSON, a JSON array or a form."""
    count = draw(st.integers(1, 3))
    events: list[dict[str, str]] = []
    for _ in range(count):
        fields = {"event": draw(st.sampled_from(KINDS)), "rcpt": draw(st.sampled_from(POOL))}
        if draw(st.booleans()) or not events:
            fields["id"] = f"id-{draw(st.integers(0, 12))}"  # collisions: duplicates
        offset = draw(st.integers(0, 4 * DAY_US // 1_000_000))  # seconds within four days
        moment = BASE + timedelta(seconds=offset)
        spelling = draw(st.integers(0, 3))  # 3: no time at all, the receipt's time counts
        if spelling == 0:
            fields["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif spelling == 1:
            fields["time"] = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
        elif spelling == 2:
            fields["time"] = str(int(moment.timestamp()))
        if fields["event"].startswith("bounce"):
            fields["bounce"] = draw(st.sampled_from(["hard", "soft", "soft", "", "weird"]))
            fields["message"] = draw(
                st.sampled_from(["550 5.1.1 unknown", "452 4.2.2 Mailbox voll — ✉", "blocked"])
            )
        events.append(fields)
    style = draw(st.sampled_from(["json", "array", "form"]))
    if style == "form":
        return "application/x-www-form-urlencoded", urlencode(events[0]).encode()
    document: Any = events if style == "array" else events[0]
    return "application/json", json.dumps(document, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def operator_body(draw: st.DrawFn) -> tuple[str, bytes]:
    return "application/json", action_body(
        draw(st.sampled_from(["suppress", "release"])),
        draw(st.sampled_from(POOL)),
        actor=draw(st.sampled_from(["ops", "local:auditor"])),
        note=draw(st.sampled_from(["ticket 1", "Bestätigt ✓"])),
        at=BASE_US + draw(st.integers(0, 4 * DAY_US)),
    )


@st.composite
def history(draw: st.DrawFn) -> list[NewReceipt]:
    items = []
    for _ in range(draw(st.integers(1, 25))):
        is_operator = draw(st.integers(0, 7)) == 0
        ctype, body = draw(operator_body() if is_operator else smtp2go_body())
        items.append(
            NewReceipt(
                source="operator" if is_operator else "smtp2go",
                received_at=BASE_US + draw(st.integers(0, 5 * DAY_US)),
                content_type=ctype,
                body=body,
                headers={"user-agent": "SMTP2GO"} if not is_operator else {},
                peer=None if is_operator else "198.51.100.7",
            )
        )
    return items


policies = st.builds(
    Policy,
    soft_bounce_threshold=st.integers(1, 4),
    soft_bounce_window=st.sampled_from([None, "36h", "3d"]),
    delivery_clears_soft_bounces=st.booleans(),
)


async def _round_trip(
    directory: Path, receipts: list[NewReceipt], policy: Policy, split: int
) -> tuple[Path, Path, bytes]:
    original_db, restored_db = directory / "original.db", directory / "restored.db"
    original = await SQLiteStore.open(original_db)
    try:
        # the original is projected incrementally, part of the way, as a server would
        projector = Projector(original, policy)
        await projector.start()
        for index, item in enumerate(receipts):
            if index == split:
                await projector.catch_up()
            await original.append(item)
        await projector.catch_up()
        incremental = projection_dump(original_db)
        sink = io.BytesIO()
        exported = (await export_ledger(original, sink)).count
        await rebuild(original, policy)
    finally:
        await original.close()
    restored = await SQLiteStore.open(restored_db)
    try:
        assert await import_receipts(restored, sink.getvalue().splitlines()) == exported
        assert await restored.verify() == (exported, None)
        await rebuild(restored, policy)
    finally:
        await restored.close()
    return original_db, restored_db, incremental


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(receipts=history(), policy=policies, data=st.data())
def test_export_import_rebuild_gives_a_byte_identical_projection(
    receipts: list[NewReceipt], policy: Policy, data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(receipts)), label="projected before receipt")
    with tempfile.TemporaryDirectory() as name:
        run = _round_trip(Path(name), receipts, policy, split)
        original, restored, incremental = asyncio.run(run)
        assert ledger_rows(restored) == ledger_rows(original)
        assert projection_dump(restored) == projection_dump(original)
        # rebuilding changed nothing the server had kept up to date event by event
        assert projection_dump(original) == incremental
        # and the projection is not trivially empty when the history names someone
        assert rows(original, "SELECT COUNT(*) FROM recipient_state")[0][0] > 0
