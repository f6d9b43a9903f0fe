"""Rebuild: `bounceledger rebuild` on a generated ledger, beside `scan` (read + decode);
then the same ledger on PostgreSQL, beside SQLite's rebuilds of the same run.

All run as children, so each one's peak RSS is its own (wait4). The rebuild's wall time
includes the interpreter start, what an operator waits for; the CLI's start alone is
measured too (`bounceledger --version`), shown in the notes.

A rebuild under a policy other than the ledger's active one is a policy change: the CLI
refuses it without `--note`, and records it in the ledger (one receipt of source
`policy`, appended after the rebuild has read), so each change adds one receipt.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import dbinfo, gen, pg, profile, reads
from bench.procs import PYTHON, BenchError, Timed, run_timed, tool
from bench.report import Results, Row
from bench.service import bl_env

HERE = Path(__file__).resolve().parent
POLICY_CHANGE = HERE / "policy_change.toml"
POLICY_DEFAULT = HERE / "policy_default.toml"  # the built-in defaults, as a file
POLICIES = {"warm": POLICY_CHANGE, "back": POLICY_DEFAULT}
NOTE = "bench: policy change"  # the --note every policy change of the bench is recorded with
KINDS = {
    "cold": "cold: ledger never projected, derives the fact index",
    "warm": "warm: fact index current, under bench/policy_change.toml (a policy change)",
}
# The targets (issue 11): events/s at the sizes they are stated for (a generated ledger
# has one event per receipt, so the cold one's receipts/s is its events/s); peak RSS for
# every rebuild; and the peak at 5,000,000 against the one at 1,000,000 (flat).
RATE_TARGETS = {"cold": (60_000, (1_000_000,)), "warm": (500_000, (1_000_000, 5_000_000))}
RSS_LIMIT_MB = 250.0
RSS_FLAT = 1.25  # peak RSS at 5,000,000 / at 1,000,000, at most


@dataclass(frozen=True)
class Rebuilt:
    events: int
    seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Ledger:
    """What `run` measured of one ledger: its cold and warm rebuilds, and its size after
    the first (before later rebuilds leave free pages behind)."""

    cold: Rebuilt
    warm: Rebuilt
    size: dbinfo.Size
    ledger_only: dbinfo.Size


def prepare(work: Path, events: int, *, cache: bool, verify: bool, results: Results) -> Path:
    """A fresh ledger of `events` receipts in `work` (generated or copied from the cache)."""
    db = work / f"ledger-{events}.db"
    print(f"  ledger of {events:,} receipts …", flush=True)
    how = gen.ledger(db, events, cache=cache)
    print(f"  ledger: {how}", flush=True)
    results.extra.setdefault("ledgers", {})[str(events)] = how
    if verify:
        done = run_timed(
            [tool("bounceledger"), "verify", "--db", str(db)],
            env=bl_env(db),
            timeout=120 + events / 2000,
            log=work / f"verify-{events}.log",
        )
        if done.returncode != 0:
            results.problem(f"generated ledger fails `bounceledger verify`: {done.stdout.strip()}")
        else:
            print(f"  verify: {done.stdout.strip()} ({done.seconds:.1f} s)", flush=True)
    return db


def scan(db: Path, events: int, work: Path) -> tuple[float, float, float]:
    """(events/s, seconds, peak RSS MB) of the scan baseline."""
    done = run_timed(
        [PYTHON, "-m", "bench.scan", str(db)],
        timeout=120 + events / 2000,
        log=work / f"scan-{events}.log",
    )
    if done.returncode != 0:
        raise BenchError(f"scan failed (log {work / f'scan-{events}.log'})")
    data = json.loads(done.stdout)
    return data["events"] / data["seconds"], data["seconds"], done.peak_rss_mb


def rebuild(
    db: Path | str,
    events: int,
    work: Path,
    results: Results,
    *,
    kind: str,
    spy: bool = False,
    receipts: int | None = None,
    store: str = "",
) -> Rebuilt:
    """Time `bounceledger rebuild --db DB --json` (under py-spy when `spy`). The `warm`
    kind rebuilds under POLICY_CHANGE, `back` under POLICY_DEFAULT (both with `--note`),
    `cold` under the ledger's active policy (the defaults, on a generated ledger).

    `receipts`: the ledger's receipts when the rebuild reads it (default `events`; each
    policy change before it added one); `store` names the backend in logs and messages
    ("" for SQLite)."""
    argv = [tool("bounceledger"), "rebuild", "--db", str(db), "--json"]
    if kind in POLICIES:
        argv += ["--policy", str(POLICIES[kind]), "--note", NOTE]
    name = f"rebuild-{store + '-' if store else ''}{events}-{kind}"
    if spy:
        argv = profile.wrap(argv, work / f"profile-{name}.txt")
        name += "-profiled"
    log = work / f"{name}.log"
    # PostgreSQL gets twice the time: a slow rebuild there is a figure, not an abort
    limit = (300 + events / 1000) * (2 if store else 1)
    done = run_timed(argv, env=bl_env(db), timeout=limit, log=log)
    if done.returncode != 0:
        raise BenchError(f"rebuild {store} {kind} failed ({done.returncode}), log {log}")
    # py-spy prints its own lines around the report
    report, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.find("{") :])
    expected = events if receipts is None else receipts
    if report["receipts"] != expected or report["events"] != events:
        results.problem(
            f"rebuild {store + ' ' if store else ''}{kind}: {report['receipts']} receipts "
            f"(expected {expected}), {report['events']} events of {events}"
        )
    results.extra.setdefault("rebuild_reports", {})[name] = {
        key: value for key, value in report.items() if key != "changed"
    } | {"changed": len(report.get("changed", []))}
    return Rebuilt(report["events"], done.seconds, done.peak_rss_mb)


def run(
    work: Path, events: int, results: Results, *, profiled: bool = False, postgres: bool = True
) -> Ledger:
    """Scan, then rebuild twice, the ledger `work/ledger-{events}.db` (prepared before);
    then, with `postgres` and a server to use, the same generated ledger on PostgreSQL.

    Cold: the generated ledger has no projection, so the rebuild decodes every receipt.
    Warm: again on the same file, now that the fact index (the decode cache a running
    server keeps current) exists, under another policy — the rebuild an operator runs
    after a policy change; then once more under the defaults, which the servers of the
    later steps use. Each of these two policy changes adds a receipt to the ledger.
    """
    db = work / f"ledger-{events}.db"
    pristine = work / f"ledger-{events}-pristine.db"  # never projected: for PG and py-spy
    on_pg = postgres and not pg.skipped(f"rebuild {events:,}")
    if profiled or on_pg:
        shutil.copyfile(db, pristine)
    try:
        ledger = _sqlite(db, events, work, results)
        if on_pg:
            _postgres(pristine, events, work, results, ledger)
        if profiled:
            _profile(db, pristine, events, work, results)
    finally:
        for suffix in ("", "-wal", "-shm"):
            pristine.with_name(pristine.name + suffix).unlink(missing_ok=True)
    return ledger


def _sqlite(db: Path, events: int, work: Path, results: Results) -> Ledger:
    scan_rate, scan_s, scan_rss = scan(db, events, work)
    print(f"  scan {events:,}: {scan_rate:,.0f} events/s ({scan_s:.1f} s), {scan_rss:.0f} MB")
    startup = run_timed([tool("bounceledger"), "--version"], timeout=60, log=work / "version.log")
    ledger_only = dbinfo.size(db)
    cold = rebuild(db, events, work, results, kind="cold")
    size = dbinfo.size(db)
    warm = rebuild(db, events, work, results, kind="warm")
    # defaults again, for the servers of the later steps; the warm one's change is read
    back = rebuild(db, events, work, results, kind="back", receipts=events + 1)
    for kind, done in (("cold", cold), ("warm", warm)):
        rate = done.events / done.seconds
        print(
            f"  rebuild {events:,} {kind}: {rate:,.0f} events/s ({done.seconds:.1f} s), "
            f"peak RSS {done.peak_rss_mb:.0f} MB",
            flush=True,
        )
        note = f"{KINDS[kind]}; {done.seconds:.1f} s wall incl. CLI start {startup.seconds:.2f} s"
        add_rows(results, events, kind, done, scan=(scan_rate, scan_rss), note=note)
    print(f"  rebuild {events:,} back to the default policy: {back.seconds:.1f} s", flush=True)
    results.extra.setdefault("rebuild", {})[str(events)] = {
        "cold": cold.__dict__,
        "warm": warm.__dict__,
        "back_to_default_policy": back.__dict__,
        "scan": {"events_per_s": scan_rate, "seconds": scan_s, "peak_rss_mb": scan_rss},
        "cli_start_seconds": startup.seconds,
        "ledger_only_size": ledger_only.__dict__,
        "size_after_cold": size.__dict__,
    }
    return Ledger(cold, warm, size, ledger_only)


def add_rows(
    results: Results,
    events: int,
    kind: str,
    done: Rebuilt,
    *,
    scan: tuple[float, float] | None = None,
    note: str = "",
) -> None:
    """The events/s and peak RSS rows of one rebuild, beside `scan`'s (events/s, peak RSS
    MB) of the same ledger when it ran; the targets of RATE_TARGETS and RSS_LIMIT_MB."""
    rate = done.events / done.seconds
    what = f"{events:,} {kind}"
    goal, sizes = RATE_TARGETS[kind]
    applies = events in sizes
    stated = " and ".join(f"{size:,}" for size in sizes)
    if not applies:
        note += ("; " if note else "") + f"no target here: >= {goal:,}/s is stated at {stated}"
    results.add(
        Row(
            "rebuild",
            f"events/s, {what}",
            rate,
            "ev/s",
            scan[0] if scan else None,
            "scan" if scan else "",
            (">=", goal, "value") if applies else None,
            note=note,
        )
    )
    results.add(
        Row(
            "rebuild",
            f"peak RSS, {what}",
            done.peak_rss_mb,
            "MB",
            scan[1] if scan else None,
            "scan" if scan else "",
            ("<=", RSS_LIMIT_MB, "value"),
        )
    )


def flat_row(results: Results, kind: str, big: Rebuilt, base: Rebuilt) -> None:
    """Peak RSS of the 5,000,000 rebuild against the 1,000,000 one of the same kind."""
    results.add(
        Row(
            "rebuild",
            f"peak RSS flat 1M -> 5M, {kind}",
            big.peak_rss_mb,
            "MB",
            base.peak_rss_mb,
            f"{kind} {base.events:,}",
            ("<=", RSS_FLAT, "ratio"),
            note=f"peak RSS of the {big.events:,} {kind} rebuild against the {base.events:,} one",
        )
    )


def _profile(db: Path, pristine: Path, events: int, work: Path, results: Results) -> None:
    """The cold (on the never-projected copy) and warm rebuilds again, under py-spy; then
    back to the defaults. `db` holds the two policy changes of `_sqlite` already."""
    for kind, target, receipts in (("cold", pristine, events), ("warm", db, events + 2)):
        rebuild(target, events, work, results, kind=kind, spy=True, receipts=receipts)
        summary = profile.summarize(work / f"profile-rebuild-{events}-{kind}.txt")
        results.extra.setdefault("rebuild_profile", {})[f"{events} {kind}"] = summary
    rebuild(db, events, work, results, kind="back", receipts=events + 3)


def migrate(source: Path, url: str, events: int, work: Path) -> Timed:
    """Time `bounceledger migrate --from SOURCE --to URL --json` (the copy, and the
    target's chain verified); BenchError unless every receipt arrived and verified."""
    log = work / f"migrate-{events}.log"
    argv = [tool("bounceledger"), "migrate", "--from", str(source), "--to", url, "--json"]
    done = run_timed(argv, env=bl_env(url), timeout=300 + events / 500, log=log)
    if done.returncode != 0:
        raise BenchError(f"migrate failed ({done.returncode}), log {log}")
    report = json.loads(done.stdout)
    if report["copied"] != events or report["verified"] != events:
        raise BenchError(f"migrate: {report} for a ledger of {events} (log {log})")
    return done


def _postgres(source: Path, events: int, work: Path, results: Results, sqlite: Ledger) -> None:
    """The generated ledger `source` (never projected) copied into a fresh database with
    `bounceledger migrate`, then rebuilt cold and warm as `_sqlite` did, beside its
    figures. A failure here is a problem reported, not an abort: the later steps run on
    the SQLite ledger, which is ready."""
    try:
        with pg.database() as url:
            moved = migrate(source, url, events, work)
            rate = events / moved.seconds
            print(
                f"  migrate {events:,} to PostgreSQL: {rate:,.0f} receipts/s "
                f"({moved.seconds:.1f} s), peak RSS {moved.peak_rss_mb:.0f} MB",
                flush=True,
            )
            results.add(
                Row(
                    "rebuild",
                    f"PostgreSQL migrate receipts/s, {events:,}",
                    rate,
                    "rec/s",
                    note=(
                        f"`bounceledger migrate --from FILE --to URL` of the generated "
                        f"ledger into a fresh database: {moved.seconds:.1f} s, including "
                        f"verifying the copy's chain; peak RSS {moved.peak_rss_mb:.0f} MB"
                    ),
                )
            )
            cold = rebuild(url, events, work, results, kind="cold", store="pg")
            warm = rebuild(url, events, work, results, kind="warm", store="pg")
            size = pg.size(url)
    except BenchError as exc:
        results.problem(f"rebuild {events:,} on PostgreSQL: {exc}")
        return
    for kind, done, base in (("cold", cold, sqlite.cold), ("warm", warm, sqlite.warm)):
        rate = done.events / done.seconds
        print(
            f"  rebuild {events:,} {kind} on PostgreSQL: {rate:,.0f} events/s "
            f"({done.seconds:.1f} s, {done.seconds / base.seconds:.2f}x SQLite's), "
            f"peak RSS {done.peak_rss_mb:.0f} MB",
            flush=True,
        )
        results.add(
            Row(
                "rebuild",
                f"PostgreSQL seconds, {events:,} {kind}",
                done.seconds,
                "s",
                base.seconds,
                f"SQLite {kind}",
                ("<=", 2.0, "ratio"),
                note=(
                    f"`bounceledger rebuild --db URL`, {KINDS[kind]}; {rate:,.0f} events/s, "
                    f"peak RSS {done.peak_rss_mb:.0f} MB (SQLite {base.peak_rss_mb:.0f} MB)"
                ),
            )
        )
    reads.pg_size(size, results)
    results.extra.setdefault("rebuild", {}).setdefault(str(events), {})["postgresql"] = {
        "migrate": {"seconds": moved.seconds, "peak_rss_mb": moved.peak_rss_mb},
        "cold": cold.__dict__,
        "warm": warm.__dict__,
        "size_after_warm": size.__dict__,
    }
