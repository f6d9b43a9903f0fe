"""Figures over a built ledger, through HTTP against a running server: server start,
recipient timeline, campaign check; and the database size. The baseline of each HTTP
figure is `hello` answering the same request (the framework and client floor)."""

from __future__ import annotations

import http.client
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import dbinfo, payloads, pg
from bench.procs import HOST, BenchError, Server
from bench.report import Results, Row
from bench.service import AUTH, WEBHOOK, baseline, bounceledger


def size(
    got: dbinfo.Size, results: Results, ledger: dbinfo.Size | None = None, kind: str = ""
) -> None:
    """db + WAL after a checkpoint, over the bodies stored (the ledger with its projection,
    measured after its first rebuild); with `ledger`, the same file before its first
    projection (the ledger alone) in a row of its own. `kind` names the receipts
    ("mixed-provider"; "" for the generated SMTP2GO ones)."""
    for figure, measured in (("db", got), ("ledger alone", ledger)):
        if measured is not None:
            free = f"; free {measured.free_bytes / 1e6:.0f} MB"
            _size_row(results, figure, kind, measured.file_bytes, measured, "by table", free)
    results.extra["size" + ("-" + kind if kind else "")] = got.__dict__


def pg_size(got: pg.Size, results: Results, kind: str = "") -> None:
    """The PostgreSQL database's size (tables, indexes, TOAST) over the bodies stored."""
    figure, shown = "PostgreSQL db", "by table with its indexes"
    _size_row(results, figure, kind, got.database_bytes, got, shown, "")


def _size_row(
    results: Results,
    figure: str,
    kind: str,
    total: int,
    got: dbinfo.Size | pg.Size,
    shown: str,
    more: str,
) -> None:
    """One size row: `total` bytes against the bodies' raw bytes, the six largest tables."""
    named = f"{got.receipts:,} {kind + ' ' if kind else ''}receipts"
    top = ", ".join(f"{name} {b / 1e6:.0f} MB" for name, b in list(got.by_table.items())[:6])
    results.add(
        Row(
            "size",
            f"{figure} / body bytes, {named}",
            total / 1e6,
            "MB",
            got.body_bytes / 1e6,
            "bodies",
            ("<=", dbinfo.TARGET_RATIO, "ratio"),
            note=f"{shown}: {top}{more}",
        )
    )


class Client:
    """One keep-alive HTTP/1.1 connection; times each request until the body is read."""

    def __init__(self, srv: Server) -> None:
        self.conn = http.client.HTTPConnection(HOST, srv.port, timeout=60)
        self.name = srv.name

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        headers = dict(AUTH)
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return time.perf_counter() - started, response.status, data

    def close(self) -> None:
        self.conn.close()


def _timed(
    client: Client,
    calls: Sequence[tuple[str, str, bytes | None]],
    warm: int,
    check: Callable[[int, bytes], str | None],
    results: Results,
) -> list[float]:
    """Milliseconds per call after `warm` warm-up calls; a failed check is a problem."""
    times = []
    for index, (method, path, body) in enumerate(calls):
        seconds, status, data = client.call(method, path, body)
        wrong = check(status, data)
        if wrong:
            results.problem(f"{client.name} {method} {path[:60]}: {wrong}")
            raise BenchError(f"{client.name} answered wrongly: {wrong}")
        if index >= warm:
            times.append(seconds * 1000)
    return times


def _ok(status: int, data: bytes) -> str | None:
    return None if status == 200 else f"status {status}: {data[:200]!r}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start(db: Path, work: Path, results: Results, repeats: int = 3) -> None:
    """Spawn to first 2xx from /healthz (bounceledger) or the POST route (hello)."""
    mine, floor = [], []
    for _ in range(repeats):
        with bounceledger(db, work) as srv:
            mine.append(srv.ready_seconds)
        with baseline("hello", work) as srv:
            floor.append(srv.ready_seconds)
    print(
        f"  start: bounceledger {statistics.median(mine):.2f} s, "
        f"hello {statistics.median(floor):.2f} s",
        flush=True,
    )
    results.add(
        Row(
            "start",
            "ready (healthz) on the built ledger",
            statistics.median(mine),
            "s",
            statistics.median(floor),
            "hello start",
            ("<=", 1.0, "value"),
            note=f"median of {repeats}; all: {', '.join(f'{x:.2f}' for x in mine)}",
        )
    )


def timeline(
    db: Path, events: int, work: Path, results: Results, calls: int = 200, warm: int = 10
) -> None:
    """Random recipients of the generated population (about 10 events each, or more)."""
    rng, population = random.Random(7), payloads.population(events)
    emails = [payloads.recipient(rng.randrange(population)) for _ in range(calls + warm)]
    requests = [("GET", f"/v1/audit/recipients/{email}/events", None) for email in emails]
    sizes: list[int] = []

    def check(status: int, data: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {data[:200]!r}"
        sizes.append(len(json.loads(data)))
        return None

    with bounceledger(db, work) as srv:
        client = Client(srv)
        try:
            mine = _timed(client, requests, warm, check, results)
        finally:
            client.close()
    floor = hello([b""] * len(requests), warm, work, results)
    p50, p99 = statistics.median(mine), _pct(mine, 0.99)
    print(
        f"  timeline: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"({statistics.mean(sizes):.1f} events per recipient)",
        flush=True,
    )
    note = f"{calls} random recipients, {statistics.mean(sizes):.1f} events each on average"
    results.add(
        Row(
            "timeline",
            "p50",
            p50,
            "ms",
            statistics.median(floor),
            "hello",
            ("<=", 5, "value"),
            note=note,
        )
    )
    results.add(Row("timeline", "p99", p99, "ms", _pct(floor, 0.99), "hello"))
    if sizes.count(0) > len(sizes) // 100:  # a few may have no events by chance, not this many
        results.problem(f"timeline: {sizes.count(0)} of {len(sizes)} recipients had no events")


def hello(bodies: Sequence[bytes], warm: int, work: Path, results: Results) -> list[float]:
    """The floor: `hello` answering a POST of each body, same client, same connection use."""
    with baseline("hello", work) as srv:
        client = Client(srv)
        try:
            return _timed(client, [("POST", WEBHOOK, body) for body in bodies], warm, _ok, results)
        finally:
            client.close()
