"""Log records a test reads, kept however logging is set up (pytest's caplog only sees
what propagates to the root logger at its level)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class _Keep(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def kept_records(name: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """The records of logger `name` at `level` and above while the block runs (the logger
    is opened to `level` for the block if it was set higher)."""
    logger = logging.getLogger(name)
    handler, before = _Keep(level), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
