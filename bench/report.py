"""Figures beside their baselines: one row per figure, a table on stdout, JSON on disk."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One figure: bounceledger's value, the baseline measured in the same run, the target.

    `ratio` is value / baseline. `target` is (op, number, applies_to) where op is ">=",
    "<=" or "==" and applies_to is "value" or "ratio"; `met` is None when there is no
    target (or nothing to compare it with).
    """

    section: str
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: tuple[str, float, str] | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, number, applies = self.target
        subject = self.ratio if applies == "ratio" else self.value
        if subject is None:
            return None
        if op == "==":
            return subject == number
        return subject >= number if op == ">=" else subject <= number


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def problem(self, text: str) -> None:
        self.problems.append(text)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _target(row: Row) -> str:
    if row.target is None:
        return ""
    op, number, applies = row.target
    shown = f"{number:g}" if applies == "ratio" else _num(number, row.unit)
    return f"{'ratio ' if applies == 'ratio' else ''}{op} {shown}"


def table(results: Results) -> str:
    header = ("figure", "bounceledger", "baseline", "ratio", "target", "met")
    lines = []
    for row in results.rows:
        base = f"{_num(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline_name else ""
        met = {None: "", True: "yes", False: "NO"}[row.met]
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        lines.append(
            (
                f"{row.section}: {row.figure}",
                _num(row.value, row.unit),
                base,
                ratio,
                _target(row),
                met,
            )
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    out = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, tuple("-" * w for w in widths), *lines]
    ]
    notes = [f"  [{row.section}: {row.figure}] {row.note}" for row in results.rows if row.note]
    if notes:
        out += ["", "notes:", *notes]
    if results.problems:
        out += ["", "PROBLEMS:", *(f"  ! {p}" for p in results.problems)]
    return "\n".join(line.rstrip() for line in out)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def write_json(results: Results, argv: list[str]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m bench " + " ".join(argv),
        "machine": machine(),
        "rows": [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in results.rows],
        "extra": results.extra,
        "problems": results.problems,
    }
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
