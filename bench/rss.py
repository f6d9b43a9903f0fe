"""`python -m bench.rss OUT -- ARGV…`: run ARGV, write its exit status and peak RSS to OUT.

Why a wrapper: Linux carries a process's peak RSS across fork and exec, so a child
spawned by the harness (hundreds of MB after generating a ledger) would report at least
the harness's size. Spawned from this small process instead, the figure is the
command's own peak (floored at this wrapper's ~10 MB).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    out, separator, command = argv[0], argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: python -m bench.rss OUT -- ARGV…")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    # The harness signals the whole process group: the command gets it directly; this
    # wrapper outlives it to report (set after the spawn, so the command is not affected).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "w") as file:
        json.dump({"returncode": code, "seconds": seconds, "peak_rss_kb": usage.ru_maxrss}, file)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
