"""Raw receipts: the stored body byte for byte, metadata, listings and keyset pages."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.audit.helpers import (
    FORM,
    JSON,
    append_sync,
    as_json,
    cli,
    get_json,
    invoke,
    ok_json,
    post,
    receipt,
    smtp2go_event,
)
from tests.conftest import AUTH, fixture_bytes, settle

FORM_BODY = fixture_bytes("smtp2go", "hard_bounce.form")
UMLAUT_BODY = (
    '{"event": "bounce", "bounce": "hard", "id": "umlaut-1", "rcpt": "jörg@example.de",\n'
    ' "time": "2026-05-04T10:15:02Z", "message": "Empfänger unbekannt — 550 ✉",\n'
    ' "subject": "Grüße aus Köln"}'
).encode()


def test_fixture_is_the_tricky_kind_of_form_body() -> None:
    # what the byte-for-byte tests below rely on
    assert b"+" in FORM_BODY
    assert b"%40" in FORM_BODY
    assert b"Message-Id=" in FORM_BODY
    assert b"message-id=" in FORM_BODY
    assert not UMLAUT_BODY.isascii()


async def test_raw_bodies_round_trip_through_http_and_the_cli(
    make_client: Callable[..., Any], db_path: Path
) -> None:
    async with make_client() as client:
        form_seq = await post(client, FORM_BODY, FORM)
        json_seq = await post(client, UMLAUT_BODY, "application/json; charset=utf-8")
        await settle(client)
        for seq, body, ctype in (
            (form_seq, FORM_BODY, FORM),
            (json_seq, UMLAUT_BODY, "application/json; charset=utf-8"),
        ):
            view = await get_json(client, f"/v1/audit/receipts/{seq}")
            assert view["seq"] == seq
            assert view["source"] == "smtp2go"
            assert view["content_type"] == ctype
            assert view["size"] == len(body)
            assert view["body_sha256"] == hashlib.sha256(body).hexdigest()
            assert len(view["chain_hash"]) == 64
            assert base64.b64decode(view["body_base64"]) == body
            assert view["body_text"] == body.decode("utf-8")
            assert "authorization" not in {name.lower() for name in view["headers"]}

            raw = await client.get(
                f"/v1/audit/receipts/{seq}", params={"raw": "true"}, headers=AUTH
            )
            assert raw.status_code == 200
            assert raw.content == body
            # a download, never rendered: the stored content type is only named
            assert raw.headers["content-type"] == "application/octet-stream"
            assert raw.headers["x-receipt-content-type"] == ctype
            assert raw.headers["x-receipt-seq"] == str(seq)
            assert raw.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()

        # the timeline decoded the non-ASCII diagnostic, not mangled it
        entries = await get_json(client, "/v1/audit/recipients/jörg@example.de/events")
        assert [e["diagnostic"] for e in entries] == ["Empfänger unbekannt — 550 ✉"]

    for seq, body in ((form_seq, FORM_BODY), (json_seq, UMLAUT_BODY)):
        result = await cli("audit", "receipt", str(seq), "--raw", "--db", db_path)
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes == body


def test_cli_receipt_metadata_and_text(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [receipt(UMLAUT_BODY, received_at="2026-05-04T10:15:03Z")])
    view = ok_json(invoke("audit", "receipt", "1", "--db", db, "--json"))
    assert view["seq"] == 1
    assert view["received_at"] == "2026-05-04T10:15:03Z"
    assert base64.b64decode(view["body_base64"]) == UMLAUT_BODY
    assert view["body_text"] == UMLAUT_BODY.decode()
    text = invoke("audit", "receipt", "1", "--db", db)
    assert text.exit_code == 0
    assert "receipt 1 from smtp2go, received 2026-05-04T10:15:03Z" in text.stdout
    assert hashlib.sha256(UMLAUT_BODY).hexdigest() in text.stdout
    assert "Empfänger unbekannt — 550 ✉" in text.stdout


def test_cli_binary_body_is_not_printed_as_text_but_raw_gives_it(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    body = b"event=bounce&rcpt=x%40example.org&junk=\xff\xfe\x00"
    append_sync(db, [receipt(body, received_at="2026-05-04T10:15:03Z", ctype=FORM)])
    view = ok_json(invoke("audit", "receipt", "1", "--db", db, "--json"))
    assert "body_text" not in view  # not UTF-8: only the base64 form
    assert base64.b64decode(view["body_base64"]) == body
    assert "(binary body: use --raw)" in invoke("audit", "receipt", "1", "--db", db).stdout
    assert invoke("audit", "receipt", "1", "--raw", "--db", db).stdout_bytes == body


async def test_unknown_receipt_is_404_over_http(client: Any) -> None:
    await post(client, FORM_BODY, FORM)
    for params in (None, {"raw": "true"}):
        response = await client.get("/v1/audit/receipts/2", params=params, headers=AUTH)
        assert response.status_code == 404
        assert "no receipt 2" in response.json()["detail"]


def test_unknown_receipt_is_exit_1_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    append_sync(db, [receipt(FORM_BODY, received_at="2026-05-04T10:15:03Z", ctype=FORM)])
    for extra in ((), ("--raw",)):
        result = invoke("audit", "receipt", "7", *extra, "--db", db)
        assert result.exit_code == 1
        assert "no receipt 7" in result.stderr
        assert result.stdout_bytes == b""


async def test_receipts_need_an_api_key(client: Any) -> None:
    await post(client, FORM_BODY, FORM)
    for path in ("/v1/audit/receipts", "/v1/audit/receipts/1", "/v1/audit/receipts/1?raw=true"):
        assert (await client.get(path)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert (await client.get(path, headers=wrong)).status_code == 401


def _history(tmp_path: Path) -> Path:
    """Seven receipts: smtp2go and operator, received an hour apart from 08:00."""
    db = tmp_path / "ledger.db"
    items = []
    for hour in range(8, 15):
        source = "operator" if hour in (10, 13) else "smtp2go"
        body = as_json(smtp2go_event("delivered", f"u{hour}@example.com", "2026-05-04", f"{hour}"))
        items.append(receipt(body, received_at=f"2026-05-04T{hour:02}:00:00Z", source=source))
    assert append_sync(db, items) == [1, 2, 3, 4, 5, 6, 7]
    return db


def test_cli_receipt_listing_filters_by_source_and_received_time(tmp_path: Path) -> None:
    db = _history(tmp_path)

    def seqs(*args: str) -> list[int]:
        return [
            item["seq"]
            for item in ok_json(invoke("audit", "receipts", *args, "--db", db, "--json"))
        ]

    assert seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert seqs("--source", "operator") == [3, 6]
    assert seqs("--source", "smtp2go") == [1, 2, 4, 5, 7]
    assert seqs("--source", "ses") == []
    # [since, until): at-or-after since, strictly before until
    assert seqs("--since", "2026-05-04T10:00:00Z") == [3, 4, 5, 6, 7]
    assert seqs("--until", "2026-05-04T10:00:00Z") == [1, 2]
    assert seqs("--since", "2026-05-04T09:00:00Z", "--until", "2026-05-04T12:00:00Z") == [2, 3, 4]
    assert seqs("--since", "2026-05-04T09:30:00+00:00", "--source", "smtp2go") == [4, 5, 7]
    assert seqs("--limit", "2") == [1, 2]
    listed = ok_json(invoke("audit", "receipts", "--db", db, "--json"))
    assert "body_base64" not in listed[0]  # a listing is metadata only
    assert listed[0]["received_at"] == "2026-05-04T08:00:00Z"

    text = invoke("audit", "receipts", "--source", "operator", "--db", db)
    assert text.exit_code == 0
    assert "operator" in text.stdout
    assert "smtp2go" not in text.stdout

    bad = invoke("audit", "receipts", "--since", "last tuesday", "--db", db)
    assert bad.exit_code == 2
    assert "--since" in bad.stderr


async def test_http_receipt_pages_have_no_gaps_or_duplicates(client: Any) -> None:
    for n in range(11):
        body = as_json(smtp2go_event("delivered", f"p{n}@example.com", "2026-05-04", f"p{n}"))
        await post(client, body)
    seen: list[int] = []
    after, pages = 0, 0
    while True:
        page = await get_json(client, "/v1/audit/receipts", after=after, limit=4)
        seen += [item["seq"] for item in page["items"]]
        pages += 1
        assert pages <= 5
        if page["next"] is None:
            break
        assert page["next"] == page["items"][-1]["seq"]
        after = page["next"]
    assert seen == list(range(1, 12))
    assert pages == 3

    # a page that ends exactly at the head still says where to go on; the next is empty
    page = await get_json(client, "/v1/audit/receipts", after=7, limit=4)
    assert [item["seq"] for item in page["items"]] == [8, 9, 10, 11]
    assert page["next"] == 11
    assert await get_json(client, "/v1/audit/receipts", after=11, limit=4) == {
        "items": [],
        "next": None,
    }


async def test_http_receipt_listing_filters_and_refuses_a_bad_time(client: Any) -> None:
    await post(client, FORM_BODY, FORM)
    await post(client, UMLAUT_BODY, JSON)
    put = await client.put(
        "/v1/suppressions/carol@example.com", json={"note": "asked by mail"}, headers=AUTH
    )
    assert put.status_code == 200
    page = await get_json(client, "/v1/audit/receipts", source="operator")
    assert [(item["seq"], item["source"]) for item in page["items"]] == [(3, "operator")]
    page = await get_json(client, "/v1/audit/receipts", source="smtp2go")
    assert [item["seq"] for item in page["items"]] == [1, 2]
    assert page["next"] is None
    # everything arrived just now: nothing before 2000, everything after it
    assert (await get_json(client, "/v1/audit/receipts", until="2000-01-01T00:00:00Z"))[
        "items"
    ] == []
    page = await get_json(client, "/v1/audit/receipts", since="2000-01-01T00:00:00Z")
    assert [item["seq"] for item in page["items"]] == [1, 2, 3]

    for params in ({"since": "yesterday"}, {"until": "2026-13-45"}):
        response = await client.get("/v1/audit/receipts", params=params, headers=AUTH)
        assert response.status_code == 400, params
        assert "not a time" in response.json()["detail"]
