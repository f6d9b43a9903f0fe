"""Load from `wrk` on loopback: fixed connections and threads, fixed duration, the Lua
script `post_smtp2go.lua` (realistic SMTP2GO form bodies, each one different)."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procs import HOST, run_timed

SCRIPT = Path(__file__).resolve().parent / "post_smtp2go.lua"
PATH = "/v1/webhooks/smtp2go/events"


def require_wrk() -> str:
    """The wrk binary; without it, say how to install it and exit non-zero."""
    found = shutil.which("wrk")
    if found is None:
        print(
            "wrk is not installed; the ingest benchmark needs it (Debian/Ubuntu package):\n"
            "    sudo apt-get install -y wrk",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return found


@dataclass(frozen=True)
class Load:
    """What wrk counted: requests completed, of which non-2xx/3xx, socket errors, latency."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    port: int,
    *,
    seconds: float,
    connections: int,
    threads: int,
    nonce: int,
    secret: str | None,
    log: Path,
) -> Load:
    """One wrk run against 127.0.0.1:port; bounded by `seconds` + 30 s."""
    argv = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        f"http://{HOST}:{port}{PATH}",
        "--",
        str(nonce),
        secret or "-",
    ]
    done = run_timed(argv, timeout=seconds + 30, log=log)
    log.with_suffix(".out").replace(log.with_suffix(".wrk.txt"))
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} (log {log})")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non2xx=data["non2xx"],
        socket_errors={k: data[k] for k in ("connect", "read", "write", "timeout") if data[k]},
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )
