"""Structured logs: one JSON object per line; request lines carry no body, query, secret
or email address (an address in a path is logged as `<email>`, api/paths.py `loggable`).

A record is one line whatever it holds: control characters (C0, DEL, C1, and the Unicode
line and paragraph separators) in any field, a URL path included, are escaped, so text
taken from a request cannot forge a log line or reach a terminal as an escape sequence.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

import msgspec

# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_STANDARD.add("color_message")  # uvicorn's ANSI-coloured copy of the message
_encode = msgspec.json.Encoder().encode

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What JSON lets through raw inside strings (msgspec escapes C0 itself): only ever found
# inside a string, so replacing it by its \u escape keeps the line valid, same value.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """`text` with every control character written as a visible escape (`\\n`, `\\x1b`)."""
    return _CONTROLS.sub(_escaped, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


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
        return _JSON_RAW.sub(_json_escape, _encode(entry).decode())


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, one line per record (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


ACCESS = logging.getLogger("bounceledger.access")


class AccessLog:
    """One line per HTTP request: method, path (addresses replaced by `<email>`, never the
    query), status, milliseconds, peer.

    Through `logging` it costs a LogRecord, the handler chain and a formatter that walks
    the record's attributes, a share of the event loop's time under load worth saving
    (bench/README.md, "Measured reasons"). While the JSON handler `configure` installed
    is the only one, the line is encoded here and written to that handler's stream in
    one call: the same line JsonFormatter would write for the same record
    (tests/unit/test_access_log.py). Otherwise — text logs, a handler added since
    (pytest's caplog), a level above INFO — it goes through `logging` as any other
    record.
    """

    def __init__(self) -> None:
        self._handler: logging.StreamHandler[Any] | None = None
        self._second = -1
        self._prefix = ""

    def install(self, handler: logging.StreamHandler[Any] | None) -> None:
        """Write straight to `handler`'s stream while it is the root's only handler."""
        self._handler = handler

    def request(self, method: str, path: str, status: int, ms: float, peer: str | None) -> None:
        """Log one request (`path` already escaped)."""
        if not ACCESS.isEnabledFor(logging.INFO):
            return
        handler = self._handler
        root = logging.root.handlers
        if handler is None or len(root) != 1 or root[0] is not handler or ACCESS.handlers:
            ACCESS.info(
                "%s %s %d",
                method,
                path,
                status,
                extra={"method": method, "path": path, "status": status, "ms": ms, "peer": peer},
            )
            return
        now = time.time()
        entry = {
            "ts": self._ts(now),
            "level": "INFO",
            "logger": "bounceledger.access",
            "msg": f"{method} {path} {status}",
            "method": method,
            "path": path,
            "status": status,
            "ms": ms,
            "peer": peer,
        }
        line = _JSON_RAW.sub(_json_escape, _encode(entry).decode()) + handler.terminator
        with handler.lock or _NO_LOCK:
            handler.stream.write(line)
            handler.flush()

    def _ts(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


_NO_LOCK = contextlib.nullcontext()
access_log = AccessLog()

refusals_log = logging.getLogger("bounceledger.refusals")
# The refusals of the request being served, as (parameter, why, value a log may show):
# api/app.py's `http_edge` gives each request a list here and logs what was refused in
# one line; the error handlers, and pages that answer a 400 themselves, add to it (`note`).
Refusal = tuple[str | None, str, str | None]
REFUSALS: ContextVar[list[Refusal] | None] = ContextVar("bounceledger_refusals", default=None)


def note(param: str | None, why: str, value: str | None = None) -> None:
    """Note that the request being served refuses a query or path value (logged once,
    by `http_edge`, when the answer is a 400)."""
    noted = REFUSALS.get()
    if noted is not None:
        noted.append((param, why, value))


# A refused value is shown only when it cannot be an address or a secret: a number, a
# day or a time (a cursor's number, without its address), and never beyond 40 characters.
_SHOWABLE = re.compile(r"[-+0-9.:TZ ]{1,200}")
# A value as a message quotes it (repr, or a validator's 'x'): from the first quote to the
# last, whatever quotes the value itself holds.
_QUOTED = re.compile(r"['\"].*['\"]", re.DOTALL)
_ADDRESS = re.compile(r"\S*@\S*")
SHOWN = 40


def shown_value(value: str | None) -> str | None:
    """What a refusal line may show of a refused value: a number, a day or a time (at
    most 40 characters), or nothing."""
    if value is None or not _SHOWABLE.fullmatch(value):
        return None
    return value[:SHOWN] + ("…" if len(value) > SHOWN else "")


def refused(method: str, path: str, param: str | None, why: str, value: str | None = None) -> None:
    """One line saying a request's query or path value was refused (400): the route
    (`path` escaped, addresses already replaced), the parameter, and why — the reason's
    quoted text and anything holding an `@` elided, as is a value that could be an address
    or a secret (`shown_value`)."""
    reason = _ADDRESS.sub("<email>", _QUOTED.sub("…", why))[:200]
    name = param if param is not None else "a value"
    value = shown_value(value)
    refusals_log.info(
        "%s %s: refused %s: %s%s",
        method,
        path,
        name,
        escape_controls(reason),
        "" if value is None else f" ({value})",
        extra={"method": method, "path": path, "param": param, "why": reason, "value": value},
    )


def configure(level: str = "info", *, json: bool = True) -> None:
    """Send every logger (uvicorn's included) to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    access_log.install(handler if json else None)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiosqlite logs every statement with its parameters at DEBUG: receipt bodies and
    # recipient addresses have no place in logs, whatever the level.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
    # httpx logs every request's URL at INFO: an outbound webhook endpoint's URL may hold
    # a token (api/push/deliverer.py names endpoints by id instead).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
