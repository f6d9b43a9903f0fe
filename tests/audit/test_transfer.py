"""Export and import: the same sequence numbers, bodies and chain, and the same projection."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from api.settings import Settings, load_settings
from ledger import NewReceipt, export_ledger
from ledger.sqlite import SQLiteStore
from tests.audit.helpers import (
    FORM,
    append_sync,
    as_form,
    as_json,
    cli,
    get_json,
    invoke,
    ledger_rows,
    ok_json,
    post,
    projection_dump,
    receipt,
    receipt_count,
    smtp2go_event,
)
from tests.conftest import API_KEY, AUTH, SECRET, fixture_bytes, settle

ADDRESSES = [
    "nobody@example.org",
    "full.box@example.net",
    "jörg@example.de",
    "carol@example.com",
    "annoyed@example.com",
    "alice@example.com",
]


async def _populate(client: Any) -> None:
    """A varied history through the door: form and JSON, non-ASCII, operator actions."""
    await post(client, fixture_bytes("smtp2go", "hard_bounce.form"), FORM)
    await post(client, fixture_bytes("smtp2go", "spam.json"))
    await post(client, fixture_bytes("smtp2go", "delivered.json"))
    for n, day in enumerate(("05", "06", "07")):
        body = smtp2go_event(
            "bounce", "full.box@example.net", f"2026-05-{day}T10:00:00Z", f"s{n}", bounce="soft"
        )
        await post(client, as_form(body), FORM)
    umlaut = smtp2go_event(
        "bounce", "jörg@example.de", "2026-05-04T10:00:00Z", "u1", bounce="hard",
        message="Empfänger unbekannt — 550 ✉",
    )  # fmt: skip
    await post(client, as_json(umlaut))
    await post(client, fixture_bytes("smtp2go", "processed.json"))
    for method, email, note in (
        ("PUT", "carol@example.com", "legal hold"),
        ("DELETE", "jörg@example.de", "typo fixed"),
    ):
        response = await client.request(
            method, f"/v1/suppressions/{email}", json={"note": note}, headers=AUTH
        )
        assert response.status_code == 200
    await settle(client)


def _projection_answers(db: Path) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "suppressions": ok_json(invoke("suppressions", "--db", db, "--json"))
    }
    for email in ADDRESSES:
        answers[email] = ok_json(invoke("status", email, "--db", db, "--json"))
    return answers


async def test_export_then_import_restores_the_ledger_and_its_projection(
    make_client: Callable[..., Any], db_path: Path, tmp_path: Path
) -> None:
    async with make_client() as client:
        await _populate(client)
        original_list = await get_json(client, "/v1/suppressions")
        original_receipt = await get_json(client, "/v1/audit/receipts/7")
    export_file = tmp_path / "ledger.jsonl"
    exported = await cli("export", "--db", db_path, "--out", export_file)
    assert exported.exit_code == 0, exported.output
    assert f"exported 10 receipts to {export_file}" in exported.stderr
    lines = export_file.read_bytes().splitlines()
    assert len(lines) == 10
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 11))
    assert base64.b64decode(records[0]["body"]) == fixture_bytes("smtp2go", "hard_bounce.form")
    assert "Authorization" not in export_file.read_text()
    # without --out the same lines go to stdout
    assert (await cli("export", "--db", db_path)).stdout_bytes == export_file.read_bytes()

    restored = tmp_path / "restored.db"
    imported = await cli("import", export_file, "--db", restored)
    assert imported.exit_code == 0, imported.output
    assert f"imported 10 receipts into {restored}" in imported.stdout
    assert ledger_rows(restored) == ledger_rows(db_path)
    verified = await cli("verify", "--db", restored, "--json")
    expected = {"intact": True, "receipts": 10, "first_broken": None}
    assert ok_json(verified).items() >= expected.items()  # plus the head (issue 13)

    rebuilt = await cli("rebuild", "--db", restored, "--json")
    assert ok_json(rebuilt)["receipts"] == 10
    restored_answers = await asyncio.to_thread(_projection_answers, restored)
    assert restored_answers == await asyncio.to_thread(_projection_answers, db_path)
    assert [s["email"] for s in restored_answers["suppressions"]] == [
        "annoyed@example.com",
        "carol@example.com",
        "full.box@example.net",
        "nobody@example.org",
    ]
    # the incrementally kept projection and the rebuilt one are the same bytes
    assert projection_dump(restored) == projection_dump(db_path)

    # and a server on the restored ledger answers as the original did
    async with make_client(settings=_settings_for(restored)) as client:
        await settle(client)
        assert await get_json(client, "/v1/suppressions") == original_list
        assert await get_json(client, "/v1/audit/receipts/7") == original_receipt
        jorg = await get_json(client, "/v1/audit/recipients/jörg@example.de/events")
        assert [e["kind"] for e in jorg] == ["bounce", "operator_release"]
        assert jorg[0]["diagnostic"] == "Empfänger unbekannt — 550 ✉"


def _settings_for(db: Path) -> Settings:
    return load_settings(
        {
            "BOUNCELEDGER_DB": str(db),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        }
    )


def _original(tmp_path: Path, count: int = 6) -> tuple[Path, list[bytes]]:
    """A ledger of `count` receipts and its export lines."""
    db = tmp_path / "original.db"
    items = []
    for n in range(count):
        kind = "bounce" if n % 2 else "delivered"
        fields = smtp2go_event(
            kind, f"u{n % 3}@example.com", f"2026-05-0{n + 1}T10:00:00Z", f"o{n}"
        )
        if kind == "bounce":
            fields["bounce"] = "hard" if n == 5 else "soft"
        body = as_form(fields) if n % 3 == 0 else as_json(fields)
        items.append(
            receipt(
                body,
                received_at=f"2026-05-0{n + 1}T10:00:01Z",
                ctype=FORM if n % 3 == 0 else "application/json",
            )
        )
    append_sync(db, items)
    result = invoke("export", "--db", db)
    assert result.exit_code == 0
    lines = result.stdout_bytes.splitlines(keepends=True)
    assert len(lines) == count
    return db, lines


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def test_import_continuing_exactly_from_the_head_works(tmp_path: Path) -> None:
    original, lines = _original(tmp_path)
    target = tmp_path / "target.db"
    head = invoke("import", _write(tmp_path / "head.jsonl", lines[:3]), "--db", target)
    assert head.exit_code == 0
    assert "imported 3 receipts" in head.stdout
    # the whole file does not continue a ledger that already holds its first three
    whole = _write(tmp_path / "whole.jsonl", lines)
    refused = invoke("import", whole, "--db", target)
    assert refused.exit_code == 1
    assert "receipt 1 does not follow the ledger's head 3" in refused.stderr
    assert receipt_count(target) == 3
    # the tail does
    tail = invoke("import", _write(tmp_path / "tail.jsonl", lines[3:]), "--db", target)
    assert tail.exit_code == 0, tail.output
    assert "imported 3 receipts" in tail.stdout
    assert ledger_rows(target) == ledger_rows(original)
    assert ok_json(invoke("verify", "--db", target, "--json"))["receipts"] == 6
    # once more is refused: the tail no longer continues the head
    again = invoke("import", tmp_path / "tail.jsonl", "--db", target)
    assert again.exit_code == 1
    assert "receipt 4 does not follow the ledger's head 6" in again.stderr
    assert receipt_count(target) == 6


def test_import_into_a_ledger_the_file_does_not_continue_changes_nothing(tmp_path: Path) -> None:
    _, lines = _original(tmp_path)
    other = tmp_path / "other.db"
    append_sync(
        other,
        [
            receipt(as_json(smtp2go_event("delivered", f"x{n}@example.com", "2026-05-01", f"x{n}")),
                    received_at="2026-05-01T00:00:00Z")
            for n in range(3)
        ],
    )  # fmt: skip
    before = ledger_rows(other)
    # the whole file starts at 1: refused
    refused = invoke("import", _write(tmp_path / "whole.jsonl", lines), "--db", other)
    assert refused.exit_code == 1
    assert "does not follow the ledger's head 3" in refused.stderr
    # the tail has the right numbers but chains onto another ledger's head: refused
    tail = invoke("import", _write(tmp_path / "tail.jsonl", lines[3:]), "--db", other)
    assert tail.exit_code == 1
    assert "receipt 4 does not match its chain hash" in tail.stderr
    assert ledger_rows(other) == before
    assert invoke("verify", "--db", other).exit_code == 0


def test_a_corrupted_line_is_refused_naming_its_receipt(tmp_path: Path) -> None:
    _, lines = _original(tmp_path)
    record = json.loads(lines[3])
    body = bytearray(base64.b64decode(record["body"]))
    body[-2] ^= 0x20
    record["body"] = base64.b64encode(bytes(body)).decode()
    corrupted = [*lines[:3], json.dumps(record).encode() + b"\n", *lines[4:]]
    target = tmp_path / "target.db"
    result = invoke("import", _write(tmp_path / "bad.jsonl", corrupted), "--db", target)
    assert result.exit_code == 1
    assert "receipt 4 does not match its chain hash" in result.stderr
    assert receipt_count(target) == 0


def test_an_unreadable_line_is_refused_naming_its_line(tmp_path: Path) -> None:
    _, lines = _original(tmp_path)
    garbage = [*lines[:2], b'{"seq": "three"}\n', *lines[2:]]
    target = tmp_path / "target.db"
    result = invoke("import", _write(tmp_path / "bad.jsonl", garbage), "--db", target)
    assert result.exit_code == 1
    assert "line 3: not an exported receipt" in result.stderr
    assert receipt_count(target) == 0


def test_a_refused_import_writes_nothing_even_past_the_first_chunk(tmp_path: Path) -> None:
    """A long file whose corruption comes late is refused as a whole: no partial ledger."""
    count, broken = 2300, 2150
    source = tmp_path / "big.db"

    async def build() -> bytes:
        store = await SQLiteStore.open(source)
        try:
            await asyncio.gather(
                *(
                    store.append(
                        NewReceipt(
                            source="smtp2go",
                            received_at=1_777_000_000_000_000 + n,
                            content_type="application/json",
                            body=as_json(
                                smtp2go_event(
                                    "delivered", f"b{n}@example.com", "2026-05-04", f"b{n}"
                                )
                            ),
                        )
                    )
                    for n in range(count)
                )
            )
            sink = io.BytesIO()
            assert (await export_ledger(store, sink)).count == count
            return sink.getvalue()
        finally:
            await store.close()

    lines = asyncio.run(build()).splitlines(keepends=True)
    record = json.loads(lines[broken - 1])
    record["body"] = base64.b64encode(b"tampered").decode()
    lines[broken - 1] = json.dumps(record).encode() + b"\n"
    target = tmp_path / "target.db"
    result = invoke("import", _write(tmp_path / "bad.jsonl", lines), "--db", target)
    assert result.exit_code == 1
    assert f"receipt {broken} does not match its chain hash" in result.stderr
    assert receipt_count(target) == 0
    # so the repaired file can simply be imported again
    lines[broken - 1] = asyncio.run(_line_of(source, broken))
    fixed = invoke("import", _write(tmp_path / "fixed.jsonl", lines), "--db", target)
    assert fixed.exit_code == 0, fixed.output
    assert ok_json(invoke("verify", "--db", target, "--json"))["receipts"] == count


async def _line_of(db: Path, seq: int) -> bytes:
    store = await SQLiteStore.open(db)
    try:
        (found,) = await store.read(seq - 1, 1)
    finally:
        await store.close()
    return msgspec.json.encode(found) + b"\n"
