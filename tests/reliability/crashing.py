"""Kill -9 the real server mid-load, and check nothing is lost (`python -m bench.crash
[--rounds 20]` runs the rounds on demand).

Each round starts `bounceledger serve` on a fresh ledger, sends SMTP2GO webhooks (JSON
and form bodies, every one unique) from concurrent clients, recording which were
acknowledged (2xx, with the seq the server gave), SIGKILLs the server at a random
moment under load, restarts it on the same file, sends a few more and stops it. Then:

- every acknowledged body is in the ledger, at the seq it was acknowledged with
  (sha256 of the body as sent vs. sha256 of the body as stored), no receipt twice;
- `bounceledger verify` finds the chain intact;
- the projection the crashed-and-restarted server left equals a full rebuild: a
  canonical dump of recipient_state/suppressions/checkpoint, `bounceledger
  suppressions --json` and a sample of `status --json` are the same before and after
  `bounceledger rebuild`, and the fact index equals the facts derived afresh from
  every receipt.

Prints one line per round and the totals; exits 1 on any loss, broken chain or
projection that differs from its rebuild. tests/reliability/test_crash.py runs a short
version of the same rounds; the server processes are tests/serving.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.serving import bounceledger_script, free_port
from tests.stored import stored_bodies

SECRET = "crash-webhook-secret-5b7e1c"
API_KEY = "crash-api-key-9d2f"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WEBHOOK = "/v1/webhooks/smtp2go/events"
RECIPIENTS = 40
KINDS = (
    ("bounce-soft", 40),
    ("delivered", 25),
    ("bounce-hard", 8),
    ("spam", 5),
    ("bounce-unknown", 7),
    ("open", 15),
)


class CrashError(Exception):
    """When a round cannot be run at all (the server did not start, no load went in)."""


# -- the server ---------------------------------------------------------------------


def bounceledger() -> str:
    """The console script of this environment."""
    beside = bounceledger_script()
    if beside.exists():
        return str(beside)
    found = shutil.which("bounceledger")
    if found is None:
        raise CrashError("the bounceledger command is not installed (pip install -e .)")
    return found


def server_env() -> dict[str, str]:
    env = {**os.environ, "SMTP2GO_WEBHOOK_SECRET": SECRET, "BOUNCELEDGER_API_KEYS": API_KEY}
    for name in ("BOUNCELEDGER_DB", "BOUNCELEDGER_POLICY"):
        env.pop(name, None)
    return env


class Server:
    """One `bounceledger serve` process on a loopback port, logging to a file."""

    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [bounceledger(), "serve", "--port", str(self.port), "--db", str(db)],
            env=server_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise CrashError(f"serve exited with {self.process.returncode}:\n{tail}")
            try:
                response = httpx.get(f"{self.base}/healthz", headers=AUTH, timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                return
            time.sleep(0.05)
        raise CrashError(f"serve did not answer /healthz within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no checkpoint, nothing flushed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL if it hangs); returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode


# -- the load -----------------------------------------------------------------------


def make_body(rng: random.Random, tag: str) -> tuple[bytes, str]:
    """One unique SMTP2GO delivery (JSON or form) and its content type."""
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    rcpt = f"r{rng.randrange(RECIPIENTS)}@crash.example"
    if rng.random() < 0.1:
        rcpt = rcpt.upper()
    event: dict[str, str] = {
        "event": kind.split("-")[0],
        "id": f"crash-{tag}",
        "email_id": f"mail-{tag}",
        "time": f"2026-05-{rng.randint(1, 9):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "rcpt": rcpt,
    }
    if kind == "bounce-hard":
        event.update(bounce="hard", message="550 5.1.1 user unknown")
    elif kind == "bounce-soft":
        event.update(bounce="soft", message="452 4.2.2 mailbox full")
    if rng.random() < 0.3:
        return urlencode(event).encode(), "application/x-www-form-urlencoded"
    return json.dumps(event).encode(), "application/json"


@dataclass
class Load:
    """What the clients saw: acknowledged bodies by digest, with the seq they were given."""

    acked: dict[bytes, int] = field(default_factory=dict)
    sent: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # non-2xx answers by status
    errors_before_kill: int = 0  # transport errors while the server was still alive
    kill_after: float = 0.0  # seconds from the first request to the SIGKILL
    acked_at_kill: int = 0


async def _client(
    base: str, rng: random.Random, name: str, load: Load, killed: asyncio.Event, deadline: float
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        n = 0
        while not killed.is_set() and time.monotonic() < deadline:
            n += 1
            body, content_type = make_body(rng, f"{name}-{n}")
            load.sent += 1
            try:
                response = await client.post(
                    WEBHOOK,
                    params={"token": SECRET},
                    content=body,
                    headers={"content-type": content_type},
                )
            except httpx.TransportError:
                if not killed.is_set():
                    load.errors_before_kill += 1
                    await asyncio.sleep(0.01)
                continue
            if 200 <= response.status_code < 300:
                load.acked[hashlib.sha256(body).digest()] = int(response.json()["seq"])
            else:
                load.refused[response.status_code] = load.refused.get(response.status_code, 0) + 1


async def load_then_kill(
    server: Server,
    rng: random.Random,
    *,
    clients: int,
    min_acks: int,
    max_delay: float,
    tag: str,
    timeout: float = 30.0,
) -> Load:
    """Post from `clients` concurrent clients; SIGKILL the server once at least
    `min_acks` were acknowledged plus a random delay of up to `max_delay` seconds."""
    load = Load()
    killed = asyncio.Event()
    started = time.monotonic()
    deadline = started + timeout

    async def killer() -> None:
        while len(load.acked) < min_acks:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(rng.uniform(0.0, max_delay))
        server.kill()
        load.kill_after = time.monotonic() - started
        load.acked_at_kill = len(load.acked)
        killed.set()

    seeds = [rng.randrange(2**32) for _ in range(clients)]
    await asyncio.gather(
        killer(),
        *(
            _client(server.base, random.Random(seed), f"{tag}-c{i}", load, killed, deadline)
            for i, seed in enumerate(seeds)
        ),
    )
    if len(load.acked) < min_acks:
        raise CrashError(f"only {len(load.acked)} deliveries acknowledged before the deadline")
    return load


def post_after_restart(base: str, rng: random.Random, count: int, tag: str) -> dict[bytes, int]:
    """Deliveries to the restarted server: each must be acknowledged."""
    acked: dict[bytes, int] = {}
    with httpx.Client(base_url=base, timeout=10.0) as client:
        for n in range(count):
            body, content_type = make_body(rng, f"{tag}-after-{n}")
            response = client.post(
                WEBHOOK,
                params={"token": SECRET},
                content=body,
                headers={"content-type": content_type},
            )
            if response.status_code != 200:
                raise CrashError(
                    f"the restarted server answered {response.status_code}: {response.text}"
                )
            acked[hashlib.sha256(body).digest()] = int(response.json()["seq"])
    return acked


def wait_projected(base: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health: dict[str, Any] = httpx.get(f"{base}/healthz", headers=AUTH, timeout=5).json()
        if health["projected"] >= health["receipts"]:
            return health
        if time.monotonic() > deadline:
            raise CrashError(f"the projector did not catch up: {health}")
        time.sleep(0.02)


# -- the checks ---------------------------------------------------------------------


def cli(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [bounceledger(), *(str(arg) for arg in args)],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise CrashError(
            f"bounceledger {' '.join(map(str, args))}: {result.stderr or result.stdout}"
        )
    return result


def stored_digests(db: Path) -> list[tuple[int, bytes, bytes]]:
    """(seq, sha256 of the stored body recomputed here, the stored body_sha256) in order."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT seq, body_sha256 FROM receipts ORDER BY seq").fetchall()
    conn.close()
    bodies = stored_bodies(db)
    return [
        (seq, hashlib.sha256(bodies[seq]).digest() if seq in bodies else b"", digest)
        for seq, digest in rows
    ]


def projection_dump(db: Path) -> dict[str, Any]:
    """The projection's tables, canonically ordered (bytes as hex)."""
    with sqlite3.connect(db) as conn:
        meta = conn.execute("SELECT seq, policy_hash, derivation FROM projection_meta").fetchall()
        states = conn.execute("SELECT email, state FROM recipient_state ORDER BY email").fetchall()
        suppressed = conn.execute(
            "SELECT email, reason, since, seq FROM suppressions ORDER BY email"
        ).fetchall()
        facts = conn.execute(
            "SELECT key, email, at, seq, ord, fact FROM recipient_facts ORDER BY key"
        ).fetchall()
    conn.close()
    return {
        "meta": [list(row) for row in meta],
        "recipient_state": [(email, bytes(state).hex()) for email, state in states],
        "suppressions": [list(row) for row in suppressed],
        "facts": [
            (bytes(key).hex(), email, at, seq, order, bytes(fact).hex())
            for key, email, at, seq, order, fact in facts
        ],
    }


def derived_facts(db: Path) -> list[tuple[str, str, int, int, int, str]]:
    """Every receipt's facts derived afresh by the projection code (first by seq wins), as
    the index's rows (projection_dump's "facts")."""
    from ledger import Receipt
    from projections.facts import derive
    from projections.views import fact_row

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT seq, received_at, source, content_type, headers, peer, body_sha256, "
            "chain_hash FROM receipts ORDER BY seq"
        ).fetchall()
    conn.close()
    bodies = stored_bodies(db)
    facts: dict[bytes, tuple[str, int, int, int, bytes]] = {}
    for seq, received_at, source, content_type, headers, peer, digest, chain in rows:
        receipt = Receipt(
            seq=seq,
            received_at=received_at,
            source=source,
            content_type=content_type,
            headers=json.loads(headers),
            peer=peer,
            body=bodies[seq],
            body_sha256=bytes(digest),
            chain_hash=bytes(chain),
        )
        for keyed in derive(receipt):
            email, at, seq_of, order, _, blob = fact_row(keyed)
            facts.setdefault(keyed.key, (email, at, seq_of, order, blob))
    return sorted(
        (key.hex(), email, at, seq_of, order, blob.hex())
        for key, (email, at, seq_of, order, blob) in facts.items()
    )


@dataclass
class RoundResult:
    round: int
    seed: int
    kill_after: float
    sent: int
    acknowledged: int
    stored: int
    missing: int
    misplaced: int  # acknowledged with a seq that holds another body
    duplicated: int
    chain_intact: bool
    projection_equal: bool
    problems: list[str]  # every finding, spelled out
    unanswered: int  # requests cut off by the kill: neither acknowledged nor refused
    refused: dict[int, int]
    errors_before_kill: int
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.misplaced == 0
            and self.duplicated == 0
            and self.chain_intact
            and self.projection_equal
            and not self.problems
        )

    def line(self) -> str:
        return (
            f"round {self.round:>2}  kill at {self.kill_after:5.2f}s  sent {self.sent:>5}  "
            f"acknowledged {self.acknowledged:>5}  cut off {self.unanswered:>3}  "
            f"stored {self.stored:>5}  "
            f"missing {self.missing}  misplaced {self.misplaced}  "
            f"chain {'intact' if self.chain_intact else 'BROKEN'}  "
            f"projection {'= rebuild' if self.projection_equal else 'DIFFERS'}  "
            f"({self.seconds:.1f}s)"
        )


def check_ledger(db: Path, acked: dict[bytes, int]) -> tuple[int, int, int, int, list[str]]:
    """(stored, missing, misplaced, duplicated, problems) for the acknowledged bodies."""
    rows = stored_digests(db)
    problems: list[str] = []
    by_digest: dict[bytes, int] = {}
    duplicated = 0
    for seq, computed, recorded in rows:
        if computed != recorded:
            problems.append(f"receipt {seq}: body_sha256 does not match its body")
        if computed in by_digest:
            duplicated += 1
        by_digest.setdefault(computed, seq)
    seqs = [seq for seq, _, _ in rows]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append("sequence numbers are not 1..N without gaps")
    missing = [digest for digest in acked if digest not in by_digest]
    misplaced = [d for d, seq in acked.items() if d in by_digest and by_digest[d] != seq]
    problems += [f"acknowledged body {d.hex()[:16]} (seq {acked[d]}) is missing" for d in missing]
    problems += [
        f"acknowledged body {d.hex()[:16]} was given seq {acked[d]} but is at {by_digest[d]}"
        for d in misplaced
    ]
    return len(rows), len(missing), len(misplaced), duplicated, problems


def check_projection(db: Path, sample: Sequence[str]) -> list[str]:
    """Differences between the projection as left and a full rebuild (empty: equal)."""
    differences: list[str] = []
    before = projection_dump(db)
    rows = stored_digests(db)
    head = rows[-1][0] if rows else 0
    if not before["meta"] or before["meta"][0][0] != head:
        differences.append(f"checkpoint {before['meta']} is not the ledger's head {head}")
    if before["facts"] != derived_facts(db):
        differences.append("the fact index differs from the facts derived from the receipts")
    listed_before = cli("suppressions", "--db", db, "--json").stdout
    status_before = {email: cli("status", email, "--db", db, "--json").stdout for email in sample}
    report = json.loads(cli("rebuild", "--db", db, "--json").stdout)
    if report["changed"]:
        differences.append(f"rebuild changed verdicts: {report['changed'][:5]}")
    after = projection_dump(db)
    for table in ("meta", "recipient_state", "suppressions", "facts"):
        if before[table] != after[table]:
            differences.append(f"table {table} differs from its rebuild")
    if cli("suppressions", "--db", db, "--json").stdout != listed_before:
        differences.append("`suppressions --json` differs after rebuild")
    for email, text in status_before.items():
        if cli("status", email, "--db", db, "--json").stdout != text:
            differences.append(f"`status {email} --json` differs after rebuild")
    if not json.loads(listed_before):
        differences.append("nothing was suppressed: the comparison would prove little")
    return differences


def crash_round(
    workdir: Path,
    *,
    number: int = 1,
    seed: int | None = None,
    clients: int = 16,
    min_acks: int = 50,
    max_delay: float = 1.0,
    after: int = 10,
    status_sample: int = 4,
) -> RoundResult:
    """One round: load, kill -9, restart, more load, stop, check. Never raises on a
    finding (that is in the result); raises CrashError when the round could not run."""
    started = time.monotonic()
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    db, log = workdir / "ledger.db", workdir / "serve.log"

    server = Server(db, log)
    try:
        server.wait_healthy()
        load = asyncio.run(
            load_then_kill(
                server,
                rng,
                clients=clients,
                min_acks=min_acks,
                max_delay=max_delay,
                tag=f"{number}-{seed}",
            )
        )
    finally:
        server.kill()
        server.stop()

    restarted = Server(db, log)
    try:
        restarted.wait_healthy()
        acked = {**load.acked, **post_after_restart(restarted.base, rng, after, f"{number}-{seed}")}
        wait_projected(restarted.base)
        ready = httpx.get(f"{restarted.base}/readyz", headers=AUTH, timeout=5)
    finally:
        code = restarted.stop()

    stored, missing, misplaced, duplicated, problems = check_ledger(db, acked)
    if ready.status_code != 200:
        problems.append(f"/readyz after restart: {ready.status_code} {ready.text}")
    if load.errors_before_kill:
        problems.append(f"{load.errors_before_kill} transport errors before the kill")
    if code not in (0, -signal.SIGTERM):
        problems.append(f"the restarted server exited with {code} on SIGTERM")
    verified = cli("verify", "--db", db, "--json", check=False)
    chain_intact = verified.returncode == 0 and json.loads(verified.stdout)["intact"] is True
    if chain_intact and json.loads(verified.stdout)["receipts"] != stored:
        chain_intact = False
    if not chain_intact:
        problems.append(f"verify: {verified.stdout.strip()} {verified.stderr.strip()}")
    sample = sorted({f"r{rng.randrange(RECIPIENTS)}@crash.example" for _ in range(status_sample)})
    differences = check_projection(db, sample)
    return RoundResult(
        round=number,
        seed=seed,
        kill_after=load.kill_after,
        sent=load.sent + after,
        acknowledged=len(acked),
        stored=stored,
        missing=missing,
        misplaced=misplaced,
        duplicated=duplicated,
        chain_intact=chain_intact,
        projection_equal=not differences,
        problems=problems + differences,
        unanswered=load.sent - len(load.acked) - sum(load.refused.values()),
        refused=load.refused,
        errors_before_kill=load.errors_before_kill,
        seconds=time.monotonic() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crash", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--min-acks", type=int, default=50, help="acknowledged before a kill")
    parser.add_argument("--max-delay", type=float, default=1.5, help="random kill delay, s")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first round")
    parser.add_argument("--keep", type=Path, default=None, help="keep each round's files here")
    args = parser.parse_args(argv)

    master = random.Random(args.seed)
    results: list[RoundResult] = []
    with tempfile.TemporaryDirectory(prefix="bounceledger-crash-") as scratch:
        root = args.keep or Path(scratch)
        for number in range(1, args.rounds + 1):
            result = crash_round(
                root / f"round-{number:02d}",
                number=number,
                seed=master.randrange(2**32),
                clients=args.clients,
                min_acks=args.min_acks,
                max_delay=args.max_delay,
            )
            results.append(result)
            print(result.line(), flush=True)
            for problem in result.problems:
                print(f"    {problem}", flush=True)

    acknowledged = sum(r.acknowledged for r in results)
    missing = sum(r.missing + r.misplaced for r in results)
    intact = sum(r.chain_intact for r in results)
    equal = sum(r.projection_equal for r in results)
    refused: dict[int, int] = {}
    for result in results:
        for status, count in result.refused.items():
            refused[status] = refused.get(status, 0) + count
    print(
        f"total: {len(results)} rounds, {sum(r.sent for r in results)} sent, "
        f"{acknowledged} acknowledged, {missing} missing, "
        f"chain intact {intact}/{len(results)}, projection = rebuild {equal}/{len(results)}"
        + (f", refused {refused}" if refused else "")
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
