"""Run a baseline app under uvicorn with exactly the settings `bounceledger serve` uses:
`python -m bench.serve hello|naive --port N` (127.0.0.1 only, one process, no access log).

The HTTP settings are serve's at their defaults (`http_settings`): its protocol class (httptools
with the read deadline, api/protocol.py), its connection limit, keep-alive and request-head
limit. The harness works them out and passes them as options (`http_argv`), so a baseline
does not import the whole CLI at start (that would add to `hello`'s start, the baseline of
the server start figure); without them, they are worked out here.
"""

from __future__ import annotations

import argparse
import importlib

import uvicorn

from bench.procs import HOST


def http_settings() -> dict[str, float]:
    """What api/cli/serve.py passes to uvicorn.run, for the defaults of api.settings (the
    environment of a bench child carries no BOUNCELEDGER_* variable)."""
    from api.cli.serve import KEEP_ALIVE_SECONDS, MAX_HEAD_BYTES, connection_limit
    from api.settings import load_settings

    settings = load_settings({})
    return {
        "read_timeout": settings.read_timeout,
        "limit_concurrency": connection_limit(settings.max_connections),
        "keep_alive": KEEP_ALIVE_SECONDS,
        "max_head_bytes": MAX_HEAD_BYTES,
    }


def http_argv() -> list[str]:
    """`http_settings` as options of `python -m bench.serve`."""
    return [f"--{key.replace('_', '-')}={value!r}" for key, value in http_settings().items()]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("app", choices=["hello", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")  # serve's default
    keys = ("read_timeout", "limit_concurrency", "keep_alive", "max_head_bytes")
    for key in keys:
        parser.add_argument(f"--{key.replace('_', '-')}", type=float)
    args = parser.parse_args()
    given = {key: getattr(args, key) for key in keys}
    if None in given.values():
        defaults = http_settings()
        given = {key: defaults[key] if value is None else value for key, value in given.items()}

    from api.protocol import read_deadline_protocol

    app = importlib.import_module(f"bench.{args.app}_app").app
    # the same call as api/cli/serve.py (keep in step): uvloop, httptools with the read
    # deadline, no access log, no proxy-header rewriting, serve's limits
    uvicorn.run(
        app,
        host=HOST,
        port=args.port,
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level=args.log_level,
        http=read_deadline_protocol(float(given["read_timeout"])),
        limit_concurrency=int(given["limit_concurrency"]),
        timeout_keep_alive=int(given["keep_alive"]),
        h11_max_incomplete_event_size=int(given["max_head_bytes"]),
    )


if __name__ == "__main__":
    main()
