"""Structured logs: one JSON object per line; request lines carry no body, query or secret."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec

# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_STANDARD.add("color_message")  # uvicorn's ANSI-coloured copy of the message
_encode = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", …extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry).decode()


def configure(level: str = "info", *, json: bool = True) -> None:
    """Send every logger (uvicorn's included) to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiosqlite logs every statement with its parameters at DEBUG: receipt bodies and
    # recipient addresses have no place in logs, whatever the level.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
