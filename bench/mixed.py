"""A mixed-provider ledger for the size figures (issue 21): every provider's receipts in
equal shares, appended through the store as the doors append them — compressed by the
dictionaries the store trains itself, door identities (SNS message ids, Mailgun tokens)
kept beside them, each provider's audit headers as its door keeps them.

Each body is one of the provider's fixtures (tests/fixtures/<provider>/) made into
another delivery: every recipient address replaced by one of ~100,000 (the sender's own
addresses, `noreply@…`, kept), every identifier (UUIDs, hex and mixed-case ids of 12
characters or more, `evt_…`/`msg_…`) by a random one of the same shape, every time by the
delivery's own. The signature headers are random values of their real shape: they differ
from one delivery to the next, as they do.

Cached in bench/.cache like the SMTP2GO ledgers (gen.py), keyed by size, this file, the
fixtures and the ledger's code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench import dbinfo, gen, pg, reads
from bench.procs import BenchError, run_timed, tool
from bench.rebuild import migrate
from bench.report import Results
from bench.service import bl_env
from ledger import NewReceipt
from ledger.sqlite import SQLiteStore

FIXTURES = gen.HERE.parent / "tests" / "fixtures"
PROVIDERS = ("smtp2go", "sendgrid", "mailgun", "resend", "postmark", "mailtura", "ses")
# Fixtures that are no delivery event (an SNS subscription handshake).
SKIP = {"ses/subscription_confirmation.json"}
RECIPIENTS = 100_000
SEED = 21
BATCH = 2_000
START_US = 1_780_000_000_000_000
PEERS = {name: [f"198.51.100.{10 * n + i}" for i in range(4)] for n, name in enumerate(PROVIDERS)}
TOPIC = "arn:aws:sns:eu-west-1:111122223333:ses-events"

# An address, its @ plain or percent-encoded (a form body).
_ADDRESS = re.compile(rb"[A-Za-z0-9._+-]+(@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SENDER = re.compile(rb"^(?:no-?reply|bounces?|sender|postmaster|mailer-daemon)", re.I)
_UUID = re.compile(rb"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# An id: 12 or more letters and digits, at least one of each.
_TOKEN = re.compile(
    rb"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{12,}"
)
_PREFIXED = re.compile(rb"\b(evt|msg|em|req)_[A-Za-z0-9]+")
# An ISO time, its colons plain or percent-encoded (a form body).
_ISO = re.compile(rb"\d{4}-\d\d-\d\dT\d\d(:|%3A)\d\d(?::|%3A)\d\d(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")
_EPOCH = re.compile(rb"(?<![\d.])1[67]\d{8}(?:\.\d+)?(?![\d])")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def templates() -> dict[str, list[tuple[str, bytes]]]:
    """Each provider's fixtures: (content type, body)."""
    found: dict[str, list[tuple[str, bytes]]] = {}
    for provider in PROVIDERS:
        for path in sorted((FIXTURES / provider).iterdir()):
            if f"{provider}/{path.name}" in SKIP:
                continue
            if path.suffix == ".form":
                found.setdefault(provider, []).append(
                    ("application/x-www-form-urlencoded", path.read_bytes())
                )
            elif path.suffix == ".json":
                kind = "text/plain; charset=UTF-8" if provider == "ses" else "application/json"
                found.setdefault(provider, []).append((kind, path.read_bytes()))
    return found


class Deliveries:
    """Deliveries made from the fixtures, reproducibly from a seed."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.templates = templates()

    def _same_shape(self, text: bytes) -> bytes:
        """Random characters of the token's kind (lower or upper hex, else alphanumeric)."""
        pool = next(
            (
                hexes
                for hexes in (b"0123456789abcdef", b"0123456789ABCDEF")
                if set(text) <= set(hexes)
            ),
            _ALNUM.encode(),
        )
        return bytes(self.rng.choices(pool, k=len(text)))

    def _recipient(self) -> bytes:
        n = self.rng.randrange(RECIPIENTS)
        domain = ("example.org", "mail.example", "post.example", "example.net")[n % 4]
        return f"person{n:06d}@{domain}".encode()

    def body(self, template: bytes, at_us: int) -> bytes:
        people: dict[bytes, bytes] = {}

        def address(match: re.Match[bytes]) -> bytes:
            found = match[0]
            if _SENDER.match(found):
                return found
            key = found.lower().replace(b"%40", b"@")
            if key not in people:
                people[key] = self._recipient()
            return people[key].replace(b"@", match[1])

        when = datetime.fromtimestamp(at_us / 1e6, UTC)

        def iso(match: re.Match[bytes]) -> bytes:
            colon = match[1].decode()
            digits = len(match[2]) if match[2] else 0
            text = colon.join(when.strftime(part) for part in ("%Y-%m-%dT%H", "%M", "%S"))
            if digits:
                text += "." + f"{when.microsecond:06d}"[:digits].ljust(digits, "0")
            return text.encode() + (match[3] or b"")

        def epoch(match: re.Match[bytes]) -> bytes:
            fraction = match[0].partition(b".")[2]
            seconds = str(at_us // 1_000_000).encode()
            if not fraction:
                return seconds
            return seconds + b"." + f"{at_us % 1_000_000:06d}".encode()[: len(fraction)]

        body = _UUID.sub(lambda m: str(uuid.UUID(int=self.rng.getrandbits(128))).encode(), template)
        body = _PREFIXED.sub(lambda m: m[1] + b"_" + self._same_shape(m[0][len(m[1]) + 1 :]), body)
        body = _TOKEN.sub(lambda m: self._same_shape(m[0]), body)
        body = _ISO.sub(iso, body)
        body = _EPOCH.sub(epoch, body)
        return _ADDRESS.sub(address, body)  # last: the ids above never touch an address

    def headers(self, provider: str, at_us: int) -> dict[str, str]:
        seconds = str(at_us // 1_000_000)
        rand = self.rng.randbytes
        if provider == "sendgrid":
            return {
                "user-agent": "SendGrid Event API",
                "x-twilio-email-event-webhook-signature": base64.b64encode(rand(70)).decode(),
                "x-twilio-email-event-webhook-timestamp": seconds,
            }
        if provider == "resend":
            return {
                "user-agent": "Svix-Webhooks/1.56.0",
                "svix-id": "msg_" + "".join(self.rng.choices(_ALNUM, k=27)),
                "svix-timestamp": seconds,
                "svix-signature": "v1," + base64.b64encode(rand(32)).decode(),
            }
        if provider == "postmark":
            trace = str(uuid.UUID(bytes=rand(16)))
            return {"user-agent": "Postmark", "x-pm-webhook-trace-id": trace}
        if provider == "mailtura":
            return {"user-agent": "Mailtura-Webhooks/1.0", "x-mailtura-signature": rand(32).hex()}
        if provider == "ses":
            return {
                "user-agent": "Amazon Simple Notification Service Agent",
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": str(uuid.UUID(bytes=rand(16))),
                "x-amz-sns-topic-arn": TOPIC,
                "x-amz-sns-subscription-arn": f"{TOPIC}:2f5c4e0a-8d1b-4c3e-9a7f-6b2d0e1c3a55",
                "x-amz-sns-rawdelivery": "true",
            }
        if provider == "mailgun":
            return {"user-agent": "mailgun/treq-16.12.0"}
        return {"user-agent": "SMTP2GO"}

    def make(self, count: int) -> Iterator[NewReceipt]:
        at = START_US
        for n in range(count):
            provider = PROVIDERS[n % len(PROVIDERS)]
            content_type, template = self.rng.choice(self.templates[provider])
            at += self.rng.randrange(1, 600_000)
            headers = self.headers(provider, at)
            body = self.body(template, at)
            yield NewReceipt(
                source=provider,
                received_at=at,
                content_type=content_type,
                body=body,
                headers=headers,
                peer=self.rng.choice(PEERS[provider]),
                identity=_identity(provider, body, headers),
            )


def _identity(provider: str, body: bytes, headers: dict[str, str]) -> str | None:
    """The door's identity of a delivery, where the provider's door keeps one."""
    if provider == "ses":
        return headers["x-amz-sns-message-id"]
    if provider == "mailgun":
        token = json.loads(body).get("signature", {}).get("token")
        return str(token) if token else None
    return None


def fingerprint() -> str:
    digest = hashlib.sha256(gen.fingerprint().encode())
    digest.update(Path(__file__).read_bytes())
    for path in sorted(FIXTURES.glob("*/*")):
        if path.suffix in (".json", ".form"):
            digest.update(path.read_bytes())
    for name in ("sqlstore.py", "sqlite.py", "writer.py", "schema.py"):
        digest.update((gen.HERE.parent / "ledger" / name).read_bytes())
    return digest.hexdigest()[:12]


async def _append(path: Path, count: int, progress: Callable[[int], None]) -> None:
    store = await SQLiteStore.open(path)
    try:
        made = Deliveries().make(count)
        done = 0
        while done < count:
            batch = [next(made) for _ in range(min(BATCH, count - done))]
            await asyncio.gather(*(store.append(receipt) for receipt in batch))
            done += len(batch)
            progress(done)
        await store.drain()
    finally:
        await store.close()


def generate(path: Path, count: int) -> float:
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)

    def progress(done: int) -> None:
        if done % 100_000 == 0:
            print(f"    {done:,} appended ({time.perf_counter() - started:.0f} s)", flush=True)

    asyncio.run(_append(path, count, progress))
    return time.perf_counter() - started


def ledger(dest: Path, count: int) -> str:
    """A mixed ledger of `count` receipts at `dest` (from the cache when there)."""
    mark = fingerprint()
    return gen.from_cache(dest, f"mixed-{count}-{mark}.db", mark, lambda p: generate(p, count))


def run(work: Path, count: int, results: Results) -> None:
    """The mixed ledger's size alone, then after its first projection; the same on
    PostgreSQL (migrated, then rebuilt) unless the server cannot be used."""
    db = work / "mixed.db"
    print(f"  mixed ledger of {count:,} receipts …", flush=True)
    print(f"  mixed ledger: {ledger(db, count)}", flush=True)
    alone = dbinfo.size(db)
    seconds = _rebuild(str(db), work, "mixed")
    print(f"  mixed: first projection {seconds:.1f} s", flush=True)
    reads.size(dbinfo.size(db), results, alone, kind="mixed-provider")
    if pg.skipped("mixed"):
        return
    try:
        with pg.database() as url:
            migrate(db, url, count, work)
            seconds = _rebuild(url, work, "mixed-pg")
            print(f"  mixed on PostgreSQL: first projection {seconds:.1f} s", flush=True)
            reads.pg_size(pg.size(url), results, kind="mixed-provider")
    except BenchError as exc:
        results.problem(f"mixed on PostgreSQL: {exc}")


def _rebuild(db: str, work: Path, name: str) -> float:
    """`bounceledger rebuild --db DB` (the first projection); its wall time."""
    log = work / f"rebuild-{name}.log"
    argv = [tool("bounceledger"), "rebuild", "--db", db, "--json"]
    done = run_timed(argv, env=bl_env(db), timeout=3600, log=log)
    if done.returncode != 0:
        raise BenchError(f"rebuild of the mixed ledger failed ({done.returncode}), log {log}")
    return done.seconds
