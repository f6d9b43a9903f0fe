"""Run a baseline app under uvicorn with exactly the settings `bounceledger serve` uses:
`python -m bench.serve hello|naive --port N` (127.0.0.1 only, one process, no access log)."""

from __future__ import annotations

import argparse
import importlib

import uvicorn

from bench.procs import HOST


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("app", choices=["hello", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    app = importlib.import_module(f"bench.{args.app}_app").app
    # the same call as api/cli/serve.py (keep in step): loop/http defaults (uvloop,
    # httptools), no access log, no proxy-header rewriting
    uvicorn.run(
        app,
        host=HOST,
        port=args.port,
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
