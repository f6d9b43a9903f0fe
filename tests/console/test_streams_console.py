"""The console per stream: a stream selector on the lookup, address and suppressions
pages (and the CSV export) when the policy defines streams; each answers for the stream
chosen as the JSON API does (`?stream=`), says which stream the verdict is for, the
causes that block it and those that do not; the choice survives submits, pagination and
the CSV link; an unknown stream is a 400 with a message; a policy without streams shows
no selector. The history and the policy are those of tests/api/test_streams.py: SMTP2GO
webhooks with an `X-Stream` custom header, three streams."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from api.console import suppression_pages
from projections import Policy
from tests.api.test_streams import BLOCKED, EVERYONE, POLICY, _send_history
from tests.console.helpers import csrf_token, post_form, sign_in

pytestmark = pytest.mark.both_backends

NAMES = sorted(BLOCKED)  # marketing, newsletter, transactional
LOOKUP = "/console"
LIST = "/console/suppressions"
CSV_URL = "/console/suppressions.csv"
ALICE = "alice@example.org"  # unsubscribed from the newsletter only
NO_STREAMS = Policy(providers=POLICY.providers)  # the same, but no streams


def address_page(email: str) -> str:
    return f"/console/address/{email}"


class _Html(HTMLParser):
    """What a test reads from a page: its selects (id -> name, label, options), the
    options as (value, text, selected), and its links by text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.selects: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}  # for -> text
        self.links: dict[str, str] = {}
        self._select: str | None = None
        self._option: dict[str, Any] | None = None
        self._label: str | None = None
        self._href: str | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "select":
            self._select = found.get("id", "")
            self.selects[self._select] = {"name": found.get("name"), "options": []}
        elif tag == "option" and self._select is not None:
            self._option = {
                "value": found.get("value"),
                "text": "",
                "selected": "selected" in found,
            }
            self.selects[self._select]["options"].append(self._option)
        elif tag == "label":
            self._label, self._text = found.get("for", ""), ""
        elif tag == "a":
            self._href, self._text = found.get("href"), ""

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"] += data
        if self._label is not None or self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag == "label" and self._label is not None:
            self.labels[self._label] = self._text.strip()
            self._label = None
        elif tag == "a" and self._href is not None:
            self.links.setdefault(self._text.strip(), self._href)
            self._href = None


def selector(text: str, select_id: str) -> tuple[list[tuple[str, str]], str | None]:
    """The stream selector `select_id` of a page: its options (value, text), and the
    value selected (None: none is marked, the first is shown)."""
    page = _Html(text)
    assert select_id in page.selects, f"no select #{select_id}"
    found = page.selects[select_id]
    assert found["name"] == "stream"
    assert page.labels.get(select_id) == "Stream"  # labelled, for screen readers too
    options = [(o["value"], o["text"].strip()) for o in found["options"]]
    chosen = [o["value"] for o in found["options"] if o["selected"]]
    assert len(chosen) <= 1
    return options, chosen[0] if chosen else None


EXPECTED_OPTIONS = [("", "every stream"), *((name, name) for name in NAMES)]


def _between(text: str, start: str, end: str) -> str:
    part = text[text.index(start) :]
    return part[: part.index(end)]


def _fact(text: str, term: str) -> str:
    """The <dd> of the fact `term` (a <dt>) on the page."""
    start = f"<dt>{term}</dt><dd>"
    return _between(text, start, "</dd>\n")[len(start) :]


def _error(text: str) -> str:
    return _between(text, '<p class="error" role="alert">', "</p>")


def _suppressed(part: str) -> bool:
    """The verdict a piece of the page shows."""
    bad, ok = "badge bad" in part, "may be mailed" in part
    assert bad != ok, part
    return bad


@asynccontextmanager
async def _console(make_client: Callable[..., Any], policy: Policy) -> AsyncIterator[Any]:
    """A client signed in to the console of an app serving `policy`, with the history."""
    async with make_client(policy=policy) as client:
        await _send_history(client)
        assert (await sign_in(client)).status_code == 303
        yield client


# -- the lookup page --------------------------------------------------------------------


async def test_lookup_has_a_stream_selector_and_answers_for_the_stream(
    make_client: Any,
) -> None:
    async with _console(make_client, POLICY) as client:
        home = (await client.get(LOOKUP)).text
        for select_id in ("stream", "emails-stream"):  # one address, and a list
            assert selector(home, select_id) == (EXPECTED_OPTIONS, None)
        for stream, blocked in BLOCKED.items():
            for email in EVERYONE:
                got = await client.get(LOOKUP, params={"q": email, "stream": stream})
                assert got.status_code == 200, got.text
                verdict = _between(got.text, '<section aria-labelledby="verdict">', "</section>")
                assert f"For the <strong>{stream}</strong> stream:" in verdict
                first = _between(verdict, "<p>", "</p>")
                assert _suppressed(first) is (email in blocked), (stream, email)
                assert _fact(verdict, "Stream") == stream
                # the choice is kept: the selector, and the link to the address page
                assert selector(got.text, "stream")[1] == stream
                link = f'href="/console/address/{email}?stream={stream}"'
                assert link in verdict
        # without a stream: the strictest verdict, as before
        every = await client.get(LOOKUP, params={"q": ALICE})
        assert "suppressed · unsubscribe" in every.text
        assert "For the " not in every.text
        assert "not blocking" not in every.text.lower()
        assert f'href="/console/address/{ALICE}"' in every.text


async def test_lookup_names_the_blocking_causes_and_the_others(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        newsletter = (await client.get(LOOKUP, params={"q": ALICE, "stream": "newsletter"})).text
        assert "suppressed · unsubscribe" in newsletter
        blocking = _fact(newsletter, "Blocking this stream")
        assert "<strong>unsubscribe</strong> (smtp2go) [newsletter]" in blocking
        assert '<a href="/console/receipts/2">#2</a>' in blocking  # 1: the policy record
        assert _fact(newsletter, "Not blocking this stream") == "nothing"
        transactional = (
            await client.get(LOOKUP, params={"q": ALICE, "stream": "transactional"})
        ).text
        assert "may be mailed" in _between(transactional, "stream: ", "</p>")
        assert _fact(transactional, "Blocking this stream") == "nothing"
        others = _fact(transactional, "Not blocking this stream")
        assert "<strong>unsubscribe</strong> (smtp2go) [newsletter]" in others
        # a complaint in the newsletter blocks marketing too (blocked_by_any_stream)
        marketing = (
            await client.get(LOOKUP, params={"q": "bob@example.org", "stream": "marketing"})
        ).text
        assert "<strong>complaint</strong> [newsletter]" in _fact(marketing, "Blocking this stream")
        # a bounce is global: listed with no stream
        carol = (
            await client.get(LOOKUP, params={"q": "carol@example.org", "stream": "newsletter"})
        ).text
        assert "<strong>hard_bounce</strong> since" in _fact(carol, "Blocking this stream")


async def test_checking_a_list_for_a_stream(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        for stream, blocked in BLOCKED.items():
            got = await client.get(LOOKUP, params={"emails": "\n".join(EVERYONE), "stream": stream})
            assert got.status_code == 200, got.text
            text = got.text
            assert (
                f"<caption>{len(blocked)} of {len(EVERYONE)} suppressed for the {stream} stream"
                in text
            )
            for email in EVERYONE:
                row = _between(
                    text, f'<td><a href="/console/address/{email}?stream={stream}">', "</tr>"
                )
                assert _suppressed(row) is (email in blocked), (stream, email)
            assert selector(text, "emails-stream")[1] == stream
        every = (await client.get(LOOKUP, params={"emails": "\n".join(EVERYONE)})).text
        assert f"<caption>{len(EVERYONE)} of {len(EVERYONE)} suppressed</caption>" in every


# -- the address page -------------------------------------------------------------------


async def test_the_address_page_answers_for_the_stream_chosen(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        every = (await client.get(address_page(ALICE))).text
        assert selector(every, "stream") == (EXPECTED_OPTIONS, None)
        form = _between(every, '<form method="get" action="/console/address/', "</form>")
        assert ALICE in form  # it submits to this page
        assert '<button type="submit">Show</button>' in form
        assert "<strong>unsubscribe</strong> (smtp2go) [newsletter]" in _fact(every, "Every cause")
        assert "For the " not in every
        for stream, blocked in BLOCKED.items():
            for email in EVERYONE:
                got = await client.get(address_page(email), params={"stream": stream})
                assert got.status_code == 200, got.text
                shown = _between(got.text, f"For the <strong>{stream}</strong> stream:", "</p>")
                assert _suppressed(shown) is (email in blocked), (stream, email)
                assert selector(got.text, "stream")[1] == stream
                assert _fact(got.text, "Stream") == stream
                # every stream's verdict stays in sight: every address here is suppressed
                assert _suppressed(_fact(got.text, "Every stream"))
        transactional = (
            await client.get(address_page(ALICE), params={"stream": "transactional"})
        ).text
        assert _fact(transactional, "Blocking this stream") == "nothing"
        assert "<strong>unsubscribe</strong> (smtp2go) [newsletter]" in _fact(
            transactional, "Not blocking this stream"
        )
        assert "<legend>For which mail?</legend>" in transactional  # every stream, or it alone
        # the timeline is the same whatever the stream
        assert transactional.count("<tr") == every.count("<tr")


async def test_acting_from_a_stream_view_comes_back_to_it(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        page = f"{address_page(ALICE)}?stream=transactional"
        released = await post_form(
            client,
            page,
            f"{address_page(ALICE)}/release",
            {"note": "asked us to", "also": "unsubscribe"},
        )
        assert released.status_code == 303
        location = urlsplit(released.headers["location"])
        assert location.path == address_page(ALICE)
        query = parse_qs(location.query)
        assert query["stream"] == ["transactional"]
        assert query["done"][0].startswith("released by ops")
        back = await client.get(released.headers["location"])
        assert "released by ops" in back.text  # the notice, still signed
        assert selector(back.text, "stream")[1] == "transactional"
        assert "may be mailed" in _between(back.text, "stream:", "</p>")
        # without a stream shown, the redirect is as before
        suppressed = await post_form(
            client, address_page(ALICE), f"{address_page(ALICE)}/suppress", {"note": "again"}
        )
        assert urlsplit(suppressed.headers["location"]).path == address_page(ALICE)
        assert "stream" not in parse_qs(urlsplit(suppressed.headers["location"]).query)


# -- the suppressions page and its CSV --------------------------------------------------


def _listed(text: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="email" value="([^"]+)"', text)


async def test_the_list_for_a_stream(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        every = await client.get(LIST)
        assert selector(every.text, "f-stream") == (EXPECTED_OPTIONS, None)
        assert _listed(every.text) == EVERYONE
        for stream, blocked in BLOCKED.items():
            got = await client.get(LIST, params={"stream": stream})
            assert got.status_code == 200, got.text
            assert _listed(got.text) == sorted(blocked), stream
            assert selector(got.text, "f-stream")[1] == stream
            assert f"that the {stream} stream may not mail" in got.text
            page = _Html(got.text)
            assert page.links["Export CSV"] == f"{CSV_URL}?stream={stream}"
            assert page.links["Since"] == f"{LIST}?stream={stream}&sort=since"
            assert page.links["Address"] == f"{LIST}?stream={stream}"
            for email in blocked:
                assert page.links[email] == f"/console/address/{email}?stream={stream}"
        # the reasons shown are those blocking the stream; `reason` filters on them
        marketing = await client.get(LIST, params={"stream": "marketing", "reason": "complaint"})
        assert _listed(marketing.text) == ["bob@example.org"]


async def test_the_stream_survives_pagination(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suppression_pages, "PAGE", 1)
    async with _console(make_client, POLICY) as client:
        for stream, blocked in BLOCKED.items():
            seen: list[str] = []
            url: str | None = f"{LIST}?{urlencode({'stream': stream, 'sort': '-since'})}"
            while url is not None:
                got = await client.get(url)
                assert got.status_code == 200, got.text
                assert selector(got.text, "f-stream")[1] == stream
                seen += _listed(got.text)
                links = _Html(got.text).links
                if "First page" in links:
                    assert parse_qs(urlsplit(links["First page"]).query)["stream"] == [stream]
                url = links.get("Next page")
                if url is not None:
                    query = parse_qs(urlsplit(url).query)
                    assert query["stream"] == [stream]
                    assert query["sort"] == ["-since"]
                assert len(seen) <= len(blocked), (stream, seen)
            assert sorted(seen) == sorted(blocked), stream


async def test_the_csv_for_a_stream(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        for stream, blocked in BLOCKED.items():
            link = _Html((await client.get(LIST, params={"stream": stream})).text).links
            exported = await client.get(link["Export CSV"])
            assert exported.status_code == 200, exported.text
            rows = list(csv.DictReader(io.StringIO(exported.text)))
            assert [row["email"] for row in rows] == sorted(blocked), stream
        alice = await client.get(CSV_URL, params={"stream": "transactional", "q": "alice"})
        assert list(csv.DictReader(io.StringIO(alice.text))) == []
        every = await client.get(CSV_URL)
        assert [row["email"] for row in csv.DictReader(io.StringIO(every.text))] == EVERYONE


# -- an unknown stream, and a policy without streams -----------------------------------

UNKNOWN = "<b>weekly</b>"  # escaped wherever the page quotes it


async def test_an_unknown_stream_is_a_400_saying_so(make_client: Any) -> None:
    async with _console(make_client, POLICY) as client:
        for path, params in (
            (LOOKUP, {"q": ALICE}),
            (LOOKUP, {"emails": ALICE}),
            (address_page(ALICE), {}),
            (LIST, {}),
        ):
            got = await client.get(path, params={**params, "stream": UNKNOWN})
            assert got.status_code == 400, path
            error = _error(got.text)
            assert "unknown stream" in error, path
            assert "&lt;b&gt;weekly&lt;/b&gt;" in error, path
            assert "<b>" not in got.text, path
            assert "marketing, newsletter, transactional" in error, path
            # the selector is still there, with no stream chosen
            select_id = "f-stream" if path == LIST else "stream"
            assert selector(got.text, select_id) == (EXPECTED_OPTIONS, None), path
        # nothing else: no verdict on the lookup, which keeps what was typed
        lookup = (await client.get(LOOKUP, params={"q": ALICE, "stream": "weekly"})).text
        assert '<section aria-labelledby="verdict">' not in lookup
        assert f'value="{ALICE}"' in lookup
        # the list shows no rows; the address page still shows its timeline
        assert _listed((await client.get(LIST, params={"stream": "weekly"})).text) == []
        assert "Timeline" in (await client.get(address_page(ALICE), params={"stream": "x"})).text
        refused = await client.get(CSV_URL, params={"stream": "weekly"})
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("text/plain")
        assert "unknown stream 'weekly'" in refused.text
        # an empty one is every stream
        assert (await client.get(LIST, params={"stream": ""})).status_code == 200


async def test_without_streams_the_pages_show_no_selector(make_client: Any) -> None:
    async with _console(make_client, NO_STREAMS) as client:
        for path, params in (
            (LOOKUP, {}),
            (LOOKUP, {"q": ALICE}),
            (LOOKUP, {"emails": ALICE}),
            (address_page(ALICE), {}),
            (LIST, {}),
        ):
            got = await client.get(path, params=params)
            assert got.status_code == 200, path
            assert 'name="stream"' not in got.text, path
            assert "every stream" not in got.text, path
            assert ">Stream<" not in got.text, path
        # and the causes read as they did: no stream named
        assert (
            "<strong>unsubscribe</strong> (smtp2go)" in (await client.get(address_page(ALICE))).text
        )
        # a stream in the query string: there is none to answer for
        for path in (LOOKUP, address_page(ALICE), LIST):
            got = await client.get(path, params={"q": ALICE, "stream": "newsletter"})
            assert got.status_code == 400, path
            assert "add [streams.NAME] tables" in _error(got.text), path
            assert 'name="stream"' not in got.text, path
        form = await client.get(LOOKUP)
        assert csrf_token(form.text)  # the pages' forms still carry their token


async def _verdict(client: Any, email: str, stream: str) -> bool:
    page = await client.get(address_page(email), params={"stream": stream})
    return _suppressed(_between(page.text, "stream:", "</p>"))


async def test_an_action_from_a_stream_view_may_be_for_that_stream_only(
    make_client: Any,
) -> None:
    async with _console(make_client, POLICY) as client:
        erin = "erin@example.org"
        view = f"{address_page(erin)}?stream=newsletter"
        shown = await client.get(view)
        assert 'name="for_stream" value="newsletter"' in shown.text  # the choice is offered
        assert 'name="for_stream"' not in (await client.get(address_page(erin))).text
        done = await post_form(
            client, view, f"{address_page(erin)}/suppress",
            {"note": "no more news, by phone", "for_stream": "newsletter"},
        )  # fmt: skip
        assert parse_qs(urlsplit(done.headers["location"]).query)["done"][0].startswith(
            "suppressed for the newsletter stream by ops"
        )
        assert await _verdict(client, erin, "newsletter")
        assert not await _verdict(client, erin, "transactional")
        # a release for the newsletter alone lifts alice's newsletter unsubscribe…
        alice = f"{address_page(ALICE)}?stream=newsletter"
        lifted = await post_form(
            client, alice, f"{address_page(ALICE)}/release",
            {"note": "resubscribed", "also": "unsubscribe", "for_stream": "newsletter"},
        )  # fmt: skip
        assert (
            "released for the newsletter stream"
            in parse_qs(urlsplit(lifted.headers["location"]).query)["done"][0]
        )
        assert not await _verdict(client, ALICE, "newsletter")
        # …never dave's, which names no stream
        dave = "dave@example.org"
        kept = await post_form(
            client, f"{address_page(dave)}?stream=newsletter", f"{address_page(dave)}/release",
            {"note": "asked", "also": "unsubscribe", "for_stream": "newsletter"},
        )  # fmt: skip
        assert parse_qs(urlsplit(kept.headers["location"]).query)["done"] == [
            "nothing released: the address has no cause of the newsletter stream alone"
        ]
        assert await _verdict(client, dave, "newsletter")
        refused = await post_form(
            client, view, f"{address_page(erin)}/suppress", {"note": "x", "for_stream": "weekly"}
        )
        assert (
            "nothing done: unknown stream"
            in parse_qs(urlsplit(refused.headers["location"]).query)["done"][0]
        )
