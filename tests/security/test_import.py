"""Issue 13, item 12: `bounceledger import` refuses what no door writes — an unknown
source, a credential or unknown header, an absurd time — even with the chain recomputed
over the edit; `export` and `verify` print the head to record elsewhere, the only proof
that an export is authentic."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import cli
from ledger import NewReceipt
from ledger.chain import GENESIS, encode_headers, link_hash
from ledger.sqlite import SQLiteStore


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def _ledger(path: Path) -> None:
    async def build() -> None:
        store = await SQLiteStore.open(path)
        try:
            for n in range(3):
                body = json.dumps(
                    {"event": "delivered", "rcpt": f"r{n}@example.com", "id": f"e{n}",
                     "time": "2026-05-04T10:15:02Z"}
                ).encode()  # fmt: skip
                await store.append(
                    NewReceipt(
                        source="smtp2go",
                        received_at=1_777_000_000_000_000 + n,
                        content_type="application/json",
                        body=body,
                        headers={"user-agent": "SMTP2GO"},
                    )
                )
        finally:
            await store.close()

    asyncio.run(build())


def _rechained(lines: list[str]) -> str:
    """The export with every digest and chain hash recomputed, as a forger would."""
    prev, out = GENESIS, []
    for line in lines:
        record = json.loads(line)
        digest = hashlib.sha256(base64.b64decode(record["body"])).digest()
        prev = link_hash(
            prev,
            seq=record["seq"],
            received_at=record["received_at"],
            source=record["source"],
            content_type=record["content_type"],
            headers_json=encode_headers(record["headers"]),
            peer=record["peer"],
            body_sha256=digest,
        )
        record["body_sha256"] = base64.b64encode(digest).decode()
        record["chain_hash"] = base64.b64encode(prev).decode()
        out.append(json.dumps(record))
    return "\n".join(out) + "\n"


@pytest.fixture
def exported(tmp_path: Path) -> list[str]:
    source = tmp_path / "source.db"
    _ledger(source)
    result = _invoke("export", "--db", source, "--out", tmp_path / "export.jsonl")
    assert result.exit_code == 0, result.output
    return (tmp_path / "export.jsonl").read_text().splitlines()


EDITS: dict[str, tuple[dict[str, Any], str]] = {
    "source": ({"source": "<img src=x onerror=alert(1)>"}, "unknown source"),
    "authorization": ({"headers": {"authorization": "Bearer stolen"}}, "'authorization'"),
    "cookie": ({"headers": {"Cookie": "session=1"}}, "'Cookie'"),
    "header": ({"headers": {"x-made-up": "1"}}, "'x-made-up' is not one a door keeps"),
    "future": ({"received_at": 2**62}, "outside year 2000"),
    "past": ({"received_at": 0}, "outside year 2000"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_export_is_refused_naming_the_line(
    exported: list[str], tmp_path: Path, edit: str
) -> None:
    fields, why = EDITS[edit]
    record = json.loads(exported[1])
    record.update(fields)
    forged = tmp_path / "forged.jsonl"
    forged.write_text(_rechained([exported[0], json.dumps(record), exported[2]]))
    target = tmp_path / "target.db"
    result = _invoke("import", forged, "--db", target)
    assert result.exit_code == 1, result.output
    assert "line 2" in result.stderr
    assert why in result.stderr
    assert json.loads(_invoke("verify", "--db", target, "--json").output)["receipts"] == 0


def test_an_operator_receipt_and_a_real_export_import(exported: list[str], tmp_path: Path) -> None:
    record = json.loads(exported[2])
    record.update(source="operator", headers={})
    good = tmp_path / "good.jsonl"
    good.write_text(_rechained([*exported[:2], json.dumps(record)]))
    result = _invoke("import", good, "--db", tmp_path / "target.db")
    assert result.exit_code == 0, result.output


def test_export_and_verify_print_the_head_to_record_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger(db)
    verified = _invoke("verify", "--db", db, "--json")
    assert verified.exit_code == 0
    answer = json.loads(verified.output)
    assert answer["intact"] is True  # the fields as before, and the head
    assert answer["receipts"] == 3
    assert answer["first_broken"] is None
    assert answer["head_seq"] == 3
    head = answer["head_chain_hash"]
    assert len(head) == 64
    human = _invoke("verify", "--db", db)
    assert "ledger intact: 3 receipts, chain verified" in human.output
    assert f"head: receipt 3, chain hash {head}" in human.output
    to_file = _invoke("export", "--db", db, "--out", tmp_path / "x.jsonl")
    assert f"head: receipt 3, chain hash {head}" in to_file.stderr
    to_stdout = _invoke("export", "--db", db)
    assert f"chain hash {head}" in to_stdout.stderr
    assert f"chain hash {head}" not in to_stdout.stdout  # stdout stays JSON lines
    assert len(to_stdout.stdout.splitlines()) == 3
