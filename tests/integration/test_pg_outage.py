"""The database goes away and comes back (issue 9, item 8).

The instance talks to PostgreSQL through a TCP relay the test can cut: while it is cut,
webhooks are answered 503 with Retry-After (the provider retries: never a 2xx for what
was not committed) and /readyz is 503; when it is back, the instance recovers by itself
— no restart — and what was refused was not appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from api.settings import load_settings
from ledger import open_store
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import API_KEY, AUTH, SECRET

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


class Relay:
    """Forwards loopback TCP connections to the database until `cut()`, which closes
    every open one and refuses new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relayed(pg_url: str) -> Iterator[tuple[Relay, str]]:
    parts = urlsplit(pg_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = (
        f"{parts.username}@127.0.0.1:{relay.port}" if parts.username else f"127.0.0.1:{relay.port}"
    )
    try:
        yield relay, urlunsplit(parts._replace(netloc=netloc))
    finally:
        relay.close()


async def readiness(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status_code, dict(response.json())


async def test_a_database_outage_is_503_and_the_instance_recovers_by_itself(
    make_client: Any, relayed: tuple[Relay, str], pg_url: str
) -> None:
    relay, url = relayed
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": url,
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        }
    )
    async with make_client(settings=settings, policy=None) as client:
        assert (await post_webhook(client, hard_bounce("before@example.org"))).status_code == 200

        relay.cut()
        refused = await post_webhook(client, hard_bounce("during@example.org"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"].isdigit()
        status, body = await readiness(client)
        assert (status, body["ready"]) == (503, False)
        assert body["failing"] in ("ledger_reachable", "ledger_writable")
        query = await client.get("/v1/suppressions/before@example.org", headers=AUTH)
        assert query.status_code == 503

        relay.restore()
        deadline = time.monotonic() + 10
        while (await readiness(client))[0] != 200:
            assert time.monotonic() < deadline, await readiness(client)
            await asyncio.sleep(0.1)
        after = await post_webhook(client, hard_bounce("after@example.org"))
        assert after.status_code == 200, after.text
        while True:  # and the projection resumes
            state = await client.get("/v1/suppressions/after@example.org", headers=AUTH)
            if state.status_code == 200 and state.json()["suppressed"]:
                break
            assert time.monotonic() < deadline, state.text
            await asyncio.sleep(0.05)

    store = await open_store(pg_url)
    try:
        bodies = [receipt.body for receipt in await store.read(0, 100)]
    finally:
        await store.close()
    assert bodies == [hard_bounce("before@example.org"), hard_bounce("after@example.org")]
