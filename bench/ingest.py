"""Ingest: accepted SMTP2GO webhooks/s and p99 under wrk, beside `hello` and `naive`;
and bounceledger on PostgreSQL, beside bounceledger on SQLite of the same round.

Each server is started fresh, warmed for a second, then loaded for the fixed duration;
after bounceledger stops, its ledger must hold every receipt wrk saw acknowledged.
On PostgreSQL (bench/pg.py: a fresh database per run, dropped afterwards) there are two
figures: one `bounceledger serve`, and two on one database (`x2`), each loaded by its
own wrk with half the connections and half the wrk threads, at the same time: their
webhooks/s are summed and the worse p99 is reported. Without a PostgreSQL server to use,
those rows are skipped (one line says why).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import random
import statistics
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import dbinfo, pg, profile
from bench.procs import HOST, Server, tool
from bench.report import Results, Row
from bench.service import AUTH, SECRET, bl_env, bounceledger, started
from bench.wrk import Load, require_wrk, run_wrk

SERVERS = ("hello", "naive", "bounceledger")
# bounceledger on PostgreSQL: name -> how many `bounceledger serve` share one database
PG_SERVERS = {"bounceledger-pg": 1, "bounceledger-pg x2": 2}
WARMUP_SECONDS = 1.0


@dataclass
class Options:
    seconds: float = 10.0
    connections: int = 32
    threads: int = 2
    rounds: int = 1
    profile: bool = False


@dataclass
class Runs:
    loads: dict[str, list[Load]] = field(default_factory=lambda: {name: [] for name in SERVERS})


def run(work: Path, opts: Options, results: Results) -> None:
    require_wrk()
    runs, checks = Runs(), Results()
    names = list(SERVERS)
    if not pg.skipped("ingest"):
        names += PG_SERVERS
        runs.loads |= {name: [] for name in PG_SERVERS}
    for round_ in range(opts.rounds):
        for name in names:
            label = f" (round {round_ + 1})" if opts.rounds > 1 else ""
            where = work / f"ingest-{round_}"
            if name in PG_SERVERS:
                load = _one_pg(name, where, opts, checks, label)
            else:
                load = _one(name, where, opts, checks, label)
            runs.loads[name].append(load)
    first = len(results.rows)
    _rows(runs, opts, results)
    _pg_rows(runs, opts, results)
    results.rows += checks.rows  # the receipt counts and sizes after the figures
    results.problems += checks.problems
    results.extra |= checks.extra
    commits = checks.extra.get("ingest_commits")
    if commits:
        results.rows[first].note += f"; bounceledger: {_show(commits[-1])}"


def _one(name: str, work: Path, opts: Options, results: Results, label: str) -> Load:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bounceledger.db"
    nonce = random.randrange(2**31)
    with started(name, work, db) as srv:
        wrk = functools.partial(
            run_wrk, srv.port, connections=opts.connections, threads=opts.threads, secret=SECRET
        )
        warm = wrk(seconds=WARMUP_SECONDS, nonce=nonce, log=work / f"wrk-{name}-warm.log")
        spy = None
        if opts.profile and name == "bounceledger":
            spy = profile.attach(srv.pid, opts.seconds, work / "profile-ingest")
        try:
            load = wrk(seconds=opts.seconds, nonce=nonce + 1, log=work / f"wrk-{name}.log")
        finally:
            if spy is not None:
                results.extra["ingest_profile"] = profile.finish(spy, results)
        commits = _commits(srv.port) if name == "bounceledger" else None
    _loaded(name, warm, load, work, results)
    if commits:
        results.extra.setdefault("ingest_commits", []).append(commits)
        print(f"  bounceledger group commits (warm-up + run): {_show(commits)}", flush=True)
    if name == "bounceledger":
        _verify(db, name, warm.ok + load.ok, opts, results, label)
    _tracebacks(name, [srv], results)
    return load


def _one_pg(name: str, work: Path, opts: Options, results: Results, label: str) -> Load:
    """PG_SERVERS[name] `bounceledger serve` on one fresh database, each loaded by its own
    wrk at the same time; the database is checked after they stop, then dropped."""
    work.mkdir(parents=True, exist_ok=True)
    count, tag = PG_SERVERS[name], name.replace(" ", "-")
    nonce = random.randrange(2**31)
    with pg.database() as url:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(bounceledger(url, work)) for _ in range(count)]
            warm = _together(servers, opts, WARMUP_SECONDS, nonce, work / f"wrk-{tag}-warm")
            load = _together(servers, opts, opts.seconds, nonce + 1, work / f"wrk-{tag}")
            commits = [_commits(srv.port) for srv in servers]
        _loaded(name, warm, load, work, results)
        for each in filter(None, commits):
            results.extra.setdefault("ingest_commits_pg", {}).setdefault(name, []).append(each)
            print(f"  {name} group commits (warm-up + run): {_show(each)}", flush=True)
        _verify(url, name, warm.ok + load.ok, opts, results, label)
    _tracebacks(name, servers, results)
    return load


def _together(
    servers: Sequence[Server], opts: Options, seconds: float, nonce: int, log: Path
) -> Load:
    """One wrk per server, all started at once for `seconds`, the connections and wrk
    threads shared out between them; their figures as one (`combined`). Nonces are
    `nonce`, `nonce + 2`, …: every request body differs from every other of the run."""
    count = len(servers)
    connections, threads = opts.connections // count, max(1, opts.threads // count)

    def load(index: int) -> Load:
        return run_wrk(
            servers[index].port,
            seconds=seconds,
            connections=connections,
            threads=threads,
            nonce=nonce + 2 * index,
            secret=SECRET,
            log=log.with_name(f"{log.name}-{index}.log"),
        )

    with ThreadPoolExecutor(max_workers=count) as pool:
        return combined(list(pool.map(load, range(count))))


def combined(loads: Sequence[Load]) -> Load:
    """Loads run at the same time against different servers, as one: requests and errors
    summed, the rate the sum of their rates (`seconds` is what gives it), each latency
    figure the worst of theirs (wrk's summaries cannot be merged into true percentiles)."""
    if len(loads) == 1:
        return loads[0]
    requests, rate = sum(x.requests for x in loads), sum(x.rps for x in loads)
    errors: dict[str, int] = {}
    for each in loads:
        for kind, number in each.socket_errors.items():
            errors[kind] = errors.get(kind, 0) + number
    return Load(
        requests=requests,
        seconds=requests / rate if rate else max(x.seconds for x in loads),
        non2xx=sum(x.non2xx for x in loads),
        socket_errors=errors,
        p50_ms=max(x.p50_ms for x in loads),
        p90_ms=max(x.p90_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        max_ms=max(x.max_ms for x in loads),
    )


def _loaded(name: str, warm: Load, load: Load, work: Path, results: Results) -> None:
    """Print the run's figures; any non-2xx or socket error is a problem."""
    print(
        f"  ingest {name}: {load.rps:,.0f} req/s, p99 {load.p99_ms:.2f} ms, "
        f"non-2xx {load.non2xx}, socket errors {load.socket_errors or 0}",
        flush=True,
    )
    for what, each in (("warm-up", warm), ("run", load)):
        if each.non2xx or each.socket_errors:
            results.problem(
                f"ingest {name} {what}: {each.non2xx} non-2xx of {each.requests}, "
                f"socket errors {each.socket_errors} (logs in {work})"
            )


def _tracebacks(name: str, servers: Sequence[Server], results: Results) -> None:
    for srv in servers:
        if "Traceback" in srv.log.read_text(errors="replace"):
            results.problem(f"ingest {name}: a traceback in the server log {srv.log}")


def _verify(
    db: Path | str, name: str, acked: int, opts: Options, results: Results, label: str
) -> None:
    """After a graceful stop: receipts >= every 2xx wrk counted (lost = acknowledged but
    missing); a few more are fine, requests in flight when wrk stopped (it never saw them).
    `db` is the SQLite file, or the PostgreSQL database's URL."""
    stored = pg.receipts(db) if isinstance(db, str) else dbinfo.receipts(db)
    in_flight = 2 * opts.connections
    shown = "" if name == "bounceledger" else f", {name}"
    results.extra.setdefault("ingest_receipts", []).append(
        {
            "server": name,
            "receipts": stored,
            "acknowledged_2xx": acked,
            "extra_in_flight": stored - acked,
        }
    )
    if stored < acked:
        results.problem(
            f"ingest {name}: LOST RECEIPTS: wrk counted {acked} 2xx, ledger holds {stored}"
        )
    elif stored - acked > in_flight:
        results.problem(
            f"ingest {name}: ledger holds {stored} receipts, {stored - acked} more than the "
            f"{acked} 2xx wrk counted (more than {in_flight} in flight)"
        )
    verify = subprocess.run(
        [tool("bounceledger"), "verify", "--db", str(db)],
        capture_output=True,
        text=True,
        env=bl_env(db),
        timeout=300,
        check=False,
    )
    if verify.returncode != 0:
        results.problem(
            f"ingest {name}: `bounceledger verify` failed: {verify.stdout}{verify.stderr}"
        )
    results.add(
        Row(
            "ingest",
            "receipts stored vs 2xx counted" + shown + label,
            stored,
            "receipts",
            acked,
            "2xx by wrk",
            note=f"{stored - acked} extra = in flight when wrk stopped",
        )
    )
    if isinstance(db, str):  # the size on PostgreSQL is kept, not compared
        got = pg.size(db)
        results.extra.setdefault("ingest_db_size_pg", {}).setdefault(name, []).append(got.__dict__)
        return
    size = dbinfo.size(db)
    results.extra.setdefault("ingest_db_size", []).append(size.__dict__)
    results.add(
        Row(
            "size",
            "db after ingest / body bytes" + label,
            size.file_bytes / 1e6,
            "MB",
            size.body_bytes / 1e6,
            "bodies",
            ("<=", 1.6, "ratio"),
        )
    )


def _commits(port: int) -> dict[str, float]:
    """Group-commit figures from the server's /metrics (empty if they cannot be read)."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        conn.request("GET", "/metrics", headers=AUTH)
        text = conn.getresponse().read().decode()
        conn.close()
    except (OSError, http.client.HTTPException):
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("bounceledger_") and "{" not in name:
            with contextlib.suppress(ValueError):
                values[name.removeprefix("bounceledger_")] = float(value)
    count = values.get("commit_seconds_count", 0)
    appends = values.get("append_seconds_count", 0)
    if not count or not appends:
        return {}
    return {
        "commits": count,
        "mean_batch": values.get("commit_batch_size_sum", 0) / count,
        "mean_commit_ms": 1000 * values.get("commit_seconds_sum", 0) / count,
        "mean_append_wait_ms": 1000 * values.get("append_seconds_sum", 0) / appends,
        "projector_lag_receipts": values.get("projector_lag_receipts", -1),
    }


def _show(commits: dict[str, float]) -> str:
    return (
        f"{commits['commits']:,.0f} commits, {commits['mean_batch']:.1f} receipts each, "
        f"{commits['mean_commit_ms']:.1f} ms per commit, append wait "
        f"{commits['mean_append_wait_ms']:.1f} ms, projector lag at the end "
        f"{commits['projector_lag_receipts']:,.0f} receipts"
    )


def _rows(runs: Runs, opts: Options, results: Results) -> None:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(load, attr) for load in runs.loads[name]))

    bl_rps, bl_p99 = med("bounceledger", "rps"), med("bounceledger", "p99_ms")
    note = f"{opts.connections} connections, {opts.threads} wrk threads, {opts.seconds:g} s" + (
        f", median of {opts.rounds} rounds" if opts.rounds > 1 else ""
    )
    if opts.profile:
        note += "; PROFILED (py-spy attached): not comparable"
    results.add(
        Row(
            "ingest",
            "webhooks/s",
            bl_rps,
            "req/s",
            med("hello", "rps"),
            "hello",
            (">=", 0.85, "ratio"),
            note=note,
        )
    )
    results.add(
        Row(
            "ingest",
            "webhooks/s",
            bl_rps,
            "req/s",
            med("naive", "rps"),
            "naive",
            (">=", 1.2, "ratio"),
        )
    )
    results.add(
        Row(
            "ingest",
            "p99 latency",
            bl_p99,
            "ms",
            med("hello", "p99_ms"),
            "hello",
            ("<=", 10, "value"),
        )
    )
    results.add(Row("ingest", "p99 latency", bl_p99, "ms", med("naive", "p99_ms"), "naive"))
    results.add(
        Row(
            "ingest",
            "p50 latency",
            med("bounceledger", "p50_ms"),
            "ms",
            med("hello", "p50_ms"),
            "hello",
        )
    )
    results.extra["ingest"] = {
        name: [load.__dict__ | {"rps": load.rps} for load in loads]
        for name, loads in runs.loads.items()
    }


def _pg_rows(runs: Runs, opts: Options, results: Results) -> None:
    """Webhooks/s and p99 of each PostgreSQL server, beside bounceledger on SQLite: the
    medians of the rounds (each round ran all of them in turn)."""
    sqlite = runs.loads["bounceledger"]
    for name, count in PG_SERVERS.items():
        loads = runs.loads.get(name)
        if not loads:
            continue
        how = (
            "one `bounceledger serve` on a fresh database"
            if count == 1
            else f"{count} `bounceledger serve` on one fresh database, each under its own wrk "
            f"(-t{max(1, opts.threads // count)} -c{opts.connections // count}) at the same "
            "time: req/s summed, the worse p99"
        )
        for figure, attr, unit in (("webhooks/s", "rps", "req/s"), ("p99 latency", "p99_ms", "ms")):
            value = statistics.median(getattr(load, attr) for load in loads)
            base = statistics.median(getattr(load, attr) for load in sqlite)
            note = how if attr == "rps" else ""
            if attr == "rps" and len(loads) > 1:
                ratios = [
                    getattr(a, attr) / getattr(b, attr) for a, b in zip(loads, sqlite, strict=True)
                ]
                note += "; ratio per round: " + ", ".join(f"{r:.2f}" for r in ratios)
            results.add(
                Row(
                    "ingest",
                    f"{figure}, {name}",
                    float(value),
                    unit,
                    float(base),
                    "bounceledger SQLite",
                    note=note,
                )
            )
