"""Recipient addresses and event times as the projections compare them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NUMBER = re.compile(r"^\d{9,16}(?:\.\d+)?$")
# The times a datetime can show (years 1 to 9999, UTC): anything outside is unreadable,
# not a value to store (it may not fit a SQLite INTEGER) or to fail on when shown.
_EARLIEST = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LATEST = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def normalize_recipient(address: str) -> str:
    """Trim spaces and angle brackets, compare case-insensitively."""
    return address.strip().strip("<>").strip().lower()


def parse_time(text: str | None) -> int | None:
    """An event time as microseconds since the Unix epoch (UTC), or None if unreadable.

    Takes ISO-8601 (a missing offset means UTC) and epoch seconds or milliseconds; a
    time outside years 1 to 9999 UTC is unreadable.
    """
    if not text:
        return None
    text = text.strip()
    if _EPOCH_NUMBER.match(text):
        seconds = float(text)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        micros = round(seconds * 1_000_000)
    else:
        try:
            micros = to_micros(datetime.fromisoformat(text))
        except ValueError:
            return None
    return micros if _EARLIEST <= micros <= _LATEST else None


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def format_time(micros: int | None) -> str | None:
    """ISO-8601 UTC text for a microsecond timestamp."""
    if micros is None:
        return None
    moment = _EPOCH + timedelta(microseconds=micros)  # exact: no float rounding
    spec = "seconds" if micros % 1_000_000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
