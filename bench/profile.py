"""Where the time goes: py-spy (installed by hand, `pip install py-spy`, not a dependency).

- A CLI child (the rebuild) is sampled whole: every thread, idle or not (`--idle`), so
  the shares are of wall time; the aiosqlite thread waiting for work shows as
  `_connection_worker_thread (aiosqlite/core.py:59)` (its `tx.get()`), running SQL as
  line 63.
- A running server is sampled with `--gil`: only the thread holding the GIL, i.e. the
  Python CPU time that a single event loop is bound by (`--nonblocking`, not paused).

The collapsed stacks become, per thread, the top functions by self time (aiosqlite's
worker with its line, so waiting and working differ) and our own functions (api/,
ledger/, projections/) by inclusive time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import BIN, ROOT
from bench.report import Results

RATE = 200
TOP = 12
_OURS = re.compile(r"\((?:api|ledger|projections)/")
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    local = BIN / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def wrap(argv: list[str], out: Path) -> list[str]:
    """`argv` run under py-spy record (all threads, idle included), raw stacks to `out`."""
    return [
        py_spy(),
        "record",
        "--format",
        "raw",
        "--rate",
        str(RATE),
        "--threads",
        "--idle",
        "-o",
        str(out),
        "--",
        *argv,
    ]


@dataclass
class Attached:
    proc: subprocess.Popen[bytes]
    out: Path
    seconds: float


def attach(pid: int, seconds: float, base: Path) -> Attached:
    """Sample the GIL holder of a running process for `seconds`, without pausing it."""
    out = base.with_suffix(".txt")
    whole = max(1, round(seconds))
    argv = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(whole),
        "--rate",
        str(RATE),
        "--gil",
        "--nonblocking",
        "--threads",
        "--format",
        "raw",
        "-o",
        str(out),
    ]
    with base.with_suffix(".log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    return Attached(proc, out, whole)


def finish(spy: Attached, results: Results) -> dict[str, Any]:
    try:
        spy.proc.wait(timeout=spy.seconds + 60)
    except subprocess.TimeoutExpired:
        spy.proc.kill()
        spy.proc.wait()
    if not spy.out.exists():
        results.problem(f"py-spy wrote no profile ({spy.out.with_suffix('.log')})")
        return {}
    summary = summarize(spy.out, per_thread_wall=False)
    summary["gil_busy"] = summary["samples"] / (RATE * spy.seconds)
    return summary


def _label(frame: str, keep_line: bool) -> str:
    frame = frame.strip()
    if not keep_line:
        frame = _LINE.sub(")", frame)
    for prefix in (f"{ROOT}/.venv/lib/", f"{ROOT}/", "/usr/lib/"):
        frame = frame.replace(prefix, "")
    return re.sub(r"python3\.\d+/(site-packages/)?", "", frame)


def _thread_name(frame: str) -> str:
    """`thread (0x7f…): Thread-1 (_connection_worker_thread)` -> `Thread-1 (…)`; py-spy has
    no name for the main thread until `threading` is imported: that is MainThread too."""
    name = re.sub(r"^thread \(\w+\):?", "", frame).strip()
    return name or "MainThread"


def summarize(path: Path, top: int = TOP, *, per_thread_wall: bool = True) -> dict[str, Any]:
    """Per thread: samples, top self frames, top inclusive frames of our code.

    Shares are of that thread's samples (its wall time, when idle samples are recorded)
    with `per_thread_wall`, else of all samples (GIL-holder profiles: shares of CPU).
    """
    own: dict[str, Counter[str]] = defaultdict(Counter)
    ours: dict[str, Counter[str]] = defaultdict(Counter)
    per_thread: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        thread = "all"
        if frames[0].startswith("thread ("):
            thread = _thread_name(frames.pop(0))
        total += count
        per_thread[thread] += count
        leaf = frames[-1] if frames else "(no Python frame)"
        own[thread][_label(leaf, keep_line="aiosqlite/core.py" in leaf)] += count
        for name in {_label(f, keep_line=False) for f in frames}:
            if _OURS.search(name):
                ours[thread][name] += count
    threads = {}
    for thread, n in per_thread.most_common():
        base = n if per_thread_wall else total
        threads[thread] = {
            "share": n / total,
            "self": [(k, v / base) for k, v in own[thread].most_common(top)],
            "ours_inclusive": [(k, v / base) for k, v in ours[thread].most_common(top)],
        }
    return {
        "samples": total,
        "file": str(path),
        "per_thread_wall": per_thread_wall,
        "threads": threads,
    }


def show(title: str, summary: dict[str, Any]) -> str:
    if not summary.get("samples"):
        return f"{title}: no samples"
    head = f"{title}: {summary['samples']} samples, {summary['file']}"
    if "gil_busy" in summary:
        head += f"; GIL held {summary['gil_busy']:.0%} of the time (GIL-holder samples only)"
    lines = [head]
    for thread, data in summary["threads"].items():
        if data["share"] < 0.02:
            continue
        of = "of its wall time" if summary.get("per_thread_wall") else "of all samples"
        lines.append(f"  thread {thread}: {data['share']:.1%} of samples; shares below {of}")
        lines.append("    top by self time:")
        lines += [f"      {share:6.1%}  {name}" for name, share in data["self"]]
        if data["ours_inclusive"]:
            lines.append("    our functions by inclusive time:")
            lines += [f"      {share:6.1%}  {name}" for name, share in data["ours_inclusive"]]
    return "\n".join(lines)
