"""Ingest: accepted SMTP2GO webhooks/s, p99 and server CPU per webhook under wrk, beside
`hello` and `naive`; bounceledger's projection lag and its projection at shutdown; and
bounceledger on PostgreSQL, beside bounceledger on SQLite of the same round.

Each server is started fresh, warmed for a second, then loaded for the fixed duration.
The server's CPU (user + system of its processes, bench.procs.cpu_seconds) is read just
before and just after the measured run and divided by the 2xx wrk counted in it. The
projection lag comes from bounceledger's /metrics histogram
`bounceledger_projection_delay_seconds`, read after the warm-up and after the measured
run: the run's delays are the difference. After bounceledger stops (SIGTERM), its ledger
must hold every receipt wrk saw acknowledged, and its projection's checkpoint must be
the last receipt (it drains before it exits).
On PostgreSQL (bench/pg.py: a fresh database per run, dropped afterwards) there are two
figures: one `bounceledger serve`, and two on one database (`x2`), each loaded by its
own wrk with half the connections and half the wrk threads, at the same time: their
webhooks/s are summed, the worse p99 is reported, their CPU and their delays summed.
The PostgreSQL server's own CPU is not counted. Without a PostgreSQL server to use,
those rows are skipped (one line says why).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import random
import re
import signal
import statistics
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import dbinfo, pg, profile
from bench.procs import HOST, Server, cpu_seconds, tool
from bench.report import Results, Row
from bench.service import AUTH, SECRET, bl_env, bounceledger, started
from bench.wrk import Load, require_wrk, run_wrk

SERVERS = ("hello", "naive", "bounceledger")
# bounceledger on PostgreSQL: name -> how many `bounceledger serve` share one database
PG_SERVERS = {"bounceledger-pg": 1, "bounceledger-pg x2": 2}
WARMUP_SECONDS = 1.0
DELAY = "bounceledger_projection_delay_seconds"  # the projection-lag histogram of /metrics
LAG_QUANTILE = 0.99
LAG_TARGET = 1.0  # seconds, p99
HELLO_SHARE = 0.6  # webhooks/s >= 0.6x hello's; naive below that is limited by its commits


@dataclass
class Options:
    seconds: float = 10.0
    connections: int = 32
    threads: int = 2
    rounds: int = 1
    profile: bool = False


Buckets = dict[float, float]  # a histogram's cumulative counts by upper bound (+Inf: inf)


@dataclass(frozen=True)
class Measured:
    """One measured run of a server (or of the servers of one PostgreSQL figure)."""

    load: Load
    cpu_seconds: float  # user + system of the server's processes during the measured run
    delays: Buckets | None = None  # projection delays of the run; None: not exposed

    @property
    def cpu_us(self) -> float | None:
        """Server CPU microseconds per 2xx (None without any)."""
        return 1e6 * self.cpu_seconds / self.load.ok if self.load.ok > 0 else None


@dataclass
class Runs:
    done: dict[str, list[Measured]] = field(default_factory=lambda: {name: [] for name in SERVERS})


def run(work: Path, opts: Options, results: Results) -> None:
    require_wrk()
    runs, checks = Runs(), Results()
    names = list(SERVERS)
    if not pg.skipped("ingest"):
        names += PG_SERVERS
        runs.done |= {name: [] for name in PG_SERVERS}
    for round_ in range(opts.rounds):
        for name in names:
            label = f" (round {round_ + 1})" if opts.rounds > 1 else ""
            where = work / f"ingest-{round_}"
            if name in PG_SERVERS:
                measured = _one_pg(name, where, opts, checks, label)
            else:
                measured = _one(name, where, opts, checks, label)
            runs.done[name].append(measured)
    first = len(results.rows)
    _rows(runs, opts, results)
    _pg_rows(runs, opts, results)
    results.rows += checks.rows  # the receipt counts and sizes after the figures
    results.problems += checks.problems
    results.extra |= checks.extra
    commits = checks.extra.get("ingest_commits")
    if commits:
        results.rows[first].note += f"; bounceledger: {_show(commits[-1])}"


def _one(name: str, work: Path, opts: Options, results: Results, label: str) -> Measured:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bounceledger.db"
    for suffix in ("", "-wal", "-shm"):  # a --workdir used before: start from an empty ledger
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    nonce = random.randrange(2**31)
    ours = name == "bounceledger"
    with started(name, work, db) as srv:
        wrk = functools.partial(
            run_wrk, srv.port, connections=opts.connections, threads=opts.threads, secret=SECRET
        )
        warm = wrk(seconds=WARMUP_SECONDS, nonce=nonce, log=work / f"wrk-{name}-warm.log")
        before = scrape(srv.port) if ours else None
        spy = None
        if opts.profile and ours:
            spy = profile.attach(srv.pid, opts.seconds, work / "profile-ingest")
        try:
            cpu = cpu_seconds([srv.pid])
            load = wrk(seconds=opts.seconds, nonce=nonce + 1, log=work / f"wrk-{name}.log")
            cpu = cpu_seconds([srv.pid]) - cpu
        finally:
            if spy is not None:
                results.extra["ingest_profile"] = profile.finish(spy, results)
        after = scrape(srv.port) if ours else None
    measured = Measured(load, cpu, _run_delays([before], [after]) if ours else None)
    _loaded(name, warm, measured, work, results, lag=ours)
    commits = commit_figures(after) if after else {}
    if commits:
        results.extra.setdefault("ingest_commits", []).append(commits)
        print(f"  bounceledger group commits (warm-up + run): {_show(commits)}", flush=True)
    if ours:
        _drained(db, name, [srv], results, label)
        _verify(db, name, warm.ok + load.ok, opts, results, label)
    _tracebacks(name, [srv], results)
    return measured


def _one_pg(name: str, work: Path, opts: Options, results: Results, label: str) -> Measured:
    """PG_SERVERS[name] `bounceledger serve` on one fresh database, each loaded by its own
    wrk at the same time; the database is checked after they stop, then dropped."""
    work.mkdir(parents=True, exist_ok=True)
    count, tag = PG_SERVERS[name], name.replace(" ", "-")
    nonce = random.randrange(2**31)
    with pg.database() as url:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(bounceledger(url, work)) for _ in range(count)]
            pids = [srv.pid for srv in servers]
            warm = _together(servers, opts, WARMUP_SECONDS, nonce, work / f"wrk-{tag}-warm")
            before = [scrape(srv.port) for srv in servers]
            cpu = cpu_seconds(pids)
            load = _together(servers, opts, opts.seconds, nonce + 1, work / f"wrk-{tag}")
            cpu = cpu_seconds(pids) - cpu
            after = [scrape(srv.port) for srv in servers]
        measured = Measured(load, cpu, _run_delays(before, after))
        _loaded(name, warm, measured, work, results, lag=True)
        for each in filter(None, (commit_figures(text) for text in after if text)):
            results.extra.setdefault("ingest_commits_pg", {}).setdefault(name, []).append(each)
            print(f"  {name} group commits (warm-up + run): {_show(each)}", flush=True)
        _drained(url, name, servers, results, label)
        _verify(url, name, warm.ok + load.ok, opts, results, label)
    _tracebacks(name, servers, results)
    return measured


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


def _loaded(
    name: str, warm: Load, measured: Measured, work: Path, results: Results, *, lag: bool
) -> None:
    """Print the run's figures; any non-2xx or socket error is a problem."""
    load, cpu = measured.load, measured.cpu_us
    print(
        f"  ingest {name}: {load.rps:,.0f} req/s, p99 {load.p99_ms:.2f} ms, server CPU "
        + (f"{cpu:.0f} µs/webhook" if cpu is not None else "- (no 2xx)")
        + f", non-2xx {load.non2xx}, socket errors {load.socket_errors or 0}",
        flush=True,
    )
    if lag:
        print(f"  {name} projection lag: {_lag_text(measured.delays)}", flush=True)
    for what, each in (("warm-up", warm), ("run", load)):
        if each.non2xx or each.socket_errors:
            results.problem(
                f"ingest {name} {what}: {each.non2xx} non-2xx of {each.requests}, "
                f"socket errors {each.socket_errors} (logs in {work})"
            )


def _lag_text(delays: Buckets | None) -> str:
    if delays is None:
        return "metric not exposed"
    folded = delays.get(float("inf"), 0.0)
    bound = quantile_bound(delays, LAG_QUANTILE)
    if bound is None:
        return "no receipt folded during the run"
    return f"p99 {_bound_text(bound, delays)} ({folded:,.0f} receipts folded during the run)"


def _bound_text(bound: float, delays: Buckets) -> str:
    if bound == float("inf"):
        return f"> {_finite(bound, delays):g} s"
    return f"<= {bound:g} s"


def _finite(bound: float, delays: Buckets) -> float:
    """`bound`, or for +Inf the largest finite bound (what a row can show and store)."""
    if bound != float("inf"):
        return bound
    return max((b for b in delays if b != bound), default=0.0)


def _drained(
    db: Path | str, name: str, servers: Sequence[Server], results: Results, label: str
) -> None:
    """After the servers stopped: the projection's checkpoint against the last receipt
    (equal when the projector drained before exit). `db`: the SQLite file, or the URL."""
    checkpoint, last = pg.projected(db) if isinstance(db, str) else dbinfo.projected(db)
    stops = [_stopped(srv) for srv in servers]
    print(
        f"  {name} at shutdown ({', '.join(stops)}): projected up to receipt "
        f"{checkpoint}, last receipt {last}",
        flush=True,
    )
    for srv in servers:
        if srv.stopped_by == signal.SIGKILL:
            results.problem(
                f"ingest {name}: the server did not exit within 10 s of SIGTERM and was "
                f"killed (log {srv.log})"
            )
    if checkpoint != last:
        results.problem(
            f"ingest {name}: not drained at shutdown: the projection's checkpoint is "
            f"{checkpoint}, the last receipt {last} ({', '.join(stops)})"
        )
    shown = "" if name == "bounceledger" else f", {name}"
    results.add(
        Row(
            "ingest",
            "projected at shutdown" + shown + label,
            float(checkpoint or 0),
            "seq",
            None if last is None else float(last),
            "last receipt",
            ("==", 1.0, "ratio"),
            note=(
                "projection_meta's checkpoint against MAX(seq) of receipts, read after a "
                f"graceful stop ({', '.join(stops)}); target: equal"
            ),
        )
    )


def _stopped(srv: Server) -> str:
    if srv.stopped_by is None:
        return f"exited by itself with {srv.proc.returncode}"
    return f"stopped by {signal.Signals(srv.stopped_by).name}"


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
            ("<=", dbinfo.TARGET_RATIO, "ratio"),
        )
    )


def scrape(port: int) -> str | None:
    """The server's /metrics (Prometheus text), or None if it cannot be read."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            conn.request("GET", "/metrics", headers=AUTH)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, UnicodeDecodeError):
        return None
    return text if response.status == 200 else None


def commit_figures(text: str) -> dict[str, float]:
    """Group-commit figures from a /metrics text (empty if they are not in it)."""
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


_LE = re.compile(r'(?:^|,)\s*le="([^"]*)"')


def histogram(text: str, name: str) -> Buckets | None:
    """The cumulative bucket counts of histogram `name` in a Prometheus text, by upper
    bound (`+Inf` as inf), summed over any other labels; None when it is not there.

    >>> histogram('x_bucket{le="0.5"} 3.0\\nx_bucket{le="+Inf"} 4.0\\nx_count 4.0', "x")
    {0.5: 3.0, inf: 4.0}
    """
    prefix = name + "_bucket{"
    buckets: Buckets = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, rest = line[len(prefix) :].partition("}")
        found = _LE.search(labels)
        fields = rest.split()
        if found is None or not fields:
            continue
        with contextlib.suppress(ValueError):
            bound, count = float(found.group(1)), float(fields[0])
            buckets[bound] = buckets.get(bound, 0.0) + count
    return buckets or None


def quantile_bound(buckets: Buckets, q: float) -> float | None:
    """The smallest bucket bound whose cumulative count holds at least `q` of all the
    observations: the q-quantile is at most it (inf: beyond the largest finite bound).
    None without observations."""
    total = max(buckets.values(), default=0.0)
    if total <= 0:
        return None
    return next(bound for bound in sorted(buckets) if buckets[bound] >= q * total)


def _run_delays(before: Sequence[str | None], after: Sequence[str | None]) -> Buckets | None:
    """The projection delays observed between the two readings, summed over the servers
    (each its own /metrics: read after the warm-up, then after the run); None when no
    server exposes the histogram."""
    total: Buckets = {}
    for first, last in zip(before, after, strict=True):
        ended = histogram(last, DELAY) if last else None
        if ended is None:
            continue
        began = (histogram(first, DELAY) if first else None) or {}
        for bound, count in ended.items():
            total[bound] = total.get(bound, 0.0) + count - began.get(bound, 0.0)
    return total or None


def _show(commits: dict[str, float]) -> str:
    return (
        f"{commits['commits']:,.0f} commits, {commits['mean_batch']:.1f} receipts each, "
        f"{commits['mean_commit_ms']:.1f} ms per commit, append wait "
        f"{commits['mean_append_wait_ms']:.1f} ms, projector lag at the end "
        f"{commits['projector_lag_receipts']:,.0f} receipts"
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [x for x in values if x is not None]
    return float(statistics.median(present)) if present else None


def _pooled(done: Sequence[Measured]) -> Buckets | None:
    """The projection delays of every measured run of one server, as one histogram."""
    total: Buckets = {}
    for each in done:
        for bound, count in (each.delays or {}).items():
            total[bound] = total.get(bound, 0.0) + count
    return total or None


def _rows(runs: Runs, opts: Options, results: Results) -> None:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(x.load, attr) for x in runs.done[name]))

    def cpu(name: str) -> float | None:
        return _median([x.cpu_us for x in runs.done[name]])

    bl_rps, bl_p99 = med("bounceledger", "rps"), med("bounceledger", "p99_ms")
    hello_rps, naive_rps = med("hello", "rps"), med("naive", "rps")
    rounds = f", median of {opts.rounds} rounds" if opts.rounds > 1 else ""
    note = f"{opts.connections} connections, {opts.threads} wrk threads, {opts.seconds:g} s"
    note += rounds + "; bounceledger logs one access-log line per request, the baselines none"
    if opts.profile:
        note += "; PROFILED (py-spy attached): not comparable"
    results.add(
        Row(
            "ingest",
            "webhooks/s",
            bl_rps,
            "req/s",
            hello_rps,
            "hello",
            (">=", HELLO_SHARE, "ratio"),
            note=note,
        )
    )
    # naive limited by its one commit per request (below 0.6x hello): beat it by 1.2x;
    # otherwise (commits are cheap here) stay within 0.8x of it
    share = naive_rps / hello_rps if hello_rps else 0.0
    limited = share < HELLO_SHARE
    results.add(
        Row(
            "ingest",
            "webhooks/s",
            bl_rps,
            "req/s",
            naive_rps,
            "naive",
            (">=", 1.2 if limited else 0.8, "ratio"),
            note=(
                f"naive ran at {share:.2f}x hello's rate in this run: "
                + (
                    f"below {HELLO_SHARE:g}x, so its commits limit it: target >= 1.2x"
                    if limited
                    else f"not below {HELLO_SHARE:g}x (commits do not limit it): target >= 0.8x"
                )
            ),
        )
    )
    results.add(
        Row(
            "ingest",
            "p99 latency",
            bl_p99,
            "ms",
            med("naive", "p99_ms"),
            "naive",
            ("<=", 2.0, "ratio"),
        )
    )
    results.add(Row("ingest", "p99 latency", bl_p99, "ms", med("hello", "p99_ms"), "hello"))
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
    bl_cpu = cpu("bounceledger")
    if bl_cpu is not None:
        cpu_note = (
            "user + system CPU of the server's processes (each with its descendants and "
            "their reaped children, from /proc) over the measured run, per 2xx wrk counted" + rounds
        )
        targets: dict[str, tuple[str, float, str] | None] = {
            "hello": ("<=", 2.0, "ratio"),
            "naive": None,
        }
        for base, target in targets.items():
            results.add(
                Row(
                    "ingest",
                    "server CPU per webhook",
                    bl_cpu,
                    "µs",
                    cpu(base),
                    base,
                    target,
                    note=cpu_note if base == "hello" else "",
                )
            )
    delays = _pooled(runs.done["bounceledger"])
    bound = quantile_bound(delays, LAG_QUANTILE) if delays else None
    if delays is not None and bound is not None:
        folded = delays[max(delays)]
        results.add(
            Row(
                "ingest",
                "projection lag p99",
                _finite(bound, delays),
                "s",
                target=("<=", LAG_TARGET, "value"),
                note=(
                    f"p99 {_bound_text(bound, delays)}: the smallest bucket bound of {DELAY} "
                    f"holding >= 99 % of the {folded:,.0f} receipts folded during the "
                    "measured run"
                    + (f"s of the {opts.rounds} rounds" if opts.rounds > 1 else "")
                    + " (the warm-up's subtracted; arrival to the projector's commit; read "
                    "once right after wrk ended, so receipts not yet folded then are not in it)"
                ),
            )
        )
    results.extra["ingest"] = {
        name: [
            x.load.__dict__
            | {"rps": x.load.rps, "cpu_seconds": x.cpu_seconds, "cpu_us_per_2xx": x.cpu_us}
            | ({"projection_delay_buckets": _json_buckets(x.delays)} if x.delays else {})
            for x in done
        ]
        for name, done in runs.done.items()
    }


def _json_buckets(buckets: Buckets) -> dict[str, float]:
    return {("+Inf" if bound == float("inf") else f"{bound:g}"): n for bound, n in buckets.items()}


def _pg_rows(runs: Runs, opts: Options, results: Results) -> None:
    """Webhooks/s, p99, server CPU per webhook and projection lag of each PostgreSQL
    server, beside bounceledger on SQLite: the medians of the rounds (each round ran all
    of them in turn); the lag of all their runs pooled."""
    sqlite = runs.done["bounceledger"]
    for name, count in PG_SERVERS.items():
        done = runs.done.get(name)
        if not done:
            continue
        how = (
            "one `bounceledger serve` on a fresh database"
            if count == 1
            else f"{count} `bounceledger serve` on one fresh database, each under its own wrk "
            f"(-t{max(1, opts.threads // count)} -c{opts.connections // count}) at the same "
            "time: req/s summed, the worse p99"
        )
        for figure, attr, unit in (("webhooks/s", "rps", "req/s"), ("p99 latency", "p99_ms", "ms")):
            value = statistics.median(getattr(x.load, attr) for x in done)
            base = statistics.median(getattr(x.load, attr) for x in sqlite)
            note = how if attr == "rps" else ""
            if attr == "rps" and len(done) > 1:
                ratios = [
                    getattr(a.load, attr) / getattr(b.load, attr)
                    for a, b in zip(done, sqlite, strict=True)
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
        cpu = _median([x.cpu_us for x in done])
        if cpu is not None:
            results.add(
                Row(
                    "ingest",
                    f"server CPU per webhook, {name}",
                    cpu,
                    "µs",
                    _median([x.cpu_us for x in sqlite]),
                    "bounceledger SQLite",
                    note=(
                        ("both servers' CPU over both servers' 2xx; " if count > 1 else "")
                        + "the `bounceledger serve` processes only: the PostgreSQL server's "
                        "own CPU (its backends, WAL writer, …) is not included"
                    ),
                )
            )
        delays, base_delays = _pooled(done), _pooled(sqlite)
        bound = quantile_bound(delays, LAG_QUANTILE) if delays else None
        if delays is None or bound is None:
            continue
        base_bound = quantile_bound(base_delays, LAG_QUANTILE) if base_delays else None
        results.add(
            Row(
                "ingest",
                f"projection lag p99, {name}",
                _finite(bound, delays),
                "s",
                None if base_bound is None or not base_delays else _finite(base_bound, base_delays),
                "bounceledger SQLite" if base_bound is not None else "",
                note=f"p99 {_bound_text(bound, delays)}, measured as on SQLite"
                + (" (one of the two holds the projector lease and folds)" if count > 1 else ""),
            )
        )
