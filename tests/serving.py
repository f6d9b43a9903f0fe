"""Real `bounceledger serve` processes for tests: a free loopback port, waiting until it
answers, and stopping it whatever happened."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import AUTH


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"serve exited early with {process.returncode}:\n{tail}")
        try:
            response = httpx.get(f"{base}/healthz", headers=AUTH, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        return
    raise AssertionError(f"serve did not answer /healthz within {timeout} s")


def bounceledger_script() -> Path:
    return Path(sys.executable).with_name("bounceledger")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
