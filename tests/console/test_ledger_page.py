"""The console's ledger page: verifying the chain (the last result kept and shown), the
newest receipts by provider (keyset pages), the quarantine with a replay button per
delivery, and the log of operator actions."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from api.console import ledger_pages
from projections.providers import smtp2go
from tests.api.helpers import event, hard_bounce, post_webhook
from tests.conftest import AUTH, settle
from tests.console.helpers import post_form, sign_in

pytestmark = pytest.mark.both_backends

HOSTILE = "<script>window.__pwned=1</script>"
# SMTP2GO JSON whose event name sits under a key no decoder reads today (quarantined).
ODD = json.dumps({"evt": "bounce", "bounce": "hard", "rcpt": "odd@example.org", "id": "q1"})


def _tolerant(original: Any) -> Any:
    """Stand-in for a fixed decoder: reads `evt` as `event`."""

    def decode(body: bytes, content_type: str = "", headers: Any = None) -> Any:
        return original(body.replace(b'"evt"', b'"event"'), content_type, headers)

    return decode


def _receipt_column(html: str) -> list[int]:
    """The receipt numbers of the recent-receipts table, in the page's order."""
    section = html.split('id="recent"')[1].split("</section>")[0]
    return [int(seq) for seq in re.findall(r'<tr><td><a href="/console/receipts/(\d+)"', section)]


async def _bounces(client: Any, count: int) -> None:
    for number in range(count):
        body = hard_bounce(f"r{number}@example.org")
        assert (await post_webhook(client, body)).status_code == 200
    await settle(client)


async def test_verify_runs_and_its_last_result_is_shown(client: Any) -> None:
    await _bounces(client, 3)
    await sign_in(client)
    page = (await client.get("/console/ledger")).text
    assert "Not verified since this instance started." in page
    assert '<form method="post" action="/console/ledger/verify"' in page
    assert "Verify the chain" in page
    done = await post_form(client, "/console/ledger", "/console/ledger/verify", {})
    assert done.status_code == 303
    assert done.headers["location"].startswith("/console/ledger?done=")
    html = (await client.get(done.headers["location"])).text
    assert "chain intact: 3 receipts checked" in html  # the notice
    assert '<span class="badge ok">intact</span>' in html
    assert "Receipts checked</dt><dd>3</dd>" in html
    head = (await client.get("/v1/audit/receipts/3", headers=AUTH)).json()
    assert f"<code>{head['chain_hash']}</code>" in html
    assert re.search(r"Ran</dt><dd><time datetime=\"\d{4}-\d\d-\d\dT[\d:]+Z\">", html)
    # and what body storage holds: the three bodies, compressed (no dictionary yet)
    assert re.search(
        r'Body storage</dt><dd class="bodies">bodies: 3 stored, \d+ bytes raw in \d+ bytes '
        r"\(0\.\d\dx\); 0 plain, 0 dictionaries</dd>",
        html,
    )
    # kept: shown again on a later visit, until the next verification
    assert "Receipts checked</dt><dd>3</dd>" in (await client.get("/console/ledger")).text


@pytest.mark.sqlite_only  # the tampering goes around the store, with sqlite3
async def test_a_broken_chain_is_shown_with_the_first_broken_receipt(
    client: Any, db_path: Path
) -> None:
    await _bounces(client, 3)
    connection = sqlite3.connect(db_path)
    try:
        connection.execute(
            "UPDATE bodies SET codec = 0, dictionary = NULL, data = ? WHERE seq = 2", (b"{}",)
        )
        connection.commit()
    finally:
        connection.close()
    await sign_in(client)
    done = await post_form(client, "/console/ledger", "/console/ledger/verify", {})
    html = (await client.get(done.headers["location"])).text
    assert "chain broken at receipt 2 (1 receipts before it verified)" in html
    assert '<span class="badge bad">broken at receipt 2</span>' in html
    assert "Receipts checked</dt><dd>1</dd>" in html


async def test_recent_receipts_newest_first_filtered_by_provider(client: Any) -> None:
    await _bounces(client, 2)
    await sign_in(client)
    home = "/console/address/r0@example.org"
    await post_form(client, home, home + "/release", {"note": "asked nicely"})
    await settle(client)
    html = (await client.get("/console/ledger")).text
    assert _receipt_column(html) == [3, 2, 1]
    assert '<label for="source">Provider</label>' in html
    assert '<select id="source" name="source">' in html
    assert '<option value="smtp2go">smtp2go</option>' in html
    assert '<button type="submit">Show</button>' in html
    assert 'href="/v1/audit/receipts"' in html
    assert 'href="/v1/quarantine"' in html
    assert "older</a>" not in html  # all of them fit
    only = (await client.get("/console/ledger", params={"source": "operator"})).text
    assert _receipt_column(only) == [3]
    assert '<option value="operator" selected>operator</option>' in only
    section = only.split('id="recent"')[1].split("</section>")[0]
    assert "<td>operator</td>" in section
    assert "<td>smtp2go</td>" not in section
    assert _receipt_column(
        (await client.get("/console/ledger", params={"source": "smtp2go"})).text
    ) == [2, 1]
    assert (
        "No receipts from ses"
        in (await client.get("/console/ledger", params={"source": "ses"})).text
    )
    refused = await client.get("/console/ledger", params={"before": "0"})
    assert refused.status_code == 400


async def test_older_receipts_page_by_keyset(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_pages, "PAGE", 2)
    await _bounces(client, 5)
    await sign_in(client)
    html = (await client.get("/console/ledger")).text
    assert _receipt_column(html) == [5, 4]
    link = re.search(r'<a href="([^"]+)" rel="next">older</a>', html)
    assert link is not None
    assert link.group(1) == "/console/ledger?before=4"
    page = (await client.get(link.group(1))).text
    assert _receipt_column(page) == [3, 2]
    last = (await client.get("/console/ledger", params={"before": 2})).text
    assert _receipt_column(last) == [1]
    assert 'rel="next">older</a>' not in last
    assert '<a href="/console/ledger">newest</a>' in last
    filtered = (await client.get("/console/ledger", params={"source": "smtp2go"})).text
    assert 'href="/console/ledger?before=4&amp;source=smtp2go" rel="next">older</a>' in filtered


async def test_a_quarantined_delivery_is_listed_and_replayed(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await post_webhook(client, ODD.encode())).status_code == 400
    await sign_in(client)
    html = (await client.get("/console/ledger")).text
    section = html.split('id="quarantine"')[1].split("</section>")[0]
    assert "<td>smtp2go</td>" in section
    assert "`event`" in section  # the reason
    assert '<form method="post" action="/console/quarantine/1/replay">' in section
    assert '<button type="submit">Replay</button>' in section
    # without the token: refused, nothing replayed
    forged = await client.post("/console/quarantine/1/replay", follow_redirects=False)
    assert forged.status_code == 403
    still = await post_form(client, "/console/ledger", "/console/quarantine/1/replay", {})
    assert still.status_code == 303
    shown = (await client.get(still.headers["location"])).text
    assert "quarantined delivery 1 not replayed: still undecodable" in shown
    assert (await client.get("/healthz", headers=AUTH)).json()["receipts"] == 0

    monkeypatch.setattr(smtp2go, "decode", _tolerant(smtp2go.decode))
    done = await post_form(client, "/console/ledger", "/console/quarantine/1/replay", {})
    shown = (await client.get(done.headers["location"])).text
    assert "quarantined delivery 1 replayed: now receipt 1" in shown
    assert "Nothing is waiting in quarantine." in shown
    assert _receipt_column(shown) == [1]
    status = (await client.get("/v1/suppressions/odd@example.org", headers=AUTH)).json()
    assert status["suppressed"] is True
    again = await post_form(client, "/console/ledger", "/console/quarantine/1/replay", {})
    assert (
        "was already replayed, as receipt 1" in (await client.get(again.headers["location"])).text
    )
    missing = await post_form(client, "/console/ledger", "/console/quarantine/99/replay", {})
    assert (
        "there is no quarantined delivery 99"
        in (await client.get(missing.headers["location"])).text
    )


async def test_operator_actions_are_listed_with_who_and_why(client: Any) -> None:
    body = json.dumps(event("bounce", "a@example.org", "x1", bounce="hard")).encode()
    assert (await post_webhook(client, body)).status_code == 200
    await settle(client)
    await sign_in(client)
    html = (await client.get("/console/ledger")).text
    assert "No operator has suppressed or released an address by hand." in html
    page = "/console/address/a@example.org"
    note = f"asked by phone {HOSTILE}"
    done = await post_form(client, page, page + "/release", {"note": note})
    assert done.status_code == 303
    html = (await client.get("/console/ledger")).text
    assert "<script>window.__pwned" not in html
    section = html.split('id="operator-actions"')[1].split("</section>")[0]
    row = re.search(r"<tr><td><time.*?</tr>", section)
    assert row is not None
    assert "<td>release</td>" in row.group(0)
    assert '<a href="/console/address/a@example.org">a@example.org</a>' in row.group(0)
    assert "<td>ops</td>" in row.group(0)
    assert "<td>asked by phone &lt;script&gt;window.__pwned=1&lt;/script&gt;</td>" in row.group(0)
    assert '<a href="/console/receipts/2">#2</a>' in row.group(0)
    assert 'href="/v1/audit/receipts?source=operator"' in section


async def test_the_ledger_page_asks_to_sign_in(client: Any) -> None:
    response = await client.get("/console/ledger", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")
    forged = await client.post("/console/ledger/verify", follow_redirects=False)
    assert forged.status_code in (303, 403)
