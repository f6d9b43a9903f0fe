"""`python -m bench [STEP ...] [options]`: measure, print the table, write results/latest.json.

Steps: ingest, rebuild, size, start, timeline, erase, check, feed, mixed (default: all,
in that order). size/start/timeline/erase run on the largest --events ledger after its
rebuild; mixed builds a ledger of every provider's receipts (--mixed-events) and measures
its size, alone and projected, on SQLite and PostgreSQL.
ingest and rebuild also measure bounceledger on PostgreSQL, beside SQLite: on a fresh
database of the server BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres),
dropped afterwards; skipped, with one line saying why, when that server cannot be used.

Examples:
    make bench                                        # everything, default sizes
    make bench BENCH_ARGS="ingest --rounds 3"
    python -m bench ingest --duration 5
    python -m bench rebuild --events 100000,1000000
    python -m bench rebuild --events 1000000 --big   # + 5,000,000: events/s, peak RSS
    python -m bench timeline start --events 100000
    python -m bench check --check-rows 100000
    python -m bench feed --feed-entries 100000
    python -m bench mixed --mixed-events 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import check, feed, ingest, mixed, profile, reads, rebuild
from bench import erase as erasure
from bench.procs import BenchError
from bench.report import Results, table, write_json

STEPS = ("ingest", "rebuild", "size", "start", "timeline", "erase", "check", "feed", "mixed")
BIG = 5_000_000


def _sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def parse(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "steps", nargs="*", metavar="STEP", help=f"any of {', '.join(STEPS)} (default: all)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=float(env("BENCH_DURATION", "10")),
        help="wrk seconds per server (env BENCH_DURATION; default 10)",
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="ingest rounds; medians are reported")
    p.add_argument(
        "--events",
        type=_sizes,
        default=_sizes(env("BENCH_EVENTS", "1000000")),
        help="ledger size(s), comma-separated (env BENCH_EVENTS; default 1000000)",
    )
    p.add_argument("--big", action="store_true", help=f"also rebuild {BIG:,} events (slow)")
    p.add_argument("--check-rows", type=int, default=1_000_000)
    p.add_argument("--check-size", type=int, default=10_000)
    p.add_argument("--check-calls", type=int, default=20)
    p.add_argument("--timeline-calls", type=int, default=200)
    p.add_argument("--feed-entries", type=int, default=200_000, help="feed step: entries")
    p.add_argument("--feed-webhooks", type=int, default=300, help="feed step: pushes timed")
    p.add_argument("--feed-rate", type=float, default=20.0, help="feed step: webhooks a second")
    p.add_argument(
        "--mixed-events",
        type=int,
        default=1_000_000,
        help="mixed step: receipts of every provider in equal shares (bench/mixed.py)",
    )
    p.add_argument("--start-repeats", type=int, default=3)
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the rebuild (an extra run) and the server during ingest",
    )
    p.add_argument("--verify-ledger", action="store_true", help="`bounceledger verify` it first")
    p.add_argument("--no-cache", action="store_true", help="regenerate ledgers (no bench/.cache)")
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir, removed)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.steps) - set(STEPS))
    if unknown:
        p.error(f"unknown step {unknown[0]!r} (choose from {', '.join(STEPS)})")
    args.steps = [s for s in STEPS if s in args.steps] if args.steps else list(STEPS)
    return args


def _interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds: every child is stopped in a finally


def main(argv: list[str]) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    results = Results()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bounceledger-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench: {', '.join(args.steps)}; files in {work}", flush=True)
    began = time.perf_counter()
    try:
        _run(args, work, results)
    except (BenchError, TimeoutError) as exc:
        results.problem(f"aborted: {exc}")
    except KeyboardInterrupt as exc:
        results.problem(f"interrupted ({exc or 'Ctrl-C'}): the figures above are partial")
    except Exception as exc:
        traceback.print_exc()
        results.problem(f"aborted by an error in the harness: {exc!r}")
    finally:
        print()
        print(table(results))
        loads = results.extra.get("load_average_at_step", {})
        if loads:
            shown = ", ".join(f"{k} {v:.1f}" for k, v in loads.items())
            print(f"\nload average (1 min) at each step, {os.cpu_count()} CPUs: {shown}")
        for key, title in (("rebuild_profile", "rebuild profile"), ("ingest_profile", "ingest")):
            for name, summary in _profiles(results.extra.get(key)):
                print("\n" + profile.show(f"{title} {name}".strip(), summary))
        print(f"\nresults: {write_json(results, argv)} ({time.perf_counter() - began:.0f} s)")
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if results.problems else 0


def _profiles(found: object) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    if not found:
        return []
    if isinstance(found, dict) and "samples" in found:
        return [("", found)]
    return list(found.items()) if isinstance(found, dict) else []


def _run(args: argparse.Namespace, work: Path, results: Results) -> None:
    steps = set(args.steps)
    if "ingest" in steps:
        _step("ingest", results)
        opts = ingest.Options(
            args.duration, args.connections, args.threads, args.rounds, args.profile
        )
        ingest.run(work, opts, results)
    built: Path | None = None
    built_events = 0
    runs: dict[int, rebuild.Ledger] = {}
    if steps & {"rebuild", "size", "start", "timeline", "erase"}:
        sizes = args.events if "rebuild" in steps else args.events[-1:]
        for events in sizes:
            _step(f"rebuild {events:,}", results)
            db = rebuild.prepare(
                work, events, cache=not args.no_cache, verify=args.verify_ledger, results=results
            )
            runs[events] = rebuild.run(
                work, events, results, profiled=args.profile, postgres="rebuild" in steps
            )
            if events != sizes[-1]:
                _remove(db)
            built, built_events = db, events
    if built is not None:
        if "size" in steps:
            reads.size(runs[built_events].size, results, runs[built_events].ledger_only)
        if "start" in steps:
            _step("start", results)
            reads.start(built, work, results, args.start_repeats)
        if "timeline" in steps:
            _step("timeline", results)
            reads.timeline(built, built_events, work, results, args.timeline_calls)
        if "erase" in steps:
            _step("erase", results)
            erasure.run(built, built_events, work, results)
    if "check" in steps:
        _step("check", results)
        check.run(work, results, rows=args.check_rows, size=args.check_size, calls=args.check_calls)
    if "feed" in steps:
        _step("feed", results)
        feed.run(work, results, args.feed_entries, args.feed_webhooks, args.feed_rate)
    if "mixed" in steps:
        _step("mixed", results)
        mixed.run(work, args.mixed_events, results)
    if args.big and runs:  # last: it is slow
        _big(args, work, runs, results)


def _big(
    args: argparse.Namespace, work: Path, runs: dict[int, rebuild.Ledger], results: Results
) -> None:
    _step(f"rebuild {BIG:,}", results)
    db = rebuild.prepare(work, BIG, cache=not args.no_cache, verify=False, results=results)
    base = runs.get(1_000_000)
    if base is None:
        print("  peak RSS flat from 1,000,000 to 5,000,000: not compared (no 1,000,000 run)")
    try:
        for kind in ("cold", "warm"):
            done = rebuild.rebuild(db, BIG, work, results, kind=kind)
            rate = done.events / done.seconds
            print(
                f"  rebuild {BIG:,} {kind}: {rate:,.0f} events/s ({done.seconds:.0f} s), "
                f"peak RSS {done.peak_rss_mb:.0f} MB",
                flush=True,
            )
            note = f"{rebuild.KINDS[kind]}; {done.seconds:.0f} s wall"
            rebuild.add_rows(results, BIG, kind, done, note=note)
            if base is not None:
                rebuild.flat_row(results, kind, done, getattr(base, kind))
    finally:
        _remove(db)


def _step(name: str, results: Results) -> None:
    """Announce a step with the machine's load: on a shared machine, a busy minute shows."""
    load = os.getloadavg()[0]
    results.extra.setdefault("load_average_at_step", {})[name] = load
    print(f"{name} … (load average {load:.1f} on {os.cpu_count()} CPUs)", flush=True)


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
