"""Rebuild: `bounceledger rebuild` on a generated ledger, beside `scan` (read + decode).

Both run as children, so each one's peak RSS is its own (wait4). The rebuild's wall time
includes the interpreter start, what an operator waits for; the CLI's start alone is
measured too (`bounceledger --version`), shown in the notes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import dbinfo, gen, profile
from bench.procs import PYTHON, BenchError, run_timed, tool
from bench.report import Results, Row
from bench.service import bl_env


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
    db: Path, events: int, work: Path, results: Results, *, kind: str, spy: bool = False
) -> Rebuilt:
    """Time `bounceledger rebuild --db DB --json` (under py-spy when `spy`); the `warm` kind
    rebuilds under POLICY_CHANGE, the others under the default policy."""
    argv = [tool("bounceledger"), "rebuild", "--db", str(db), "--json"]
    if kind == "warm":
        argv += ["--policy", str(POLICY_CHANGE)]
    name = f"rebuild-{events}-{kind}"
    if spy:
        argv = profile.wrap(argv, work / f"profile-{name}.txt")
        name += "-profiled"
    log = work / f"{name}.log"
    done = run_timed(argv, env=bl_env(db), timeout=300 + events / 1000, log=log)
    if done.returncode != 0:
        raise BenchError(f"rebuild failed ({done.returncode}), log {log}")
    # py-spy prints its own lines around the report
    report, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.find("{") :])
    if report["receipts"] != events or report["events"] != events:
        results.problem(
            f"rebuild {kind}: {report['receipts']} receipts, {report['events']} events of {events}"
        )
    results.extra.setdefault("rebuild_reports", {})[name] = {
        key: value for key, value in report.items() if key != "changed"
    } | {"changed": len(report.get("changed", []))}
    return Rebuilt(report["events"], done.seconds, done.peak_rss_mb)


POLICY_CHANGE = Path(__file__).resolve().parent / "policy_change.toml"
KINDS = {
    "cold": "cold: ledger never projected, derives the fact index",
    "warm": "warm: fact index current, under bench/policy_change.toml (a policy change)",
}


def run(work: Path, events: int, results: Results, *, profiled: bool = False) -> Ledger:
    """Scan, then rebuild twice, the ledger `work/ledger-{events}.db` (prepared before).

    Cold: the generated ledger has no projection, so the rebuild decodes every receipt.
    Warm: again on the same file, now that the fact index (the decode cache a running
    server keeps current) exists, under another policy — the rebuild an operator runs
    after a policy change; then once more under the defaults, which the servers of the
    later steps use.
    """
    db = work / f"ledger-{events}.db"
    pristine = work / f"ledger-{events}-for-profile.db"
    if profiled:
        shutil.copyfile(db, pristine)
    scan_rate, scan_s, scan_rss = scan(db, events, work)
    print(f"  scan {events:,}: {scan_rate:,.0f} events/s ({scan_s:.1f} s), {scan_rss:.0f} MB")
    startup = run_timed([tool("bounceledger"), "--version"], timeout=60, log=work / "version.log")
    ledger_only = dbinfo.size(db)
    cold = rebuild(db, events, work, results, kind="cold")
    size = dbinfo.size(db)
    warm = rebuild(db, events, work, results, kind="warm")
    back = rebuild(db, events, work, results, kind="back")  # defaults again, for the server
    for kind, done in (("cold", cold), ("warm", warm)):
        rate = done.events / done.seconds
        print(
            f"  rebuild {events:,} {kind}: {rate:,.0f} events/s ({done.seconds:.1f} s), "
            f"peak RSS {done.peak_rss_mb:.0f} MB",
            flush=True,
        )
        what = f"{events:,} {kind}"
        note = f"{KINDS[kind]}; {done.seconds:.1f} s wall incl. CLI start {startup.seconds:.2f} s"
        results.add(
            Row(
                "rebuild",
                f"events/s, {what}",
                rate,
                "ev/s",
                scan_rate,
                "scan",
                (">=", 0.4, "ratio"),
                note=note,
            )
        )
        results.add(
            Row("rebuild", f"events/s, {what}", rate, "ev/s", target=(">=", 500_000, "value"))
        )
        results.add(
            Row(
                "rebuild",
                f"peak RSS, {what}",
                done.peak_rss_mb,
                "MB",
                scan_rss,
                "scan",
                ("<=", 250, "value"),
            )
        )
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
    if profiled:
        try:
            for kind, target in (("cold", pristine), ("warm", db)):
                rebuild(target, events, work, results, kind=kind, spy=True)
                summary = profile.summarize(work / f"profile-rebuild-{events}-{kind}.txt")
                results.extra.setdefault("rebuild_profile", {})[f"{events} {kind}"] = summary
            rebuild(db, events, work, results, kind="back")
        finally:
            for suffix in ("", "-wal", "-shm"):
                pristine.with_name(pristine.name + suffix).unlink(missing_ok=True)
    return Ledger(cold, warm, size)
