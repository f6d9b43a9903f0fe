"""The three servers under test, started the same way: bounceledger and the baselines."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bench.procs import HOST, PYTHON, Server, free_port, server, tool
from bench.serve import http_argv

SECRET = "bench-" + secrets.token_hex(16)  # SMTP2GO_WEBHOOK_SECRET for this run
API_KEY = "bench-" + secrets.token_hex(16)
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WEBHOOK = "/v1/webhooks/smtp2go/events"


def bl_env(db: Path | str) -> dict[str, str]:
    """The environment of a bounceledger child on `db` (a SQLite file or a postgresql://
    URL): this run's secret and key, nothing inherited from the caller's BOUNCELEDGER_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOUNCELEDGER_", "SES_"))}
    env.update(
        SMTP2GO_WEBHOOK_SECRET=SECRET,
        BOUNCELEDGER_API_KEYS=f"bench:{API_KEY}",
        BOUNCELEDGER_DB=str(db),
        SES_SNS_FETCH="0",
    )
    return env


def bl_argv(db: Path | str, port: int) -> list[str]:
    # the default log level (info), as a user runs it: one access-log line per request,
    # to stderr, which `server` sends to the server's log file (the baselines log nothing)
    return [tool("bounceledger"), "serve", "--host", HOST, "--port", str(port), "--db", str(db)]


@contextlib.contextmanager
def bounceledger(
    db: Path | str,
    work: Path,
    *,
    timeout: float = 120.0,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """`bounceledger serve` on a fresh port, ready once /healthz answers 2xx; `db` is a
    SQLite file or a postgresql:// URL (several servers may share one); `options` are
    more of serve's (`--policy FILE`), `env` more of its environment."""
    port = free_port()
    with server(
        "bounceledger",
        [*bl_argv(db, port), *options],
        port,
        log=work / f"serve-{port}.log",
        env={**bl_env(db), **(env or {})},
        ready_path="/healthz",
        headers=AUTH,
        timeout=timeout,
    ) as srv:
        yield srv


@contextlib.contextmanager
def baseline(name: str, work: Path, *, timeout: float = 60.0) -> Iterator[Server]:
    """`hello` or `naive` under uvicorn with `bounceledger serve`'s HTTP settings at their
    defaults (bench/serve.py), without its access log."""
    port = free_port()
    env = dict(os.environ, BENCH_NAIVE_DB=str(work / f"naive-{port}.db"))
    with server(
        name,
        [PYTHON, "-m", "bench.serve", name, "--port", str(port), *_http_argv()],
        port,
        log=work / f"{name}-{port}.log",
        env=env,
        ready_path=WEBHOOK,
        ready_method="POST",
        timeout=timeout,
    ) as srv:
        yield srv


@functools.cache
def _http_argv() -> list[str]:
    return http_argv()


def started(
    name: str, work: Path, db: Path | str | None = None
) -> contextlib.AbstractContextManager[Server]:
    """The named server (`hello`, `naive`, or `bounceledger` on `db`)."""
    if name == "bounceledger":
        assert db is not None
        return bounceledger(db, work)
    return baseline(name, work)
