"""Bad input gets 400, never a 500 or a false 503, and one log line.

The probe of the second security review (issue 19, N8) —
`?sort=since&after=9999999999999999999/x`: 500 on SQLite, a 503 "ledger unavailable,
retry" on PostgreSQL, no log line — on both backends, through the API and the console;
then a table of every endpoint's query and path parameters with values out of range —
numbers past 64 bits, negative, 20 digits, non-numbers, days like `99999-01-01` and
`0000-00-00`, a NUL — each answered 400, with one INFO line on `bounceledger.refusals`
naming the route (addresses as `<email>`), the parameter and why, never an address. A
sweep of every documented query parameter with the same values answers no 5xx. And the
backstop: a value the database refuses (`ValueRefused`) or an integer overflow that no
check caught is a 400, not a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from api.app import EXCEPTION_HANDLERS, create_app, http_edge
from api.settings import load_settings
from ledger import ValueRefused
from projections import DEFAULT_POLICY
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import AUTH, settle
from tests.console.helpers import sign_in
from tests.logs import kept_records

pytestmark = pytest.mark.both_backends

HUGE_CURSOR = "9999999999999999999/x"


ADDRESS = "someone/odd%x@example.org"


SEGMENT = quote(ADDRESS, safe="@")


BIG = ["9223372036854775808", "99999999999999999999", "-9223372036854775809"]


DAYS = ["99999-01-01", "0000-00-00", "2026-13-01", "2026-02-30", "20260101", "abc"]


TIMES = ["99999-01-01", "0000-00-00", "99999999999999999999", "-99999999999999999999", "1e400",
         "nan", "inf", "abc", "2026-13-01T00:00:00Z"]  # fmt: skip


REFUSED: list[tuple[str, str, str, list[str]]] = [
    ("GET", "/v1/suppressions?sort=since", "after",
     [HUGE_CURSOR, *(f"{n}/x@example.org" for n in BIG), "abc/x", "x", "1.5/x", "\x00/x"]),
    ("GET", "/v1/suppressions?sort=-since", "after", [HUGE_CURSOR, "-99999999999999999999/x"]),
    ("GET", "/v1/suppressions", "after", ["a\x00b", "x" * 1025]),
    ("GET", "/v1/suppressions", "limit", ["0", "-1", "10001", *BIG, "abc", "1.5"]),
    ("GET", "/v1/suppressions", "reason", ["nope", "hard bounce"]),
    ("GET", "/v1/suppressions", "provider", ["nope", "a@b.org"]),
    ("GET", "/v1/suppressions", "since", DAYS),
    ("GET", "/v1/suppressions", "until", DAYS),
    ("GET", "/v1/suppressions", "q", ["x" * 321, "a\x00"]),
    ("GET", "/v1/suppressions", "sort", ["nope", "-email"]),
    ("GET", f"/v1/suppressions/{SEGMENT}", "as_of", TIMES),
    ("DELETE", f"/v1/suppressions/{SEGMENT}?note=n", "expect", ["-1", *BIG, "abc"]),
    ("GET", "/v1/audit/receipts", "after", ["-1", *BIG, "abc"]),
    ("GET", "/v1/audit/receipts", "limit", ["0", "1001", *BIG, "abc"]),
    ("GET", "/v1/audit/receipts", "source", ["\x00", "a@b.org", "x" * 81, "smtp2go;drop"]),
    ("GET", "/v1/audit/receipts", "since", TIMES),
    ("GET", "/v1/audit/receipts", "until", TIMES),
    ("GET", "/v1/audit/receipts/{}", "seq", ["0", "-1", *BIG[:2]]),
    ("GET", "/v1/audit/receipts/1", "raw", ["maybe", "2"]),
    ("GET", "/v1/quarantine", "after", ["-1", *BIG, "abc"]),
    ("GET", "/v1/quarantine", "limit", ["0", "1001", *BIG, "abc"]),
    ("GET", "/v1/quarantine", "all", ["maybe"]),
    ("GET", "/v1/quarantine/{}", "qid", ["0", "-1", *BIG[:2]]),
    ("POST", "/v1/quarantine/{}/replay", "qid", ["0", "-1", *BIG[:2]]),
    ("GET", "/console/suppressions?sort=since", "after", [HUGE_CURSOR, "-1e99/x"]),
    ("GET", "/console/suppressions", "since", DAYS),
    ("GET", "/console/suppressions", "until", DAYS),
    ("GET", "/console/suppressions", "sort", ["nope"]),
    ("GET", "/console/suppressions", "reason", ["nope"]),
    ("GET", "/console/suppressions", "q", ["a\x00"]),
    ("GET", "/console/suppressions.csv", "since", DAYS[:2]),
    ("GET", "/console/ledger", "before", ["0", "-1", *BIG, "abc"]),
    ("GET", "/console/ledger", "source", ["\x00", "a@b.org", "x" * 81]),
]  # fmt: skip


ROWS = [
    pytest.param(method, path, name, values, id=f"{method} {path} {name}")
    for method, path, name, values in REFUSED
]


@pytest.fixture
def refusals() -> Iterator[list[logging.LogRecord]]:
    """The records of `bounceledger.refusals` (INFO), kept however logging is set up."""
    with kept_records("bounceledger.refusals") as records:
        yield records


async def _populate(client: Any) -> None:
    """A few suppressions, so that every list query reaches rows (and a cursor past them)."""
    for n, email in enumerate(["a@example.org", "b@example.org", ADDRESS, "z@example.org"]):
        assert (await post_webhook(client, hard_bounce(email, f"p-{n}"))).status_code == 200
    await settle(client)


async def _request(client: Any, method: str, path: str, name: str, value: str) -> Any:
    url, _, fixed = path.partition("?")
    params = dict(parse_qsl(fixed))
    if "{}" in url:
        url = url.format(quote(value, safe=""))
    else:
        params[name] = value
    headers = AUTH if path.startswith("/v1/") else {}
    return await client.request(method, url, params=params, headers=headers)


def _check_line(records: list[logging.LogRecord], method: str, name: str) -> None:
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.INFO
    assert record.__dict__["param"] == name, record.getMessage()
    assert record.__dict__["method"] == method
    message = record.getMessage()
    assert f": refused {name}: " in message, message
    assert "@" not in message.replace("<email>", ""), message
    assert "odd%x" not in message
    assert "?" not in record.__dict__["path"]
    value = record.__dict__["value"]
    assert value is None or len(value) <= 41


async def test_a_cursor_past_64_bits_is_a_400_with_a_log_line(
    client: Any, refusals: list[logging.LogRecord]
) -> None:
    await _populate(client)
    for sort in ("since", "-since"):
        answer = await client.get(
            "/v1/suppressions", params={"sort": sort, "after": HUGE_CURSOR}, headers=AUTH
        )
        assert answer.status_code == 400, answer.text
        assert "Retry-After" not in answer.headers
        detail = answer.json()["detail"]
        assert detail.startswith("after: not a cursor of a list sorted by")
        assert "64-bit integer" in detail
    assert len(refusals) == 2
    assert refusals[0].getMessage() == (
        "GET /v1/suppressions: refused after: not a cursor of a list sorted by since: "
        "its time is outside a 64-bit integer (9999999999999999999)"
    )
    # a good cursor still pages on: 2**63 - 1 is the last number a cursor may hold
    edge = await client.get(
        "/v1/suppressions",
        params={"sort": "since", "after": f"{2**63 - 1}/x"},
        headers=AUTH,
    )
    assert edge.status_code == 200, edge.text
    assert edge.json() == {"items": [], "next": None}
    first = await client.get(
        "/v1/suppressions", params={"sort": "-since", "limit": 2}, headers=AUTH
    )
    following = await client.get(
        "/v1/suppressions",
        params={"sort": "-since", "limit": 2, "after": first.json()["next"]},
        headers=AUTH,
    )
    assert following.status_code == 200
    assert len(first.json()["items"]) + len(following.json()["items"]) == 4

    refusals.clear()
    assert (await sign_in(client)).status_code == 303
    page = await client.get("/console/suppressions", params={"sort": "since", "after": HUGE_CURSOR})
    assert page.status_code == 400
    assert "64-bit integer" in page.text
    _check_line(refusals, "GET", "after")
    assert refusals[0].getMessage().startswith("GET /console/suppressions: refused after:")


@pytest.mark.parametrize(("method", "path", "name", "values"), ROWS)
async def test_every_out_of_range_value_is_a_400_with_one_line(
    client: Any,
    refusals: list[logging.LogRecord],
    method: str,
    path: str,
    name: str,
    values: list[str],
) -> None:
    if path.startswith("/console/"):
        assert (await sign_in(client)).status_code == 303
    for value in values:
        refusals.clear()
        answer = await _request(client, method, path, name, value)
        assert answer.status_code == 400, (value, answer.text[:500])
        _check_line(refusals, method, name)
        if path.startswith(f"/v1/suppressions/{SEGMENT}"):
            assert refusals[0].__dict__["path"] == "/v1/suppressions/<email>"


NASTY = ["", "-1", "0", *BIG, "1e400", "nan", "abc", "\x00", "99999-01-01", "0000-00-00",
         f"{BIG[0]}/x", "x" * 2000, "a@b.org", "%", "'; select 1 --"]  # fmt: skip


def _query_parameters() -> list[tuple[str, str, str]]:
    app = create_app(load_settings({}), DEFAULT_POLICY)
    document = app.openapi_schema.to_schema()
    found = []
    for path, item in document["paths"].items():
        if path.startswith("/v1/webhooks/"):
            continue
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found.append((method.upper(), path, parameter["name"]))
    return sorted(found)


QUERY_PARAMETERS = _query_parameters()


def test_the_sweep_covers_the_list_audit_and_quarantine_parameters() -> None:
    names = {(path, name) for _, path, name in QUERY_PARAMETERS}
    assert {
        ("/v1/suppressions", n) for n in ("after", "limit", "since", "until", "q", "sort")
    } <= names
    assert {
        ("/v1/audit/receipts", n) for n in ("after", "limit", "source", "since", "until")
    } <= names
    assert {("/v1/quarantine", n) for n in ("after", "limit", "all")} <= names


async def test_no_query_value_gets_a_5xx(client: Any) -> None:
    await _populate(client)
    concrete = {"{email}": SEGMENT, "{seq}": "1", "{qid}": "1"}
    seen: dict[int, int] = {}
    for method, path, name in QUERY_PARAMETERS:
        url = path
        for template, segment in concrete.items():
            url = url.replace(template, segment)
        for value in NASTY:
            params = {name: value}
            if method == "DELETE":
                params.setdefault("note", "sweep")
            for sort in ("email", "since") if path == "/v1/suppressions" else ("email",):
                if path == "/v1/suppressions" and name != "sort":
                    params["sort"] = sort
                answer = await client.request(method, url, params=params, headers=AUTH)
                seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
                assert answer.status_code < 500, (method, url, params, answer.text[:300])
    assert seen.get(400, 0) > len(QUERY_PARAMETERS)


@get("/refuses/{what:str}", sync_to_thread=False)
def refuses(what: FromPath[str]) -> None:
    if what == "overflow":
        raise OverflowError("Python int too large to convert to SQLite INTEGER")
    raise ValueRefused("the database refused a value: invalid input for query argument $1: 9…")


@pytest.mark.parametrize("what", ["overflow", "refused"])
async def test_a_value_the_database_refuses_is_a_400(
    what: str, refusals: list[logging.LogRecord]
) -> None:
    app = Litestar(route_handlers=[refuses], exception_handlers=EXCEPTION_HANDLERS)
    app.asgi_handler = http_edge(app.asgi_handler, 5.0)
    async with AsyncTestClient(app=app) as client:
        answer = await client.get(f"/refuses/{what}")
    assert answer.status_code == 400
    assert "Retry-After" not in answer.headers
    assert "argument" not in answer.text  # the database's words may quote the value
    assert len(refusals) == 1
    assert refusals[0].getMessage().startswith(f"GET /refuses/{what}: refused a value: ")
