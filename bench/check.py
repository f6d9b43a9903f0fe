"""Check: POST /v1/suppressions/check with 10,000 addresses against 1,000,000 suppressed
rows, without a stream and for each stream of the policy.

The projection rows are written directly with the projection's own code (the projector
creates the tables and records the policy, `POLICY`: two streams; `views.write_states`
writes states and suppressions), over an empty ledger. The server is started with the
same policy (`serve --policy`), so it serves these rows as they are. A share of the
complaints and unsubscribes belong to the `newsletter` stream (`Cause.streams`), and a
few addresses have a second cause, so each stream's answer differs from the others.

Half of each request is suppressed, half unknown, shuffled; every call sends a different
sample. Each sample is sent three times — without a stream, for `transactional`, for
`newsletter` — in a rotating order, so that machine noise and a warm cache favour none.
Every answer is checked: the addresses suppressed for that stream (worked out from the
causes written, with `streams.scope(policy, name).blocking`) are reported, each with its
strongest blocking reason, and none other.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import BenchError, cpu_seconds
from bench.reads import Client, _pct, hello
from bench.report import Results, Row
from bench.service import bounceledger
from ledger.sqlite import SQLiteStore
from projections import Projector, streams, views
from projections.mapping import read_policy
from projections.policy import Policy
from projections.state import REASON_RANK, Cause, Reason, RecipientState

REASONS: tuple[tuple[Reason, int], ...] = (
    ("hard_bounce", 60),
    ("soft_bounce_threshold", 15),
    ("complaint", 10),
    ("unsubscribe", 10),
    ("manual", 5),
)
CHUNK = 50_000
# The policy the projection is built and served under: a transactional stream that a
# soft-bounce threshold does not stop, and a newsletter stream (Postmark's broadcast
# message stream) that every reason stops.
POLICY = """\
# Written by bench/check.py: the check step's policy (projection and server).
[streams.transactional]
blocked_by = ["hard_bounce", "complaint", "unsubscribe", "manual", "provider_suppressed"]
note = "receipts and password resets"

[streams.newsletter]
match = { postmark_message_stream = ["broadcast"] }
note = "marketing"
"""
# What the calls ask for: no stream (the strictest verdict), then each stream.
STREAMS: tuple[str, ...] = ("transactional", "newsletter")
VARIANTS: tuple[str | None, ...] = (None, *STREAMS)
# Complaints and unsubscribes whose evidence is the newsletter's (the rest are global);
# addresses with a second cause, a complaint or an unsubscribe.
NEWSLETTER_SHARE = 0.30
SECOND_CAUSE_SHARE = 0.05
OPT_OUTS: tuple[Reason, ...] = ("complaint", "unsubscribe")
TARGET_RATIO = 1.10


def suppressed(k: int) -> str:
    return f"sup{k:07d}@example{k % 9}.org"


def unknown(k: int) -> str:
    return f"fresh{k:07d}@example{k % 9}.net"


def _label(stream: str | None) -> str:
    return "without a stream" if stream is None else f"stream {stream}"


@dataclass
class Expected:
    """Per variant, per row k: 0 when the row is not suppressed for it, else 1 + the
    index in REASON_RANK of the reason the answer must name (the strongest that blocks)."""

    by_variant: dict[str | None, bytearray] = field(default_factory=dict)
    causes: dict[str, int] = field(default_factory=dict)  # tag -> causes written with it

    def reason(self, stream: str | None, k: int) -> str | None:
        code = self.by_variant[stream][k]
        return REASON_RANK[code - 1] if code else None


async def build(path: Path, rows: int, policy: Policy) -> Expected:
    """The projector creates the tables and records `policy`; the states are written with
    `views.write_states` in the store's `writing()` transactions. (To put a figure beside
    an older commit's, run that commit's own bench.)"""
    expected = Expected({variant: bytearray(rows) for variant in VARIANTS})
    scopes: dict[str, streams.Scope] = {}
    for name in STREAMS:
        scope = streams.scope(policy, name)
        assert scope is not None
        scopes[name] = scope
    store = await SQLiteStore.open(path)
    try:
        await Projector(store, policy).start()
        for states in _states(rows):
            for state in states:
                k = row_number(state)
                expected.by_variant[None][k] = 1 + REASON_RANK.index(state.causes[0].reason)
                for name, scope in scopes.items():
                    blocking = scope.blocking(state.causes)
                    if blocking:
                        expected.by_variant[name][k] = 1 + REASON_RANK.index(blocking[0].reason)
                for cause in state.causes:
                    tag = streams.tag(cause)
                    expected.causes[tag] = expected.causes.get(tag, 0) + 1
            async with store.writing() as tx:
                await views.write_states(tx, states)
    finally:
        await store.close()
    return expected


def row_number(state: RecipientState) -> int:
    """The row number k of a state written by `_states` (its address is `suppressed(k)`)."""
    return int(state.email[3:10])


def _states(rows: int) -> Iterator[list[RecipientState]]:
    rng = random.Random(11)
    reasons, weights = [r for r, _ in REASONS], [w for _, w in REASONS]

    def cause(reason: Reason, at: int, seq: int) -> Cause:
        newsletter = reason in OPT_OUTS and rng.random() < NEWSLETTER_SHARE
        return Cause(reason, at, seq, streams=("newsletter",) if newsletter else ())

    for start in range(0, rows, CHUNK):
        states = []
        for k in range(start, min(rows, start + CHUNK)):
            at = 1_746_000_000_000_000 + k * 1_000_000
            reason = rng.choices(reasons, weights)[0]
            causes = [cause(reason, at, k + 1)]
            if rng.random() < SECOND_CAUSE_SHARE:
                other = rng.choice([r for r in OPT_OUTS if r != reason])
                causes.append(cause(other, at + 1, k + 1))
            causes.sort(key=lambda c: REASON_RANK.index(c.reason))  # as the fold keeps them
            states.append(
                RecipientState(
                    email=suppressed(k),
                    causes=tuple(causes),
                    since=at,
                    position=(at + 1, k + 1, 0),
                    events=len(causes),
                )
            )
        yield states


@dataclass
class Sample:
    """One call's addresses, and the row number of each suppressed one (None: unknown)."""

    emails: list[str]
    rows: list[int | None]

    def body(self, stream: str | None) -> bytes:
        sent: dict[str, object] = {"emails": self.emails}
        if stream is not None:
            sent["stream"] = stream
        return json.dumps(sent).encode()

    def wanted(self, expected: Expected, stream: str | None) -> dict[str, str]:
        """Each address the answer for `stream` must list, with its reason."""
        found = {}
        for email, k in zip(self.emails, self.rows, strict=True):
            reason = None if k is None else expected.reason(stream, k)
            if reason is not None:
                found[email] = reason
        return found


def _samples(rows: int, size: int, count: int) -> list[Sample]:
    rng = random.Random(13)
    half = size // 2
    samples = []
    for _ in range(count):
        picked: list[tuple[str, int | None]] = []
        for _ in range(half):
            k = rng.randrange(rows)
            picked.append((suppressed(k), k))
        picked += [(unknown(rng.randrange(10 * rows)), None) for _ in range(size - half)]
        rng.shuffle(picked)
        samples.append(Sample([e for e, _ in picked], [k for _, k in picked]))
    return samples


def _wrong(status: int, data: bytes, stream: str | None, wanted: dict[str, str]) -> str | None:
    """What is wrong with an answer (None: nothing)."""
    if status != 200:
        return f"status {status}: {data[:200]!r}"
    answer = json.loads(data)
    if answer.get("stream") != stream:
        return f"answered for stream {answer.get('stream')!r}"
    listed = answer["suppressed"]
    got = {hit["email"]: hit["reason"] for hit in listed}
    if len(got) != len(listed):
        return f"{len(listed) - len(got)} addresses listed twice"
    if got == wanted:
        return None
    missing = sorted(set(wanted) - set(got))
    extra = sorted(set(got) - set(wanted))
    other = sorted(e for e in set(got) & set(wanted) if got[e] != wanted[e])
    shown = missing[:1] or extra[:1] or other[:1]
    return (
        f"{len(missing)} suppressed addresses missing, {len(extra)} listed that are not, "
        f"{len(other)} with another reason (e.g. {shown[0]}: "
        f"{got.get(shown[0])!r}, expected {wanted.get(shown[0])!r})"
    )


@dataclass
class Measured:
    """Per variant, over the measured calls: wall milliseconds, the server's CPU
    milliseconds (user + system, all its threads), and how many addresses it listed."""

    ms: dict[str | None, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str | None, list[float]] = field(default_factory=dict)
    listed: dict[str | None, list[int]] = field(default_factory=dict)
    wrong: dict[str | None, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for table in (self.ms, self.cpu_ms, self.listed, self.wrong):
            table.update({variant: [] for variant in VARIANTS})

    def paired(self, stream: str) -> float:
        """The median, over the calls, of one call's time for `stream` over the same
        addresses' time without a stream: sent one after the other, the two share the
        machine's minute, which the ratio of two medians does not cancel."""
        mine, base = self.ms[stream], self.ms[None]
        return statistics.median(a / b for a, b in zip(mine, base, strict=True))


def run(work: Path, results: Results, *, rows: int, size: int, calls: int, warm: int = 2) -> None:
    db, toml = work / f"check-{rows}.db", work / "check-policy.toml"
    toml.write_text(POLICY)
    policy = read_policy(toml)  # as `serve --policy` reads it
    started = time.perf_counter()
    expected = asyncio.run(build(db, rows, policy))
    tags = ", ".join(f"{tag} {n:,}" for tag, n in sorted(expected.causes.items()))
    print(
        f"  check: {rows:,} suppressed rows written in {time.perf_counter() - started:.1f} s "
        f"(causes: {tags})",
        flush=True,
    )
    samples = _samples(rows, size, calls + warm)
    got = Measured()
    path = "/v1/suppressions/check"
    # the policy the projection was built under: another one would be put into effect by
    # a rebuild of the empty ledger, and every answer would be wrong
    with bounceledger(db, work, options=("--policy", str(toml))) as srv:
        client = Client(srv)
        try:
            for index, sample in enumerate(samples):
                turn = index % len(VARIANTS)  # who goes first rotates
                for stream in VARIANTS[turn:] + VARIANTS[:turn]:
                    body = sample.body(stream)
                    cpu = cpu_seconds([srv.pid])
                    seconds, status, data = client.call("POST", path, body)
                    cpu = cpu_seconds([srv.pid]) - cpu
                    if status != 200:
                        text = f"{srv.name} POST {path} ({_label(stream)}): status {status}"
                        results.problem(f"{text}: {data[:200]!r}")
                        raise BenchError(f"{srv.name} answered wrongly: status {status}")
                    wanted = sample.wanted(expected, stream)
                    problem = _wrong(status, data, stream, wanted)
                    if problem:
                        got.wrong[stream].append(problem)
                    got.listed[stream].append(len(wanted))
                    if index >= warm:
                        got.ms[stream].append(seconds * 1000)
                        got.cpu_ms[stream].append(cpu * 1000)
        finally:
            client.close()
    floor = hello([sample.body(None) for sample in samples], warm, work, results)
    for stream, found in got.wrong.items():
        if found:
            results.problem(
                f"check ({_label(stream)}): {len(found)} of {len(samples)} calls answered "
                f"wrongly: {found[0]}"
            )
    _rows(results, got, floor, rows=rows, size=size, calls=calls)


def _rows(
    results: Results, got: Measured, floor: list[float], *, rows: int, size: int, calls: int
) -> None:
    half = size // 2
    medians = {stream: statistics.median(ms) for stream, ms in got.ms.items()}
    cpu = {stream: statistics.mean(ms) for stream, ms in got.cpu_ms.items()}
    for stream, ms in got.ms.items():
        print(
            f"  check ({_label(stream)}): median {medians[stream]:.1f} ms, "
            f"p99 {_pct(ms, 0.99):.1f} ms, server CPU {cpu[stream]:.0f} ms a call",
            flush=True,
        )
    floor50, floor99 = statistics.median(floor), _pct(floor, 0.99)
    note = (
        f"{size:,} addresses ({half:,} suppressed) x {calls} calls, {rows:,} suppressed rows; "
        f"the same addresses also sent for each stream, in turn; server CPU {cpu[None]:.0f} ms "
        "a call (mean)"
    )
    results.add(
        Row(
            "check",
            "median",
            medians[None],
            "ms",
            floor50,
            "hello same body",
            ("<=", 50, "value"),
            note=note,
        )
    )
    results.add(Row("check", "p99", _pct(got.ms[None], 0.99), "ms", floor99, "hello same body"))
    for stream in STREAMS:
        mean_listed = statistics.mean(got.listed[stream])
        results.add(
            Row(
                "check",
                f"median, {_label(stream)}",
                medians[stream],
                "ms",
                floor50,
                "hello same body",
                note=f"{mean_listed:,.0f} of the {half:,} suppressed sent are suppressed for it "
                f"(mean); server CPU {cpu[stream]:.0f} ms a call (mean)",
            )
        )
        results.add(
            Row(
                "check",
                f"p99, {_label(stream)}",
                _pct(got.ms[stream], 0.99),
                "ms",
                floor99,
                "hello same body",
            )
        )
    paired = {stream: got.paired(stream) for stream in STREAMS}
    slowest = max(STREAMS, key=lambda stream: paired[stream])
    each = "; ".join(
        f"{stream} {paired[stream]:.2f}x (medians {medians[stream] / medians[None]:.2f}x, "
        f"server CPU {cpu[stream] / cpu[None]:.2f}x)"
        for stream in STREAMS
    )
    results.add(
        Row(
            "check",
            "with a stream / without",
            paired[slowest],
            "x",
            target=("<=", TARGET_RATIO, "value"),
            note=f"median of each call's time over the same addresses' without a stream, the "
            f"slower stream ({slowest}); {each}",
        )
    )
