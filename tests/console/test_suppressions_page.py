"""The console's suppression list: filters (reason, provider, days, text), sorts, keyset
pages of 100, the CSV export (every row of the filter, escaped, guarded against formula
injection), releasing ticked addresses (confirmed, with a required note, recorded with
the signed-in key's name), the CSRF refusal, the same filters on GET /v1/suppressions,
and the projection's indexes across rebuilds."""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from api.console import suppression_pages
from ledger import open_store
from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, Projector, rebuild, search
from projections.recipients import _EARLIEST, _LATEST, format_time
from tests.api.helpers import event, post_webhook
from tests.conftest import AUTH, settle
from tests.console.helpers import csrf_token, sign_in

pytestmark = pytest.mark.both_backends

PAGE = "/console/suppressions"
CSV_URL = "/console/suppressions.csv"
RELEASE = "/console/suppressions/release"
CONFIRM = "/console/suppressions/release/confirm"
MANUAL = "d@example.net"
QUOTED = '"q,uote"@example.org'  # a comma and quotes: CSV must quote and escape it
# address -> (SMTP2GO event, event time): the webhook suppressions
HOOKED = {
    "a@example.org": ("hard", "2020-05-01T08:00:00Z"),
    "b@example.com": ("spam", "2020-05-02T09:00:00Z"),
    "c@example.org": ("hard", "2020-05-03T23:59:59Z"),
    "=cmd@example.org": ("hard", "2020-05-04T00:00:00Z"),
    QUOTED: ("hard", "2020-05-05T12:00:00.250000Z"),
    "-dash@example.org": ("spam", "2020-05-06T00:00:00Z"),
}
BY_SINCE = [*HOOKED, MANUAL]  # the manual one is suppressed now, after all of them
EVERYONE = sorted(BY_SINCE)  # by address: byte order


class _Page(HTMLParser):
    """What a test reads from the list: ticked-box values, links by text, the caption."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.boxes: list[tuple[str, str]] = []  # (value, aria-label)
        self.links: dict[str, str] = {}
        self._href: str | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "input" and found.get("type") == "checkbox":
            self.boxes.append((found["value"], found.get("aria-label", "")))
        if tag == "a":
            self._href, self._text = found.get("href"), ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.setdefault(self._text.strip(), self._href)
            self._href = None


def listed(text: str) -> list[str]:
    return [value for value, _ in _Page(text).boxes]


async def _seed(client: Any) -> None:
    """The HOOKED suppressions in one SMTP2GO delivery, and MANUAL by an operator."""
    events = []
    for number, (rcpt, (kind, when)) in enumerate(HOOKED.items()):
        fields = {"bounce": "hard"} if kind == "hard" else {}
        kind = "bounce" if kind == "hard" else kind
        events.append(event(kind, rcpt, f"e{number}", time=when, **fields))
    response = await post_webhook(client, json.dumps(events).encode())
    assert response.status_code == 200, response.text
    put = await client.put(f"/v1/suppressions/{MANUAL}", json={"note": "asked"}, headers=AUTH)
    assert put.status_code == 200, put.text
    await settle(client)


async def _ready(client: Any) -> None:
    await _seed(client)
    assert (await sign_in(client)).status_code == 303


async def _list(client: Any, **params: str) -> list[str]:
    response = await client.get(PAGE, params=params)
    assert response.status_code == 200, response.text
    return listed(response.text)


async def _receipts(client: Any) -> int:
    return int((await client.get("/healthz", headers=AUTH)).json()["receipts"])


async def _suppressed(client: Any, email: str) -> bool:
    response = await client.get(f"/v1/suppressions/{email}", headers=AUTH)
    assert response.status_code == 200, response.text
    return bool(response.json()["suppressed"])


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- the page ---------------------------------------------------------------------------


async def test_the_list_asks_to_sign_in_first(client: Any) -> None:
    for path in (PAGE, CSV_URL):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")


async def test_the_page_shows_the_form_the_columns_and_every_row(client: Any) -> None:
    await _ready(client)
    response = await client.get(PAGE)
    assert response.status_code == 200
    text = response.text
    # the filter form: GET, every input labelled, a Filter button
    assert '<form method="get" action="/console/suppressions"' in text
    for field, label in (
        ("f-reason", "Reason"),
        ("f-provider", "Provider"),
        ("f-since", "Since"),
        ("f-until", "Until (inclusive)"),
        ("f-q", "Address contains"),
    ):
        assert f'<label for="{field}">{label}</label>' in text
        assert f'id="{field}"' in text
    assert '<button type="submit">Filter</button>' in text
    assert "both days included" in text
    # the table inside the release form, with the CSRF token
    form = text[text.index(f'<form method="post" action="{RELEASE}">') :]
    assert 'name="_csrf_token"' in form[: form.index("<table>")]
    assert '<button type="submit">Release selected</button>' in form
    for header in ("Address", "Reason", "Provider", "Since", "Evidence", "Last event"):
        assert re.search(rf"<th scope=\"col\"[^>]*>(<a [^>]+>)?{header}(</a>)?", text), header
    page = _Page(text)
    assert [value for value, _ in page.boxes] == EVERYONE
    assert all(label == f"select {value}" for value, label in page.boxes)
    # a quoted address is escaped in the attribute, not broken out of it
    assert 'value="&#34;q,uote&#34;@example.org"' in text
    assert page.links["a@example.org"] == "/console/address/a@example.org"
    assert page.links["Address"] == PAGE
    assert page.links["Since"] == f"{PAGE}?sort=since"
    assert page.links["Export CSV"] == CSV_URL
    assert "Next page" not in page.links
    assert f"{len(EVERYONE)} address(es) on this page" in text
    row = text[text.index('value="a@example.org"') :]
    row = row[: row.index("</tr>")]
    assert "<td>hard_bounce</td>" in row
    assert "<td>smtp2go</td>" in row
    assert '<time datetime="2020-05-01T08:00:00Z">' in row
    assert '<a href="/console/receipts/1">#1</a>' in row
    manual = text[text.index(f'value="{MANUAL}"') :]
    assert "<td>manual</td>" in manual[: manual.index("</tr>")]
    assert "<td>operator</td>" in manual[: manual.index("</tr>")]


async def test_each_filter_narrows_the_list(client: Any) -> None:
    await _ready(client)
    assert await _list(client, reason="complaint") == ["-dash@example.org", "b@example.com"]
    assert await _list(client, reason="manual") == [MANUAL]
    assert await _list(client, reason="unsubscribe") == []
    assert await _list(client, provider="operator") == [MANUAL]
    assert await _list(client, provider="smtp2go") == sorted(HOOKED)
    assert await _list(client, provider="sendgrid") == []
    # days in UTC on `since`; `until` includes its whole day (c@ at 23:59:59)
    assert await _list(client, since="2020-05-02", until="2020-05-03") == [
        "b@example.com",
        "c@example.org",
    ]
    assert await _list(client, since="2020-05-04") == sorted(
        ["=cmd@example.org", QUOTED, "-dash@example.org", MANUAL]
    )
    assert await _list(client, until="2020-05-01") == ["a@example.org"]
    assert await _list(client, since="2020-05-03", until="2020-05-02") == []
    # text in the address: case-insensitive, LIKE wildcards taken literally
    assert await _list(client, q="example.com") == ["b@example.com"]
    assert await _list(client, q="  CMD ") == ["=cmd@example.org"]
    assert await _list(client, q=",uo") == [QUOTED]
    assert await _list(client, q="%") == []
    assert await _list(client, q="_") == []
    # filters combine
    assert await _list(client, reason="hard_bounce", q="example.org", until="2020-05-03") == [
        "a@example.org",
        "c@example.org",
    ]
    # the form shows the filter it was given
    response = await client.get(PAGE, params={"reason": "complaint", "q": "<b>"})
    assert '<option value="complaint" selected>' in response.text
    assert 'value="&lt;b&gt;"' in response.text
    assert "0 address(es) on this page" in response.text


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"reason": "bogus"}, "reason"),
        ({"provider": "nobody"}, "provider"),
        ({"since": "2020-13-01"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"sort": "reason"}, "sort"),
        ({"q": "x" * 400}, "q"),
    ],
)
async def test_a_bad_filter_is_a_400_saying_which(
    client: Any, params: dict[str, str], named: str
) -> None:
    await _ready(client)
    response = await client.get(PAGE, params=params)
    assert response.status_code == 400
    error = response.text.split('<p class="error" role="alert">')[1].split("</p>")[0]
    assert error.startswith(f"{named}: ")
    assert listed(response.text) == []
    assert 'name="email"' not in response.text
    assert (await client.get(CSV_URL, params=params)).status_code == 400


async def test_a_bad_cursor_is_a_400(client: Any) -> None:
    await _ready(client)
    response = await client.get(PAGE, params={"sort": "since", "after": "a@example.org"})
    assert response.status_code == 400
    assert "after: not a cursor of a list sorted by since" in response.text


async def test_sorts_and_the_header_links(client: Any) -> None:
    await _ready(client)
    assert await _list(client) == EVERYONE
    assert await _list(client, sort="email") == EVERYONE
    assert await _list(client, sort="since") == BY_SINCE
    assert await _list(client, sort="-since") == BY_SINCE[::-1]
    page = _Page((await client.get(PAGE, params={"sort": "since", "reason": "hard_bounce"})).text)
    assert page.links["Since"] == f"{PAGE}?reason=hard_bounce&sort=-since"
    assert page.links["Address"] == f"{PAGE}?reason=hard_bounce"
    assert page.links["Export CSV"] == f"{CSV_URL}?reason=hard_bounce&sort=since"
    text = (await client.get(PAGE, params={"sort": "-since"})).text
    assert 'aria-sort="descending"><a href="/console/suppressions?sort=since">Since</a>' in text
    assert _Page(text).links["Since"] == f"{PAGE}?sort=since"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, EVERYONE),
        ({"sort": "since"}, BY_SINCE),
        ({"sort": "-since"}, BY_SINCE[::-1]),
        (
            {"reason": "hard_bounce", "sort": "-since"},
            [
                e
                for e in BY_SINCE[::-1]
                if e in ("a@example.org", "c@example.org", "=cmd@example.org", QUOTED)
            ],
        ),
        ({"since": "2020-05-02", "q": "example"}, sorted(BY_SINCE[1:])),
    ],
)
async def test_next_page_links_walk_the_whole_list_once(
    client: Any, monkeypatch: pytest.MonkeyPatch, params: dict[str, str], expected: list[str]
) -> None:
    monkeypatch.setattr(suppression_pages, "PAGE", 2)
    await _ready(client)
    seen: list[str] = []
    url: str | None = f"{PAGE}?{urlencode(params)}" if params else PAGE
    pages = 0
    while url is not None and pages < 10:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = _Page(response.text)
        rows = [value for value, _ in page.boxes]
        assert f"{len(rows)} address(es) on this page" in response.text
        seen += rows
        pages += 1
        assert ("First page" in page.links) is (pages > 1)
        url = page.links.get("Next page")
        if url is not None:
            assert len(rows) == 2
            assert parse_qs(urlsplit(url).query).keys() == {*params, "after"}
    assert seen == expected
    assert pages == max(1, -(-len(expected) // 2))  # no empty page at the end


async def test_a_page_holds_a_hundred_rows(client: Any) -> None:
    body = [event("bounce", f"u{n:03d}@example.org", f"h{n}", bounce="hard") for n in range(101)]
    assert (await post_webhook(client, json.dumps(body).encode())).status_code == 200
    await settle(client)
    await sign_in(client)
    first = await client.get(PAGE)
    page = _Page(first.text)
    assert len(page.boxes) == 100
    assert "100 address(es) on this page" in first.text
    following = page.links["Next page"]
    assert following == f"{PAGE}?after=u099%40example.org"
    second = _Page((await client.get(following)).text)
    assert [value for value, _ in second.boxes] == ["u100@example.org"]
    assert "Next page" not in second.links
    assert second.links["First page"] == PAGE


# -- the CSV export ---------------------------------------------------------------------


async def test_the_csv_lists_every_row_escaped_and_guarded(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(client)
    response = await client.get(CSV_URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="suppressions.csv"'
    text = response.text
    assert text.splitlines()[0] == "email,reason,provider,since,receipt,last_event,reasons"
    rows = _csv_rows(text)
    guarded = {"=cmd@example.org": "'=cmd@example.org", "-dash@example.org": "'-dash@example.org"}
    assert [row[0] for row in rows[1:]] == [guarded.get(e, e) for e in EVERYONE]
    by_email = {row[0]: row for row in rows[1:]}
    assert by_email["a@example.org"] == [
        "a@example.org",
        "hard_bounce",
        "smtp2go",
        "2020-05-01T08:00:00Z",
        "1",
        "2020-05-01T08:00:00Z",
        "hard_bounce",
    ]
    assert by_email[QUOTED][3] == "2020-05-05T12:00:00.250000Z"
    assert '"""q,uote""@example.org"' in text  # quoted, quotes doubled
    assert by_email["'-dash@example.org"][1] == "complaint"
    assert by_email[MANUAL][1:3] == ["manual", "operator"]
    status = (await client.get(f"/v1/suppressions/{MANUAL}", headers=AUTH)).json()
    assert by_email[MANUAL][3] == status["since"]
    assert by_email[MANUAL][4] == str(status["receipt"])
    assert all(not row[0].startswith(("=", "+", "-", "@")) for row in rows)
    # streamed in chunks: the same bytes whatever the chunk size
    monkeypatch.setattr(suppression_pages, "CSV_CHUNK", 2)
    assert (await client.get(CSV_URL)).text == text


async def test_the_csv_follows_the_filter_and_the_sort(client: Any) -> None:
    await _ready(client)
    complaints = _csv_rows((await client.get(CSV_URL, params={"reason": "complaint"})).text)
    assert [row[0] for row in complaints[1:]] == ["'-dash@example.org", "b@example.com"]
    newest = _csv_rows((await client.get(CSV_URL, params={"sort": "-since"})).text)
    assert [row[0].lstrip("'") for row in newest[1:]] == BY_SINCE[::-1]
    days = _csv_rows(
        (await client.get(CSV_URL, params={"since": "2020-05-02", "until": "2020-05-03"})).text
    )
    assert [row[0] for row in days[1:]] == ["b@example.com", "c@example.org"]
    empty = await client.get(CSV_URL, params={"provider": "ses"})
    assert empty.text == "email,reason,provider,since,receipt,last_event,reasons\r\n"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("a=1", "a=1"),
        ("", ""),
    ],
)
def test_csv_cell_guards_formulas(value: str, cell: str) -> None:
    assert suppression_pages.csv_cell(value) == cell


# -- releasing ticked addresses ---------------------------------------------------------


async def _release_page(client: Any, emails: list[str], **extra: str) -> Any:
    token = csrf_token((await client.get(PAGE)).text)
    data: dict[str, Any] = {"email": emails, "_csrf_token": token, **extra}
    return await client.post(RELEASE, data=data, follow_redirects=False)


async def test_releasing_the_ticked_rows_confirms_then_records_each_with_note_and_name(
    client: Any,
) -> None:
    await _ready(client)
    before = await _receipts(client)
    chosen = ["a@example.org", "=cmd@example.org"]
    confirm = await _release_page(client, chosen)
    assert confirm.status_code == 200  # a page, not a redirect
    text = confirm.text
    assert "<h1>Release 2 address(es)?</h1>" in text
    form = text[text.index(f'<form method="post" action="{CONFIRM}"') :]
    form = form[: form.index("</form>")]
    assert re.findall(r'<input type="hidden" name="email" value="([^"]+)">', form) == chosen
    # with each address, the newest evidence the page shows: checked again on confirming
    expects = re.findall(r'<input type="hidden" name="expect" value="(\d+)">', form)
    assert len(expects) == len(chosen)
    assert '<label for="release-note">Why? (recorded with your name)</label>' in form
    assert 'id="release-note" name="note" type="text" required' in form
    assert '<button type="submit">Release 2 address(es)</button>' in form
    assert await _receipts(client) == before  # nothing yet

    done = await client.post(
        CONFIRM,
        data={
            "email": chosen,
            "expect": expects,
            "note": "asked by the customer, ticket 42",
            "_csrf_token": csrf_token(text),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith(f"{PAGE}?done=")
    notice = parse_qs(urlsplit(location).query)["done"][0]
    assert notice.startswith("released 2 address(es) by ops")
    shown = await client.get(location)
    assert html.escape(notice) in shown.text
    assert listed(shown.text) == [e for e in EVERYONE if e not in chosen]

    assert await _receipts(client) == before + 2
    for email in EVERYONE:
        assert await _suppressed(client, email) is (email not in chosen), email
    page = (
        await client.get("/v1/audit/receipts", params={"source": "operator"}, headers=AUTH)
    ).json()
    bodies = []
    for item in page["items"]:
        receipt = (await client.get(f"/v1/audit/receipts/{item['seq']}", headers=AUTH)).json()
        bodies.append(json.loads(receipt["body_text"]))
    released = [b for b in bodies if b["action"] == "release"]
    assert sorted(b["email"] for b in released) == sorted(chosen)
    assert {(b["actor"], b["note"]) for b in released} == {
        ("ops", "asked by the customer, ticket 42")
    }
    timeline = (await client.get("/v1/audit/recipients/a@example.org/events", headers=AUTH)).json()
    assert (timeline[-1]["kind"], timeline[-1]["actor"]) == ("operator_release", "ops")


async def test_no_note_releases_nothing_and_asks_again(client: Any) -> None:
    await _ready(client)
    before = await _receipts(client)
    chosen = ["b@example.com", "c@example.org"]
    token = csrf_token((await _release_page(client, chosen)).text)
    for note in ({}, {"note": ""}, {"note": "   "}):
        again = await client.post(
            CONFIRM, data={"email": chosen, "_csrf_token": token, **note}, follow_redirects=False
        )
        assert again.status_code == 400
        assert "<h1>Release 2 address(es)?</h1>" in again.text
        assert "a release needs a note saying why" in again.text
        assert re.findall(r'name="email" value="([^"]+)"', again.text) == chosen
    assert await _receipts(client) == before
    assert all([await _suppressed(client, email) for email in chosen])


async def test_without_the_csrf_token_both_steps_are_refused(client: Any) -> None:
    await _ready(client)
    before = await _receipts(client)
    first = await client.post(RELEASE, data={"email": ["a@example.org"]}, follow_redirects=False)
    assert first.status_code == 403
    second = await client.post(
        CONFIRM, data={"email": ["a@example.org"], "note": "why"}, follow_redirects=False
    )
    assert second.status_code == 403
    wrong = await client.post(
        CONFIRM,
        data={"email": ["a@example.org"], "note": "why", "_csrf_token": "forged"},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    assert await _receipts(client) == before
    assert await _suppressed(client, "a@example.org")


async def test_nothing_ticked_and_too_many_are_refused(client: Any) -> None:
    await _ready(client)
    before = await _receipts(client)
    none = await _release_page(client, [])
    assert none.status_code == 303
    notice = parse_qs(urlsplit(none.headers["location"]).query)["done"]
    assert notice == ["nothing released: no address was selected"]
    many = [f"n{k}@example.org" for k in range(suppression_pages.MAX_RELEASE + 1)]
    refused = await _release_page(client, many)
    assert refused.status_code == 400
    assert "1,001 addresses were selected: at most 1,000 can be released at once" in refused.text
    assert f'action="{CONFIRM}"' not in refused.text
    forced = await client.post(
        CONFIRM,
        data={"email": many, "note": "all", "_csrf_token": csrf_token(refused.text)},
        follow_redirects=False,
    )
    assert forced.status_code == 400
    assert await _receipts(client) == before


# -- the JSON API -----------------------------------------------------------------------


async def _api(client: Any, **params: Any) -> list[str]:
    emails, after = [], None
    for _ in range(10):
        query = {**params, "limit": 2, **({"after": after} if after else {})}
        response = await client.get("/v1/suppressions", params=query, headers=AUTH)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        emails += [item["email"] for item in page["items"]]
        after = page["next"]
        if after is None:
            return emails
    raise AssertionError("too many pages")


async def test_the_json_list_takes_the_same_filters(client: Any) -> None:
    await _seed(client)
    assert await _api(client) == EVERYONE
    assert await _api(client, reason="complaint") == ["-dash@example.org", "b@example.com"]
    assert await _api(client, provider="operator") == [MANUAL]
    assert await _api(client, since="2020-05-02", until="2020-05-03") == [
        "b@example.com",
        "c@example.org",
    ]
    assert await _api(client, q="EXAMPLE.com") == ["b@example.com"]
    assert await _api(client, sort="since") == BY_SINCE
    assert await _api(client, sort="-since", reason="hard_bounce") == [
        QUOTED,
        "=cmd@example.org",
        "c@example.org",
        "a@example.org",
    ]
    (item,) = (await client.get("/v1/suppressions", params={"q": "a@ex"}, headers=AUTH)).json()[
        "items"
    ]
    assert item == {
        "email": "a@example.org",
        "reason": "hard_bounce",
        "since": "2020-05-01T08:00:00Z",
        "receipt": 1,
        "provider": "smtp2go",
        "last_event": "2020-05-01T08:00:00Z",
        "reasons": ["hard_bounce"],
    }
    for bad in (
        {"reason": "bogus"},
        {"provider": "nobody"},
        {"since": "May 1"},
        {"sort": "email,since"},
        {"sort": "-since", "after": "x"},
    ):
        response = await client.get("/v1/suppressions", params=bad, headers=AUTH)
        assert response.status_code == 400, bad
        assert response.json()["status_code"] == 400


# -- the projection's indexes -----------------------------------------------------------


async def _indexes(store: Any) -> list[str]:
    async with store.reading() as tx:
        if tx.dialect == "sqlite":
            rows = await tx.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'suppressions'"
            )
        else:
            rows = await tx.fetch(
                "SELECT indexname FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = 'suppressions'"
            )
    return sorted(str(row[0]) for row in rows)


async def _rows(store: Any) -> list[tuple[Any, ...]]:
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT email, reason, since, seq, source, last_event FROM suppressions ORDER BY email"
        )
    return [tuple(row) for row in rows]


async def test_two_rebuilds_in_a_row_keep_every_index_and_row(
    make_client: Any, db_path: Path
) -> None:
    async with make_client() as client:
        await _seed(client)
    store = await open_store(db_path)
    try:
        before = await _rows(store)
        assert {row[4] for row in before} == {"smtp2go", "operator"}
        indexes = await _indexes(store)
        async with store.reading() as tx:
            dialect = tx.dialect
        # SQLite: the table is its primary key's tree; PostgreSQL: the primary key's index too
        assert len(indexes) == (5 if dialect == "sqlite" else 6)
        for _ in range(3):
            await rebuild(store, DEFAULT_POLICY)
            assert await _rows(store) == before
            after = await _indexes(store)
            assert len(after) == len(indexes), after
            assert all("_next" not in name for name in after if "pkey" in name), after
            async with store.reading() as tx:
                tables = await tx.fetch(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    if tx.dialect == "sqlite"
                    else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            assert "suppressions_next" not in {str(row[0]) for row in tables}
    finally:
        await store.close()
    async with make_client() as client:
        await settle(client)
        await sign_in(client)
        assert await _list(client, provider="operator") == [MANUAL]
        assert await _list(client, reason="complaint", sort="-since") == [
            "-dash@example.org",
            "b@example.com",
        ]


# -- SQLite's plans; the time format ----------------------------------------------------

COMBOS = [
    {},
    {"reason": "complaint"},
    {"provider": "ses"},
    {"reason": "complaint", "provider": "ses"},
    {"since": "2020-01-01"},
    {"since": "2020-01-01", "until": "2020-02-01"},
    {"reason": "complaint", "until": "2020-02-01"},
    {"provider": "ses", "since": "2020-01-01"},
]


@pytest.mark.parametrize("sort", search.SORTS)
@pytest.mark.parametrize("given", COMBOS)
async def test_sqlite_serves_every_filter_and_sort_from_an_index(
    tmp_path: Path, given: dict[str, str], sort: str
) -> None:
    """Each filter and sort reads an index in the list's order (no full scan, no sort of
    the whole table); a `since` range by address either way `_plan` may choose."""
    store = await SQLiteStore.open(tmp_path / "plans.db")
    try:
        await Projector(store, DEFAULT_POLICY).start()
        wanted = search.parse_filter(**given, sort=sort)
        ranged = "since" in given or "until" in given
        plans: list[search.Plan] = ["narrow", "wide"] if sort == "email" and ranged else [None]
        last = search.Entry(email="m@x", reason="", since="", receipt=0, provider="", last_event="")
        async with store.reading() as tx:
            for plan in plans:
                for after in (None, search.cursor(last, 5, wanted.sort)):
                    sql, args = search._query(wanted, after, plan)
                    rows = await tx.fetch("EXPLAIN QUERY PLAN " + sql, *args, 101)
                    steps = " | ".join(str(row[3]) for row in rows)
                    if plan == "narrow":  # the range on its index, then sorted (< NARROW rows)
                        assert "USING INDEX" in steps, steps
                        continue
                    # otherwise read in the list's order: no sort of what was read
                    assert "TEMP B-TREE" not in steps, steps
                    if "reason" in given or "provider" in given or sort != "email":
                        assert "USING INDEX" in steps, steps
    finally:
        await store.close()


def test_iso_time_is_format_time() -> None:
    rng = random.Random(7)
    values = [_EARLIEST, _LATEST, 0, -1, 1, 999_999, 86_400_000_000, -86_400_000_001]
    values += [rng.randrange(_EARLIEST, _LATEST) for _ in range(20_000)]
    values += [rng.randrange(-(10**10), 10**11) * 1_000_000 for _ in range(2_000)]
    for value in values:
        assert search.iso_time(value) == format_time(value), value
