"""Feed: how fast the change feed is read, and how soon a change reaches a subscriber.

Read throughput. A ledger's projection holds `entries` suppressed addresses and a feed of
as many entries (written with the projection's own code: `views.write_states` and
`feed.write`, over an empty ledger). One client pages through `GET /v1/changes` (1,000 a
page) from the start, then reads the same entries off the stream (`/v1/changes/stream`);
the baseline, in the same run on the same server, pages through the suppression list
(`GET /v1/suppressions`, 1,000 a page) — the full-list resynchronisation a feed spares.
Every page is checked (every entry once, in order).

The rebuild's swap. A rebuild diffs the live suppressions against the rebuilt ones inside
its swap's transaction (feed.rebuilt), while webhooks wait for the write lock: timed on
`entries` live rows against a rebuilt table that releases 2 % and changes the reason of
2 %, beside a plain read of the live table in the same transaction.

Latency. With an endpoint configured (a receiver in this process, on loopback) and a
stream client connected, `webhooks` hard bounces of new addresses are posted one by one at
`rate` a second; for each, the time from the door's 2xx to the signed POST arriving at the
receiver (push: the deliverer's wake-up, one request per entry) and to the event arriving
on the stream (the baseline: the projector's fold and the feed watch's poll, which the
push path waits on too). Each POST's Standard Webhooks signature is checked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import random
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec

from bench.procs import HOST, BenchError, Server
from bench.reads import _pct
from bench.report import Results, Row
from bench.service import AUTH, SECRET, WEBHOOK, bounceledger
from ledger.sqlite import SQLiteStore
from projections import Projector, feed, views
from projections.state import Cause, RecipientState

CHUNK = 20_000
ENDPOINT_KEY = "bench-endpoint-" + secrets.token_hex(16)


def address(k: int) -> str:
    return f"feed{k:07d}@example{k % 7}.org"


async def build(path: Path, entries: int) -> None:
    """`entries` suppressed addresses, and one feed entry for each."""
    store = await SQLiteStore.open(path)
    try:
        projector = Projector(store)
        await projector.start()
        for start in range(0, entries, CHUNK):
            states, written = [], []
            for k in range(start, min(entries, start + CHUNK)):
                at = 1_746_000_000_000_000 + k * 1_000_000
                state = RecipientState(
                    email=address(k),
                    causes=(Cause("hard_bounce", at, k + 1),),
                    since=at,
                    position=(at, k + 1, 0),
                    events=1,
                )
                states.append(state)
                change = feed.Changed(
                    before=feed.NOBODY, after=feed.verdict(state), cause="event",
                    policy_hash=projector.policy_hash, receipt=k + 1, source="smtp2go",
                    event_id=f"ev-{k}",
                )  # fmt: skip
                written.append((change, address(k), None))
            async with store.writing() as tx:
                await views.write_states(tx, states)
                await feed.write(tx, written)  # type: ignore[arg-type]
    finally:
        await store.close()


async def swap_diff(path: Path, rows: int) -> tuple[float, float, int]:
    """Seconds of feed.rebuilt over `rows` live suppressions, seconds of a full read of
    them, and how many entries the diff wrote (on a ledger of its own)."""
    rng = random.Random(17)
    store = await SQLiteStore.open(path)
    try:
        await Projector(store).start()
        async with store.writing() as tx:
            for statement in views.state_schema(tx.types, "_next"):
                await tx.execute(statement)
        for start in range(0, rows, CHUNK):
            live, rebuilt = [], []
            for k in range(start, min(rows, start + CHUNK)):
                at = 1_746_000_000_000_000 + k
                state = RecipientState(
                    email=address(k), causes=(Cause("hard_bounce", at, k + 1),), since=at,
                    position=(at, k + 1, 0), events=1,
                )  # fmt: skip
                live.append(state)
                draw = rng.random()
                if draw < 0.02:
                    continue  # released under the new policy
                if draw < 0.04:
                    changed = Cause("soft_bounce_threshold", at, k + 1)
                    state = msgspec.structs.replace(state, causes=(changed,))
                rebuilt.append(state)
            async with store.writing() as tx:
                await views.write_states(tx, live)
                await views.write_states(tx, rebuilt, suffix="_next")
        async with store.writing() as tx:
            started = time.perf_counter()
            await tx.fetch("SELECT email, reason, reasons FROM suppressions")
            scanned = time.perf_counter() - started
            started = time.perf_counter()
            _, changed_count = await feed.rebuilt(
                tx, "_next", previous="before", policy_hash="after", listed_reasons=True
            )
            diffed = time.perf_counter() - started
        return diffed, scanned, changed_count
    finally:
        await store.close()


def _get(conn: http.client.HTTPConnection, path: str) -> dict[str, Any]:
    conn.request("GET", path, headers=AUTH)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise BenchError(f"GET {path}: {response.status} {data[:200]!r}")
    found: dict[str, Any] = json.loads(data)
    return found


def read_feed(srv: Server, entries: int) -> float:
    """Seconds to page through every entry of the feed, checked."""
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=120)
    started, cursor, seen = time.perf_counter(), "0", 0
    try:
        while True:
            page = _get(conn, f"/v1/changes?after={cursor}&limit=1000")
            for entry in page["data"]:
                seen += 1
                if entry["id"] != f"chg_{seen}":
                    raise BenchError(f"feed page out of order: {entry['id']} after {seen - 1}")
            cursor = page["next"]
            if not page["has_more"]:
                break
    finally:
        conn.close()
    if seen != entries:
        raise BenchError(f"the feed held {seen} entries, not {entries}")
    return time.perf_counter() - started


def read_list(srv: Server, entries: int) -> float:
    """Seconds to page through the whole suppression list, checked."""
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=120)
    started, after, seen = time.perf_counter(), "", 0
    try:
        while True:
            page = _get(conn, "/v1/suppressions?limit=1000" + (f"&after={after}" if after else ""))
            seen += len(page["items"])
            if not page["next"]:
                break
            after = page["next"]
    finally:
        conn.close()
    if seen != entries:
        raise BenchError(f"the list held {seen} addresses, not {entries}")
    return time.perf_counter() - started


def _events(conn: http.client.HTTPConnection, path: str) -> Iterator[dict[str, str]]:
    """Server-Sent Events off a GET (comments skipped)."""
    conn.request("GET", path, headers=AUTH)
    response = conn.getresponse()
    if response.status != 200:
        raise BenchError(f"GET {path}: {response.status}")
    fields: dict[str, str] = {}
    while line := response.readline():
        text = line.decode().rstrip("\n")
        if text == "":
            if "data" in fields:
                yield fields
            fields = {}
        elif not text.startswith(":"):
            name, _, value = text.partition(":")
            fields[name] = value.removeprefix(" ")


def read_stream(srv: Server, entries: int) -> float:
    """Seconds to receive every entry off the stream, from the start."""
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=120)
    started, seen = time.perf_counter(), 0
    try:
        for _ in _events(conn, "/v1/changes/stream?after=0"):
            seen += 1
            if seen == entries:
                break
    finally:
        conn.close()
    return time.perf_counter() - started


class Receiver:
    """Takes the pushed POSTs on loopback, checks each signature, notes when it came."""

    def __init__(self) -> None:
        self.secret = b""
        self.arrived: dict[str, float] = {}
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                now = time.perf_counter()
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}."
                mac = hmac.new(receiver.secret, signed.encode() + body, hashlib.sha256)
                expected = "v1," + base64.b64encode(mac.digest()).decode()
                if not hmac.compare_digest(expected, self.headers["webhook-signature"]):
                    receiver.bad += 1
                message = json.loads(body)
                email = message.get("data", {}).get("email")
                if email:
                    receiver.arrived.setdefault(email, now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def latency(srv: Server, webhooks: int, rate: float) -> tuple[list[float], list[float], int]:
    """Milliseconds from each webhook's 2xx to its push, and to its stream event."""
    receiver = Receiver()
    conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
    try:
        body = json.dumps({"url": f"http://{HOST}:{receiver.port}/hook", "from": "now"})
        sent = {**AUTH, "content-type": "application/json"}
        conn.request("POST", "/v1/endpoints", body=body, headers=sent)
        answer = conn.getresponse()
        created = json.loads(answer.read())
        if answer.status != 201:
            raise BenchError(f"adding the endpoint: {answer.status} {created}")
        receiver.secret = base64.b64decode(created["secret"].removeprefix("whsec_"))
        streamed: dict[str, float] = {}
        stream_conn = http.client.HTTPConnection(HOST, srv.port, timeout=120)

        def listen() -> None:
            for event in _events(stream_conn, "/v1/changes/stream"):
                email = json.loads(event["data"]).get("email")
                if email:
                    streamed.setdefault(email, time.perf_counter())
                if len(streamed) >= webhooks:
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(0.5)  # connected, at the head
        acked: dict[str, float] = {}
        for n in range(webhooks):
            email = f"push{n:05d}-{secrets.token_hex(3)}@example.net"
            event = {"event": "bounce", "bounce": "hard", "id": f"push-{email}", "rcpt": email}
            conn.request(
                "POST", f"{WEBHOOK}?token={SECRET}", body=json.dumps(event),
                headers={"content-type": "application/json"},
            )  # fmt: skip
            reply = conn.getresponse()
            reply.read()
            acked[email] = time.perf_counter()
            if reply.status != 200:
                raise BenchError(f"webhook answered {reply.status}")
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - acked[email])))
        deadline = time.monotonic() + 30
        while (len(receiver.arrived) < webhooks or len(streamed) < webhooks) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        missing = webhooks - len(receiver.arrived)
        if missing or len(streamed) < webhooks:
            raise BenchError(f"{missing} pushes and {webhooks - len(streamed)} events missing")
        pushed = [(receiver.arrived[e] - t) * 1000 for e, t in acked.items()]
        events = [(streamed[e] - t) * 1000 for e, t in acked.items()]
        stream_conn.close()
        return pushed, events, receiver.bad
    finally:
        conn.close()
        receiver.close()


def run(work: Path, results: Results, entries: int, webhooks: int, rate: float) -> None:
    db = work / "feed.db"
    db.unlink(missing_ok=True)
    asyncio.run(build(db, entries))
    section = f"feed ({entries:,} entries; {webhooks} webhooks at {rate:g}/s)"
    with bounceledger(db, work, env={"BOUNCELEDGER_ENDPOINT_KEY": ENDPOINT_KEY}) as srv:
        listed = read_list(srv, entries)
        paged = read_feed(srv, entries)
        streamed = read_stream(srv, entries)
        pushed, events, bad = latency(srv, webhooks, rate)
    diffed, scanned, changed = asyncio.run(swap_diff(work / "swap.db", entries))
    if bad:
        results.problem(f"{bad} pushes carried a signature that did not verify")
    list_rate = entries / listed
    results.add(
        Row(section, "feed read, GET /v1/changes pages of 1,000", entries / paged, "entries/s",
            list_rate, "the list, GET /v1/suppressions pages of 1,000")
    )  # fmt: skip
    results.add(
        Row(section, "feed read, the SSE stream from the start", entries / streamed, "entries/s",
            list_rate, "the list, GET /v1/suppressions pages of 1,000")
    )  # fmt: skip
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        results.add(
            Row(section, f"push latency {name}, 2xx to the signed POST received",
                _pct(pushed, q), "ms", _pct(events, q), "the SSE event received")
        )  # fmt: skip
    results.add(
        Row(section, f"rebuild swap: the feed's diff of {entries:,} rows ({changed:,} changed)",
            diffed * 1000, "ms", scanned * 1000, "reading the live table in the same transaction")
    )  # fmt: skip
    results.extra["feed"] = {
        "entries": entries,
        "list_seconds": listed,
        "feed_seconds": paged,
        "stream_seconds": streamed,
        "push_ms_mean": statistics.fmean(pushed),
        "stream_ms_mean": statistics.fmean(events),
    }
