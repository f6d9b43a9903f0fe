"""Child processes: timed runs with their own peak RSS, servers that always get stopped.

Every child runs in its own session and is ended by its pid in a `finally`: a timed run
by SIGINT, then SIGTERM, then SIGKILL to its process group; a server by SIGTERM (what a
process manager sends), then SIGKILL. Nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A step failed or ran out of time; the message says which and where its log is."""


def tool(name: str) -> str:
    """A console script of this venv (bounceledger, py-spy), else the one on PATH."""
    local = BIN / name
    return str(local) if local.exists() else name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Timed:
    """A finished child: exit status, wall seconds, peak RSS (MB) of that child alone."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_timed(
    argv: Sequence[str],
    *,
    timeout: float,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Timed:
    """Run `argv` to completion within `timeout` s; its stdout is returned, stderr is in `log`.

    Run under bench/rss.py, which times it and takes its peak RSS from wait4(): spawned
    from this process directly, the child's peak would include ours (see bench/rss.py).
    """
    out_path, rss_path = log.with_suffix(".out"), log.with_suffix(".rss.json")
    rss_path.unlink(missing_ok=True)
    wrapped = [PYTHON, "-m", "bench.rss", str(rss_path), "--", *argv]
    with out_path.open("wb") as out, log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=err,
            env=dict(env or os.environ),
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"{' '.join(map(str, argv[:2]))} exceeded {timeout:.0f} s (log {log})"
            ) from None
        finally:
            _kill_group(proc)
    seconds = time.perf_counter() - started
    text = out_path.read_text(errors="replace")
    try:
        usage = json.loads(rss_path.read_text())
    except (OSError, ValueError):
        raise BenchError(f"{argv[0]}: no exit report from bench.rss (log {log})") from None
    return Timed(
        usage["returncode"], usage.get("seconds", seconds), usage["peak_rss_kb"] / 1024, text
    )


RUN_STOP = ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))
SERVER_STOP = ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))


def _kill_group(
    proc: subprocess.Popen[bytes],
    steps: Sequence[tuple[signal.Signals, float]] = RUN_STOP,
) -> signal.Signals | None:
    """Signal the child's process group, each signal in turn until it exits within the
    grace that follows; the signal after which it exited (None: it had exited already)."""
    for sig, grace in steps:
        if proc.poll() is not None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the child's own session: only what we started
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        if proc.poll() is not None:
            return sig
    return None


def cpu_seconds(roots: Iterable[int]) -> float:
    """User + system CPU seconds used so far by the processes `roots` and every descendant
    of theirs alive now (found through the ppid of /proc/*/stat), with what each one's
    reaped children used (cutime, cstime): a child that exits and is reaped between two
    readings is still counted, in its parent's. Threads are in their process's figures."""
    tree: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:  # gone since the listing
            continue
        # `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after
        # its last ")"; fields[0] is field 3 (state), utime..cstime are fields 14-17
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(entry.name)
        tree[int(fields[1])].append(pid)
        ticks[pid] = sum(int(x) for x in fields[11:15])
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in ticks:
            continue
        seen.add(pid)
        total += ticks[pid]
        todo += tree[pid]
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running HTTP server child on 127.0.0.1."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # perf_counter() just before the spawn
    ready_seconds: float = 0.0  # from the spawn until the ready path first answered 2xx
    # after it is stopped: the signal it exited after (SIGTERM: a graceful stop; SIGKILL:
    # it did not stop within SERVER_STOP's grace), None if it had exited by itself
    stopped_by: signal.Signals | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def server(
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    ready_method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[Server]:
    """Start a server, wait until `ready_path` answers 2xx, yield it, always stop it
    (SIGTERM, SIGKILL after 10 s; `Server.stopped_by` says which it took)."""
    with log.open("ab") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env=dict(env or os.environ),
            cwd=ROOT,
            start_new_session=True,
        )
    srv = Server(name, port, proc, log, started)
    try:
        srv.ready_seconds = wait_ready(
            srv, ready_path, method=ready_method, headers=headers, timeout=timeout
        )
        yield srv
    finally:
        srv.stopped_by = _kill_group(proc, SERVER_STOP)


def wait_ready(
    srv: Server,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> float:
    """Poll until `path` answers 2xx; returns seconds since the spawn."""
    while True:
        if srv.proc.poll() is not None:
            raise BenchError(f"{srv.name} exited with {srv.proc.returncode} (log {srv.log})")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=2)
            try:
                conn.request(
                    method,
                    path,
                    body=b"" if method == "POST" else None,
                    headers=dict(headers or {}),
                )
                response = conn.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    return time.perf_counter() - srv.started
                if response.status not in (502, 503):
                    raise BenchError(
                        f"{srv.name}: {method} {path} answered {response.status} (log {srv.log})"
                    )
            finally:
                conn.close()
        if time.perf_counter() - srv.started > timeout:
            raise BenchError(f"{srv.name} not ready within {timeout:.0f} s (log {srv.log})")
        time.sleep(0.005)
