"""Bad input, fuzzed: every provider decoder, and every webhook door with the right secret.

- decode(body, content_type, headers) returns a list of dicts or raises DecodeFailed —
  nothing else; reading its facts, deriving them from a receipt, storing, mapping and
  folding them never fails (a failure there stalls or breaks the projection for all).
- the HTTP door never answers 5xx, a refused request never appends, and afterwards the
  projector is caught up and the suppression list still answers.
- memory stays flat over a few hundred nasty requests.

Bodies: random bytes, fixtures mutated (numbers where strings belong, objects where
scalars belong, keys dropped), truncated JSON, deeply nested JSON, huge arrays, invalid
UTF-8, form bodies with repeated keys; wrong, odd and missing content types.
BOUNCELEDGER_FUZZ_EXAMPLES sets the number of examples per test (default keeps this
file to seconds); raise it for longer runs.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from api.app import create_app
from api.settings import load_settings
from ledger import Receipt
from projections import DEFAULT_POLICY, Mapper
from projections.errors import DecodeFailed
from projections.facts import Fact, decode_fact, derive, encode_fact
from projections.providers import PROVIDERS
from projections.recipients import format_time
from projections.state import decode_state, encode_state
from tests.conftest import AUTH, FIXTURES, SECRET, every_provider_environment
from tests.logs import kept_records
from tests.providers.signing import (
    POSTMARK_PASSWORD,
    basic,
    mailgun_signature,
    mailtura_headers,
    sendgrid_headers,
    sns_headers,
    sns_notification,
    svix_headers,
)

EXAMPLES = int(os.environ.get("BOUNCELEDGER_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
MAX_BODY = 1024 * 1024
INT64 = 2**63

# -- what the bodies are made of ----------------------------------------------------


def _fixture_bodies() -> dict[str, list[bytes]]:
    bodies: dict[str, list[bytes]] = {}
    for folder in sorted(FIXTURES.iterdir()):
        if folder.is_dir():
            bodies[folder.name] = [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]
    return bodies


FIXTURE_BODIES = _fixture_bodies()
ALL_BODIES = [body for bodies in FIXTURE_BODIES.values() for body in bodies]


def _documents(body: bytes) -> list[Any]:
    try:
        return [json.loads(body)]
    except (ValueError, RecursionError):
        return []


FIXTURE_DOCS = {
    name: [doc for body in bodies for doc in _documents(body)]
    for name, bodies in FIXTURE_BODIES.items()
}
ALL_DOCS = [doc for docs in FIXTURE_DOCS.values() for doc in docs]


def _keys(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            _keys(value, found)
    elif isinstance(node, list):
        for item in node:
            _keys(item, found)
    elif isinstance(node, str) and node.startswith("{"):
        for doc in _documents(node.encode()):
            _keys(doc, found)


_VOCAB: set[str] = {"event", "rcpt", "recipients", "bounce", "time", "id", "email_id", "type"}
for _doc in ALL_DOCS:
    _keys(_doc, _VOCAB)
VOCAB = sorted(_VOCAB)

# Values that have broken parsers: times at and past the ends of what datetime holds,
# epoch numbers in seconds and milliseconds, addresses in odd dress, control characters.
SPECIAL_TEXT = [
    "",
    " ",
    "bounce",
    "hard",
    "soft",
    "delivered",
    "spam",
    "Permanent",
    "Transient",
    "Bounce",
    "Notification",
    "2026-05-04T10:15:02Z",
    "2026-05-04T10:15:02.481Z",
    "1777900000",
    "1777900000123",
    "99999999999",
    "9999999999999999",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "nobody@example.org",
    "<Nobody@Example.org>",
    "a@b",
    "\x00",
    "\u00b2",
    "1e400",
    "NaN",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(SPECIAL_TEXT),
)
keys = st.one_of(st.sampled_from(VOCAB), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=8),
    max_leaves=40,
)


def _mutate(draw: st.DrawFn, node: Any, depth: int = 0) -> Any:
    """Replace, drop or descend into one part of `node`."""
    if depth < 6 and isinstance(node, dict) and node and draw(st.integers(0, 4)):
        key = draw(st.sampled_from(sorted(node)))
        action = draw(st.sampled_from(["replace", "drop", "descend", "descend"]))
        if action == "drop":
            del node[key]
        elif action == "replace":
            node[key] = draw(json_values)
        else:
            node[key] = _mutate(draw, node[key], depth + 1)
        return node
    if depth < 6 and isinstance(node, list) and node and draw(st.integers(0, 4)):
        index = draw(st.integers(0, len(node) - 1))
        node[index] = _mutate(draw, node[index], depth + 1)
        return node
    if isinstance(node, str) and node.startswith("{") and draw(st.booleans()):
        inner = _documents(node.encode())  # SNS carries the SES event as a JSON string
        if inner:
            return json.dumps(_mutate(draw, inner[0], depth + 1))
    return draw(json_values)


@st.composite
def mutated_documents(draw: st.DrawFn, docs: list[Any]) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 4))):
        document = _mutate(draw, document)
    return document


def _dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    body = draw(st.sampled_from(ALL_BODIES))
    return body[: draw(st.integers(0, max(0, len(body) - 1)))]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(ALL_BODIES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        body[at:at] = draw(st.binary(min_size=1, max_size=3).filter(lambda b: b[0] >= 0x80))
    return bytes(body)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """Nested JSON, up to and past the parser's depth limit (about 1,000 levels)."""
    depth = draw(st.sampled_from([2, 50, 500, 999, 1_000, 10_000, 100_000]))
    opener = draw(st.sampled_from([b"[", b'{"a":', b'{"event":', b'{"Message":']))
    closer = b"]" if opener == b"[" else b"}"
    core = draw(st.sampled_from([b"1", b'"x"', b"{}", b"[]", b"null"]))
    closed = draw(st.booleans())
    return opener * depth + core + (closer * depth if closed else b"")


@st.composite
def huge_arrays(draw: st.DrawFn) -> bytes:
    item = draw(
        st.sampled_from([b"1", b"{}", b"null", b'"x"', *(_dumps(doc) for doc in ALL_DOCS[:6])])
    )
    count = min(draw(st.sampled_from([0, 1, 1000, 20_000, 200_000])), MAX_BODY // len(item))
    return b"[" + b",".join([item] * count) + b"]"


@st.composite
def form_bodies(draw: st.DrawFn) -> bytes:
    names = st.one_of(
        st.sampled_from(["event", "rcpt", "recipients", "recipients[]", "bounce", "id", "time"]),
        st.sampled_from(VOCAB),
        st.text(max_size=10),
    )
    values = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=30), st.integers().map(str))
    pairs: list[tuple[str, str]] = draw(st.lists(st.tuples(names, values), max_size=12))
    repeats: int = draw(st.integers(0, len(pairs)))
    pairs += pairs[:repeats]  # repeated keys
    if draw(st.integers(0, 5)) == 0:
        return b"&".join(f"{k}={v}".encode("utf-8", "surrogatepass") for k, v in pairs)
    return urlencode(pairs).encode("utf-8", "surrogatepass")


def bodies_for(provider: str | None) -> st.SearchStrategy[bytes]:
    own = FIXTURE_DOCS.get(provider or "", []) or ALL_DOCS
    return st.one_of(
        mutated_documents(own).map(_dumps),
        mutated_documents(own).map(lambda doc: _dumps([doc, doc])),
        mutated_documents(ALL_DOCS).map(_dumps),
        json_values.map(_dumps),
        st.sampled_from(ALL_BODIES),
        st.binary(max_size=300),
        truncated(),
        invalid_utf8(),
        nested(),
        huge_arrays(),
        form_bodies(),
    )


content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain; charset=UTF-8",
            "",
            "multipart/form-data; boundary=xyz",
            "application/json; charset=iso-8859-1",
            "application/xml",
            "*/*",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
)
HEADER_NAMES = [
    "user-agent",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-amz-sns-message-type",
    "x-amz-sns-rawdelivery",
    "x-pm-webhook-trace-id",
    "x-mailtura-signature",
    "x-twilio-email-event-webhook-timestamp",
]
header_maps = st.dictionaries(
    st.sampled_from(HEADER_NAMES),
    st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=40)),
    max_size=4,
)

# -- decoders -----------------------------------------------------------------------


MAPPER = Mapper(DEFAULT_POLICY)


def check_facts_usable(facts: list[Fact]) -> None:
    """What the projection does with facts: store, read back, show, map, fold."""
    for fact in facts:
        assert -INT64 <= fact.at < INT64, f"time {fact.at} does not fit a SQLite INTEGER"
        format_time(fact.at)  # status and timelines show it
        assert decode_fact(encode_fact(fact)) == fact
        MAPPER.map_fact(fact)
    by_recipient: dict[str, list[Fact]] = {}
    for fact in facts:
        by_recipient.setdefault(fact.recipient, []).append(fact)
    for email, own in by_recipient.items():
        state = MAPPER.fold_facts(email, sorted(own, key=lambda fact: fact.position))
        format_time(state.since)
        format_time(state.position[0])
        assert decode_state(encode_state(state)) == state


def check_decoder(name: str, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    module = PROVIDERS[name]
    try:
        raws = module.decode(body, content_type, headers)
    except DecodeFailed:
        raws = None
    if raws is not None:
        assert isinstance(raws, list)
        assert all(isinstance(raw, dict) for raw in raws)
        for raw in raws:
            for seen in module.facts(raw):
                assert isinstance(seen.raw_kind, str)
                assert isinstance(seen.event_id, str)
                assert seen.recipient is None or isinstance(seen.recipient, str)
                assert seen.at is None or isinstance(seen.at, int)
    receipt = Receipt(
        seq=7,
        source=name,
        received_at=1_777_900_000_000_000,
        content_type=content_type,
        body=body,
        headers=headers,
        peer="198.51.100.7",
        body_sha256=b"\0" * 32,
        chain_hash=b"\0" * 32,
    )
    with kept_records("bounceledger.facts", logging.ERROR) as errors:
        keyed = derive(receipt)
    assert not errors, f"derive swallowed a decoder failure: {errors[0].exc_info}"
    if raws is None:
        assert keyed == []
    check_facts_usable([item.fact for item in keyed])


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_decoder_returns_events_or_refuses(name: str) -> None:
    @FUZZ
    @given(body=bodies_for(name), content_type=content_types, headers=header_maps)
    def check(body: bytes, content_type: str, headers: dict[str, str]) -> None:
        check_decoder(name, body, content_type, headers)

    check()


@pytest.mark.parametrize(
    "text",
    ["9999999999999999", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"],
)
@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_an_event_time_out_of_range_does_not_break_the_projection(name: str, text: str) -> None:
    """Each fixture with every time field set to a time at the edge of the calendar."""
    for document in FIXTURE_DOCS[name]:
        check_decoder(name, _dumps(_retimed(document, text)), "application/json", {})


def test_edge_times_through_the_door_leave_the_projection_working(tmp_path: Path) -> None:
    """One delivery with a time at the calendar's edge must not stall the projector (a
    time that does not fit a SQLite INTEGER did) nor break reads (one past year 9999
    UTC did): later deliveries are still folded, and every read answers."""
    edges = ["9999999999999999", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
    settings_ = load_settings(every_provider_environment(tmp_path))
    with TestClient(app=create_app(settings_, DEFAULT_POLICY)) as client:
        for n, when in enumerate([*edges, "2026-05-04T10:15:02Z"]):
            event = {"event": "bounce", "bounce": "hard", "id": f"e{n}", "time": when}
            response = client.post(
                "/v1/webhooks/smtp2go/events",
                content=_dumps({**event, "rcpt": f"edge{n}@example.org"}),
                params={"token": SECRET},
            )
            assert response.status_code == 200, response.text
        wait_caught_up(client)
        for n in range(len(edges) + 1):
            for route in (
                f"/v1/suppressions/edge{n}@example.org",
                f"/v1/suppressions/edge{n}@example.org/explain",
                f"/v1/audit/recipients/edge{n}@example.org/events",
            ):
                answer = client.get(route, headers=AUTH)
                assert answer.status_code == 200, (route, answer.text)
            status = client.get(f"/v1/suppressions/edge{n}@example.org", headers=AUTH).json()
            assert status["suppressed"] is True
        listed = client.get("/v1/suppressions", headers=AUTH)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["items"]) == len(edges) + 1


TIME_KEYS = {"time", "timestamp", "Timestamp", "created_at", "occurred_at", "ReceivedAt"}
TIME_KEYS |= {"BouncedAt", "DeliveredAt", "ChangedAt", "event-timestamp", "date"}


def _retimed(node: Any, text: str) -> Any:
    if isinstance(node, dict):
        return {k: text if k in TIME_KEYS else _retimed(v, text) for k, v in node.items()}
    if isinstance(node, list):
        return [_retimed(item, text) for item in node]
    if isinstance(node, str) and node.startswith("{") and _documents(node.encode()):
        return json.dumps(_retimed(_documents(node.encode())[0], text))
    return node


# -- the HTTP door ------------------------------------------------------------------


Choose = Callable[[list[Any]], Any]  # picks one of the options (the first: most likely)
Prepared = tuple[bytes, dict[str, str], dict[str, str]]  # body, headers, query


@dataclass
class Door:
    """How to send a fuzzed body through one provider's door with the right secret."""

    name: str
    prepare: Callable[[bytes, Choose], Prepared]


_counter = iter(range(10**9))


def _fresh_timestamp(body: bytes) -> bytes:
    documents = _documents(body)
    if documents and isinstance(documents[0], dict):
        documents[0]["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return _dumps(documents[0])
    return body


def _prepare_smtp2go(body: bytes, choose: Choose) -> Prepared:
    way = choose(["token", "bearer", "basic"])
    if way == "token":
        return body, {}, {"token": SECRET}
    if way == "bearer":
        return body, {"Authorization": f"Bearer {SECRET}"}, {}
    return body, {"Authorization": basic("smtp2go", SECRET)["Authorization"]}, {}


def _prepare_mailgun(body: bytes, choose: Choose) -> Prepared:
    """The body as `event-data` under a valid signature (or, sometimes, the bare bytes)."""
    documents = _documents(body)
    if choose(["signed", "signed", "bare"]) == "bare":
        return body, {}, {}
    if not documents and body.lstrip()[:1] in (b"[", b"{"):  # bad JSON inside a good wrapper
        signature = _dumps(mailgun_signature())
        return b'{"signature":' + signature + b',"event-data":' + body + b"}", {}, {}
    event_data: Any = documents[0] if documents else body.decode("utf-8", "replace")
    if isinstance(event_data, dict) and choose([False, True]):
        event_data = event_data.get("event-data", event_data)
    return _dumps({"signature": mailgun_signature(), "event-data": event_data}), {}, {}


def _prepare_ses(body: bytes, choose: Choose) -> Prepared:
    """The body as the Message of a signed SNS notification (or, sometimes, bare)."""
    if choose(["signed", "signed", "signed", "bare"]) == "bare":
        return body, {}, {}
    envelope = sns_notification(body.decode("utf-8", "replace"), message_id=f"f{next(_counter)}")
    return _dumps(envelope), sns_headers(envelope), {}


def _prepare_mailtura(body: bytes, choose: Choose) -> Prepared:
    fresh = _fresh_timestamp(body)
    return fresh, mailtura_headers(fresh), {}


def _prepare_postmark(body: bytes, choose: Choose) -> Prepared:
    return body, {"Authorization": basic("pm", POSTMARK_PASSWORD)["Authorization"]}, {}


def _prepare_resend(body: bytes, choose: Choose) -> Prepared:
    return body, svix_headers(body, f"msg_fuzz{next(_counter)}"), {}


def _prepare_sendgrid(body: bytes, choose: Choose) -> Prepared:
    return body, sendgrid_headers(body), {}


DOORS = {
    "smtp2go": Door("smtp2go", _prepare_smtp2go),
    "postmark": Door("postmark", _prepare_postmark),
    "resend": Door("resend", _prepare_resend),
    "sendgrid": Door("sendgrid", _prepare_sendgrid),
    "mailtura": Door("mailtura", _prepare_mailtura),
    "mailgun": Door("mailgun", _prepare_mailgun),
    "ses": Door("ses", _prepare_ses),
}


def receipt_count(client: TestClient[Any]) -> int:
    response = client.get("/healthz", headers=AUTH)
    assert response.status_code == 200, response.text
    return int(response.json()["receipts"])


def wait_caught_up(client: TestClient[Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        health = client.get("/healthz", headers=AUTH).json()
        ready = client.get("/readyz", headers=AUTH)
        if health["projected"] >= health["receipts"] and ready.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"projection not caught up and ready: {health} {ready.text}")
        time.sleep(0.02)


@pytest.mark.parametrize("name", sorted(DOORS))
def test_the_door_never_fails_and_never_appends_what_it_refuses(tmp_path: Path, name: str) -> None:
    door = DOORS[name]
    path = f"/v1/webhooks/{name}/events"
    outcomes: dict[int, int] = {}
    settings_ = load_settings(every_provider_environment(tmp_path))
    with TestClient(app=create_app(settings_, DEFAULT_POLICY)) as client:

        @FUZZ
        @given(
            body=bodies_for(name),
            content_type=st.one_of(st.none(), content_types),
            data=st.data(),
        )
        def check(body: bytes, content_type: str | None, data: Any) -> None:
            sent, headers, params = door.prepare(body, lambda o: data.draw(st.sampled_from(o)))
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            if content_type is not None:
                headers["content-type"] = content_type
            before = receipt_count(client)
            response = client.post(path, content=sent, headers=headers, params=params)
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            assert response.status_code < 500, (response.status_code, response.text, sent[:300])
            after = receipt_count(client)
            if response.status_code == 200:
                assert after == before + (0 if response.json()["duplicate"] else 1)
            else:
                assert after == before, (response.status_code, response.text)

        check()
        # the projector swallowed all of it and every read still answers
        wait_caught_up(client)
        listed = client.get("/v1/suppressions", headers=AUTH)
        assert listed.status_code == 200, listed.text
        page = client.get("/v1/audit/receipts", headers=AUTH, params={"limit": 1000})
        assert page.status_code == 200, page.text
        for item in page.json()["items"]:
            one = client.get(f"/v1/audit/receipts/{item['seq']}", headers=AUTH)
            assert one.status_code == 200, one.text
        for item in listed.json()["items"][:20]:
            email = item["email"]
            for route in (
                f"/v1/suppressions/{email}",
                f"/v1/suppressions/{email}/explain",
                f"/v1/audit/recipients/{email}/events",
            ):
                answer = client.get(route, headers=AUTH)
                assert answer.status_code == 200, (route, answer.text)
    assert sum(outcomes.values()) >= min(EXAMPLES, 10)


# -- deeply nested JSON -------------------------------------------------------------

# Past the JSON parser's depth limit (about 1,000 levels), which raises RecursionError.
DEEP = [
    b"[" * 1_000 + b"]" * 1_000,
    b'{"event":' * 5_000 + b'"bounce"' + b"}" * 5_000,
    b"[" * 100_000,
]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_deeply_nested_json_is_refused_by_every_decoder(name: str) -> None:
    for body in DEEP:
        check_decoder(name, body, "application/json", {})


@pytest.mark.parametrize("name", sorted(DOORS))
def test_deeply_nested_json_is_never_a_500_at_any_door(tmp_path: Path, name: str) -> None:
    """Refused (400, or 403 where the signature cannot be read) and not appended — or,
    for SES, an authentic notification whose Message is not an SES event: accepted with
    no events, like SNS's plain-text test messages."""
    settings_ = load_settings(every_provider_environment(tmp_path))
    answers = []
    with TestClient(app=create_app(settings_, DEFAULT_POLICY)) as client:
        for body in DEEP:
            sent, headers, params = DOORS[name].prepare(body, lambda options: options[0])
            response = client.post(
                f"/v1/webhooks/{name}/events",
                content=sent,
                headers={**headers, "content-type": "application/json"},
                params=params,
            )
            answers.append((response.status_code, response.text[:200]))
        stored = receipt_count(client)
    assert all(status in (200, 400, 403) for status, _ in answers), answers
    accepted = [json.loads(text) for status, text in answers if status == 200]
    assert all(answer["events"] == 0 for answer in accepted), answers
    assert stored == len(accepted)


@pytest.mark.parametrize(
    ("method", "path", "wrap"),
    [
        ("POST", "/v1/suppressions/check", (b'{"emails":', b"}")),
        ("PUT", "/v1/suppressions/a@example.org", (b'{"note":', b"}")),
        ("DELETE", "/v1/suppressions/a@example.org", (b'{"note":', b"}")),
    ],
)
def test_deeply_nested_json_to_the_api_is_a_400(
    tmp_path: Path, method: str, path: str, wrap: tuple[bytes, bytes]
) -> None:
    settings_ = load_settings(every_provider_environment(tmp_path))
    with TestClient(app=create_app(settings_, DEFAULT_POLICY)) as client:
        for body in DEEP:
            response = client.request(
                method,
                path,
                content=wrap[0] + body + wrap[1],
                headers={**AUTH, "content-type": "application/json"},
            )
            assert response.status_code == 400, (method, path, response.text)
        assert receipt_count(client) == 0


# -- memory -------------------------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


REFUSED = (400, 413)
NASTY: list[tuple[bytes, str | None, tuple[int, ...]]] = [
    (b"[" * 500 + b"]" * 500, "application/json", REFUSED),
    (b'{"event":' * 200 + b"1" + b"}" * 200, "application/json", REFUSED),
    (
        b"[" + b",".join([b'{"event":"open","rcpt":"a@b.c","id":"big"}'] * 5_000) + b"]",
        "application/json",
        (200,),  # one delivery of 5,000 events, then byte-identical redeliveries
    ),
    (b"[" + b",".join([b"1"] * 100_000) + b"]", "application/json", REFUSED),
    (b"x" * (MAX_BODY + 1), "application/json", REFUSED),
    (b'{"event":"bounce","rcpt":"\xff\xfe@example.org"}', "application/json", REFUSED),
    (b"rcpt=&rcpt=a%40b.c&rcpt[]=x&%ZZ=1&event=", None, REFUSED),
    (b"\x00\x01\x02" * 1000, "application/octet-stream", REFUSED),
    (b'{"event": 5, "rcpt": 7, "time": [1], "id": {"x": 1}}', "text/plain", REFUSED),
    (b'{"event":"bounce","rcpt":"a@b.c"', "application/json", REFUSED),
    (b"", None, REFUSED),
]


def test_memory_stays_flat_over_hundreds_of_bad_requests(tmp_path: Path) -> None:
    settings_ = load_settings(every_provider_environment(tmp_path))
    rounds = max(20, EXAMPLES // 3)
    with TestClient(app=create_app(settings_, DEFAULT_POLICY)) as client:

        def one_round(n: int) -> None:
            for body, content_type, expected in NASTY:
                headers = {"content-type": content_type} if content_type else {}
                response = client.post(
                    "/v1/webhooks/smtp2go/events",
                    content=body,
                    headers=headers,
                    params={"token": SECRET},
                )
                assert response.status_code in expected, (response.text, body[:100])
            accepted = client.post(
                "/v1/webhooks/smtp2go/events",
                content=_dumps({"event": "bounce", "id": f"m{n}", "rcpt": f"m{n % 7}@x.org"}),
                params={"token": SECRET},
            )
            assert accepted.status_code == 200, accepted.text

        for n in range(3):  # warm-up: caches, pools, the first commits
            one_round(n)
        gc.collect()
        rss_before = rss_bytes()
        tracemalloc.start()
        try:
            traced_before = tracemalloc.get_traced_memory()[0]
            for n in range(3, 3 + rounds):
                one_round(n)
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - traced_before
        finally:
            tracemalloc.stop()
        grown = rss_bytes() - rss_before
        assert receipt_count(client) == 1 + 3 + rounds
    requests = rounds * (len(NASTY) + 1)
    assert retained < 8 * 1024 * 1024, f"{retained} bytes retained over {requests} requests"
    assert grown < 64 * 1024 * 1024, f"RSS grew {grown} bytes over {requests} requests"
