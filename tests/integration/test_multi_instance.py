"""Three `bounceledger serve` processes on one PostgreSQL database (issue 9).

Webhooks go to all three at once, some bodies to two instances; the instance that
projects is killed with SIGKILL in the middle. Then: every acknowledged delivery is in
the ledger exactly once, the chain verifies, a survivor has taken the projector over
(within 5 s), and every survivor gives the same answer for every address — a
suppression visible on each within a second of the projection catching up.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.postgres import PostgresStore
from tests.conftest import API_KEY, AUTH, SECRET
from tests.serving import bounceledger_script, free_port, stop, wait_healthy

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

INSTANCES = 3
DELIVERIES = 240  # distinct hard bounces, spread over the instances
SHARED = 20  # bodies sent to two instances at once
TAKEOVER_LIMIT = 5.0


def body(n: int) -> bytes:
    return json.dumps(
        {
            "event": "bounce",
            "bounce": "hard",
            "id": f"mi-{n}",
            "email_id": f"mail-{n}",
            "time": "2026-05-04T10:15:02Z",
            "rcpt": f"user{n}@example.org",
        }
    ).encode()


class Instance:
    def __init__(self, url: str, tmp_path: Path, index: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{index}.log"
        env = {
            **os.environ,
            "BOUNCELEDGER_DB": url,
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "BOUNCELEDGER_AUTH_FAILURES": "0",
            "BOUNCELEDGER_PG_POOL_MAX": "4",
        }
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(bounceledger_script()), "serve", "--port", str(self.port)],
            cwd=tmp_path,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/healthz", headers=AUTH, timeout=5).json())

    def close(self) -> None:
        if self.process.poll() is None:
            stop(self.process)
        self.log.close()


@pytest.fixture
def instances(pg_url: str, tmp_path: Path) -> Iterator[list[Instance]]:
    started = [Instance(pg_url, tmp_path, i) for i in range(INSTANCES)]
    try:
        for instance in started:
            wait_healthy(instance.base, instance.process, instance.log_path, timeout=20)
        yield started
    finally:
        for instance in started:
            instance.close()


async def deliver(
    client: httpx.AsyncClient, instance: Instance, payload: bytes
) -> tuple[bytes, int | None]:
    """POST one webhook; (body, seq) when acknowledged, (body, None) otherwise."""
    try:
        response = await client.post(
            f"{instance.base}/v1/webhooks/smtp2go/events",
            params={"token": SECRET},
            content=payload,
            headers={"content-type": "application/json"},
            timeout=10,
        )
    except httpx.TransportError:
        return payload, None
    if response.status_code != 200:
        return payload, None
    return payload, int(response.json()["seq"])


def test_three_instances_one_killed(instances: list[Instance], pg_url: str) -> None:
    leaders = [i for i in instances if i.health()["projecting"]]
    assert len(leaders) == 1, [i.health() for i in instances]
    leader = leaders[0]
    survivors = [i for i in instances if i is not leader]

    async def send_all() -> tuple[list[tuple[bytes, int | None]], float]:
        async with httpx.AsyncClient() as client:
            jobs = []
            for n in range(DELIVERIES):
                jobs.append(deliver(client, instances[n % INSTANCES], body(n)))
            for n in range(DELIVERIES, DELIVERIES + SHARED):  # the same body, two instances
                jobs.append(deliver(client, survivors[0], body(n)))
                jobs.append(deliver(client, survivors[1], body(n)))
            tasks = [asyncio.ensure_future(job) for job in jobs]
            await asyncio.sleep(0.3)  # mid-run
            os.kill(leader.process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            return list(await asyncio.gather(*tasks)), killed_at

    outcomes, killed_at = asyncio.run(send_all())
    leader.process.wait(timeout=5)

    # a survivor takes the projector over
    takeover = None
    while time.monotonic() - killed_at < TAKEOVER_LIMIT + 5:
        if any(i.health()["projecting"] for i in survivors):
            takeover = time.monotonic() - killed_at
            break
        time.sleep(0.05)
    assert takeover is not None, "no survivor took the projector over"
    assert takeover <= TAKEOVER_LIMIT, takeover
    print(f"\nprojector takeover after SIGKILL: {takeover:.2f} s")

    acked = [(payload, seq) for payload, seq in outcomes if seq is not None]
    assert len(acked) > DELIVERIES // 2, "too few deliveries acknowledged to mean anything"

    async def ledger_contents() -> tuple[list[Any], tuple[int, int | None]]:
        store = await PostgresStore.open(pg_url)
        try:
            return await store.read(0, 100_000), await store.verify()
        finally:
            await store.close()

    receipts, (checked, broken) = asyncio.run(ledger_contents())
    assert broken is None
    assert checked == len(receipts)
    assert [r.seq for r in receipts] == list(range(1, len(receipts) + 1))  # dense
    by_body: dict[bytes, list[int]] = {}
    for receipt in receipts:
        by_body.setdefault(receipt.body, []).append(receipt.seq)
    assert all(len(seqs) == 1 for seqs in by_body.values()), "a body was appended twice"
    for payload, seq in acked:  # every 2xx is in the ledger, once, under the seq it was told
        assert by_body.get(payload) == [seq]

    # every survivor serves the same, complete answer once the projection caught up
    head = len(receipts)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(i.health()["projected"] >= head for i in survivors):
            break
        time.sleep(0.05)
    suppressed = {json.loads(payload)["rcpt"] for payload, _ in acked}
    answers = []
    for instance in survivors:
        listed = httpx.get(
            f"{instance.base}/v1/suppressions", params={"limit": 10_000}, headers=AUTH, timeout=10
        ).json()
        answers.append(sorted(item["email"] for item in listed["items"]))
        checked_now = httpx.post(
            f"{instance.base}/v1/suppressions/check",
            json={"emails": sorted(suppressed)},
            headers=AUTH,
            timeout=10,
        ).json()
        assert {item["email"] for item in checked_now["suppressed"]} == suppressed
    assert answers[0] == answers[1]
    assert suppressed <= set(answers[0])

    # a suppression acknowledged by one instance is visible on the other within 1 s
    fresh = body(10_000)
    email = json.loads(fresh)["rcpt"]
    _, seq = asyncio.run(_deliver_once(survivors[0], fresh))
    assert seq is not None
    acked_at = time.monotonic()
    while True:
        state = httpx.get(f"{survivors[1].base}/v1/suppressions/{email}", headers=AUTH, timeout=5)
        if state.status_code == 200 and state.json()["suppressed"]:
            break
        assert time.monotonic() - acked_at < 5, state.text
        time.sleep(0.01)
    visible = time.monotonic() - acked_at
    print(f"visible on another instance {visible * 1000:.0f} ms after the 2xx")
    assert visible <= 1.0, visible


async def _deliver_once(instance: Instance, payload: bytes) -> tuple[bytes, int | None]:
    async with httpx.AsyncClient() as client:
        return await deliver(client, instance, payload)
