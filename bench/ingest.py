"""Ingest: accepted SMTP2GO webhooks/s and p99 under wrk, beside `hello` and `naive`.

Each server is started fresh, warmed for a second, then loaded for the fixed duration;
after bounceledger stops, its ledger must hold every receipt wrk saw acknowledged.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import random
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import dbinfo, profile
from bench.procs import HOST, tool
from bench.report import Results, Row
from bench.service import AUTH, SECRET, bl_env, started
from bench.wrk import Load, require_wrk, run_wrk

SERVERS = ("hello", "naive", "bounceledger")
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
    for round_ in range(opts.rounds):
        for name in SERVERS:
            label = f" (round {round_ + 1})" if opts.rounds > 1 else ""
            runs.loads[name].append(_one(name, work / f"ingest-{round_}", opts, checks, label))
    first = len(results.rows)
    _rows(runs, opts, results)
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
    if commits:
        results.extra.setdefault("ingest_commits", []).append(commits)
        print(f"  bounceledger group commits (warm-up + run): {_show(commits)}", flush=True)
    if name == "bounceledger":
        _verify(db, warm, load, opts, results, label)
    if "Traceback" in srv.log.read_text(errors="replace"):
        results.problem(f"ingest {name}: a traceback in the server log {srv.log}")
    return load


def _verify(db: Path, warm: Load, load: Load, opts: Options, results: Results, label: str) -> None:
    """After a graceful stop: receipts >= every 2xx wrk counted (lost = acknowledged but
    missing); a few more are fine, requests in flight when wrk stopped (it never saw them)."""
    stored, acked = dbinfo.receipts(db), warm.ok + load.ok
    in_flight = 2 * opts.connections
    results.extra.setdefault("ingest_receipts", []).append(
        {"receipts": stored, "acknowledged_2xx": acked, "extra_in_flight": stored - acked}
    )
    if stored < acked:
        results.problem(f"ingest: LOST RECEIPTS: wrk counted {acked} 2xx, ledger holds {stored}")
    elif stored - acked > in_flight:
        results.problem(
            f"ingest: ledger holds {stored} receipts, {stored - acked} more than the "
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
        results.problem(f"ingest: `bounceledger verify` failed: {verify.stdout}{verify.stderr}")
    size = dbinfo.size(db)
    results.extra.setdefault("ingest_db_size", []).append(size.__dict__)
    results.add(
        Row(
            "ingest",
            "receipts stored vs 2xx counted" + label,
            stored,
            "receipts",
            acked,
            "2xx by wrk",
            note=f"{stored - acked} extra = in flight when wrk stopped",
        )
    )
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
