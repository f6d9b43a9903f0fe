"""Issue 13, items 6, 7 and 15 against a real `bounceledger serve` process on loopback:
slowly trickling clients are answered 408 and disconnected within the read timeout, so
hundreds of them (more than the process has file descriptors for) no longer make
/healthz unreachable; and the text log is one line per request, unmatched routes
included, whatever the path holds. Every wait is bounded."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.conftest import API_KEY, AUTH, SECRET
from tests.serving import bounceledger_script, free_port, stop, wait_healthy

READ_TIMEOUT = 1.0
SLACK = 3.0  # seconds of scheduling slack on a loaded two-core machine


@contextlib.contextmanager
def _serve(
    tmp_path: Path, *args: str, nofile: int | None = None
) -> Iterator[tuple[str, int, Path]]:
    """A `serve` process with a 1 s read timeout (and optionally a low `ulimit -n`)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        "BOUNCELEDGER_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    preexec: Callable[[], None] | None = None
    if nofile is not None:
        limit = nofile

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    log_path = tmp_path / "serve.log"
    command = [
        str(bounceledger_script()),
        "serve",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "l.db"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,  # only setrlimit, before exec
        )
        try:
            wait_healthy(base, process, log_path, timeout=20)
            yield base, port, log_path
        finally:
            stop(process)


def _trickle(port: int, head: bytes, drip: bytes, budget: float) -> tuple[bytes, bool, float]:
    """Send `head`, then `drip` every 0.2 s for up to `budget` seconds. What came back,
    whether the server closed the connection, and after how long."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        while time.monotonic() - started < budget:
            readable, _, _ = select.select([sock], [], [], 0.2)
            try:
                if readable:
                    data = sock.recv(65536)
                    if not data:
                        return received, True, time.monotonic() - started
                    received += data
                else:
                    sock.sendall(drip)
            except (ConnectionResetError, BrokenPipeError):
                return received, True, time.monotonic() - started
    return received, False, time.monotonic() - started


def test_a_trickled_request_head_is_answered_408_and_closed(tmp_path: Path) -> None:
    with _serve(tmp_path) as (_, port, _):
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        received, closed, took = _trickle(port, head, b"X-Slow: 1\r\n", READ_TIMEOUT + SLACK)
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert closed
    assert took < READ_TIMEOUT + SLACK


def test_a_trickled_body_is_answered_408_and_closed(tmp_path: Path) -> None:
    with _serve(tmp_path) as (_, port, log_path):
        head = (
            b"POST /v1/webhooks/smtp2go/events HTTP/1.1\r\nHost: t\r\n"
            b"Authorization: Bearer " + SECRET.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        )
        received, closed, took = _trickle(port, head, b" ", READ_TIMEOUT + SLACK)
        time.sleep(0.3)
        log = log_path.read_text(errors="replace")
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"nosniff" in received.lower()
    assert closed
    assert took < READ_TIMEOUT + SLACK
    assert "POST /v1/webhooks/smtp2go/events 408" in log


def test_a_body_still_trickling_after_the_answer_is_cut_off(tmp_path: Path) -> None:
    with _serve(tmp_path) as (_, port, _):
        head = (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + API_KEY.encode()
            + b"\r\nContent-Length: 100000\r\n\r\n"
        )
        received, closed, took = _trickle(port, head, b"x", 2 * READ_TIMEOUT + SLACK)
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert closed
    assert took < 2 * READ_TIMEOUT + SLACK


def test_healthz_answers_while_hundreds_of_connections_trickle(tmp_path: Path) -> None:
    # The review's case: 300 half-sent requests, a server allowed 256 open files.
    count, nofile = 300, 256
    with _serve(tmp_path, nofile=nofile) as (base, port, _):
        socks: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"POST /v1/webhooks/smtp2go/events HTTP/1.1\r\nHost: t\r\n")
                sock.setblocking(False)
                socks.append(sock)
            started = time.monotonic()
            answered = _healthz_within(base, socks, budget=4 * READ_TIMEOUT + 2 * SLACK)
            took = time.monotonic() - started
            closed = sum(1 for sock in socks if sock.fileno() == -1)
        finally:
            for sock in socks:
                sock.close()
    assert answered, f"/healthz gave no 200 within {took:.1f} s"
    assert took < 4 * READ_TIMEOUT + 2 * SLACK
    assert closed >= count * 0.9, f"only {closed} of {count} trickling connections were ended"


def _healthz_within(base: str, socks: list[socket.socket], budget: float) -> bool:
    """Keep every socket trickling a header line every 0.5 s (closing those the server
    ended) while asking /healthz; True once it answers 200."""
    deadline = time.monotonic() + budget
    last_drip = 0.0
    answered = False
    while time.monotonic() < deadline:
        if time.monotonic() - last_drip >= 0.5:
            last_drip = time.monotonic()
            for sock in socks:
                if sock.fileno() != -1:
                    _drip(sock)
        if not answered:
            with contextlib.suppress(httpx.TransportError):
                answered = httpx.get(f"{base}/healthz", headers=AUTH, timeout=0.5).is_success
        if answered and all(sock.fileno() == -1 for sock in socks):
            break
        time.sleep(0.05)
    return answered


def _drip(sock: socket.socket) -> None:
    try:
        if sock.recv(65536) == b"":
            sock.close()
            return
    except BlockingIOError:
        pass
    except OSError:
        sock.close()
        return
    try:
        sock.send(b"X-Slow: 1\r\n")
    except BlockingIOError:
        pass
    except OSError:
        sock.close()


def test_text_logs_hold_one_line_per_request_and_log_unmatched_routes(tmp_path: Path) -> None:
    forged = "2026-12-01 13:22:00,000 WARNING bounceledger: projection rebuilt by operator"
    target = "/v1/suppressions/x%0a" + forged.replace(" ", "%20")
    with _serve(tmp_path, "--log-format", "text") as (base, port, log_path):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 401")
        assert httpx.get(f"{base}/admin?token=query-secret-123", timeout=5).status_code == 404
        assert httpx.delete(f"{base}/healthz", headers=AUTH, timeout=5).status_code == 405
        time.sleep(0.5)
        lines = log_path.read_text(errors="replace").splitlines()
    assert not any(line.startswith("2026-12-01 13:22:00,000") for line in lines), lines
    assert any("GET /v1/suppressions/x\\n2026-12-01 13:22:00,000 WARNING" in x for x in lines)
    assert any(line.endswith("bounceledger.access: GET /admin 404") for line in lines), lines
    assert any(line.endswith("bounceledger.access: DELETE /healthz 405") for line in lines)
    assert not any("query-secret-123" in line for line in lines)
