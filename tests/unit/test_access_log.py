"""The access log's direct JSON line is the line JsonFormatter writes for the same
record, and it steps aside for text logs, an added handler or a higher level."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import logs
from api.logs import JsonFormatter, access_log

TS = re.compile(r'^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",')


@contextlib.contextmanager
def configured(monkeypatch: pytest.MonkeyPatch, *, json: bool) -> Iterator[io.StringIO]:
    """`logs.configure` (info) writing to a StringIO; logging restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    logs.configure("info", json=json)
    try:
        yield out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        access_log.install(None)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """JSON logs into a StringIO, as `bounceledger serve` configures them."""
    with configured(monkeypatch, json=True) as out:
        yield out


def formatted(method: str, path: str, status: int, ms: float, peer: str | None) -> str:
    """What the logging route writes for the same request."""
    record = logging.LogRecord("bounceledger.access", logging.INFO, __file__, 1,
                               "%s %s %d", (method, path, status), None)  # fmt: skip
    for name, value in {"method": method, "path": path, "status": status, "ms": ms,
                        "peer": peer}.items():  # fmt: skip
        setattr(record, name, value)
    return JsonFormatter().format(record)


def without_ts(line: str) -> str:
    assert TS.match(line), line
    return TS.sub("", line)


requests = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.text().map(lambda text: logs.escape_controls("/" + text)),
    st.integers(100, 599),
    st.floats(0, 1e5, allow_nan=False).map(lambda ms: round(ms, 2)),
    st.none() | st.ip_addresses().map(str),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # emptied per input
@given(request=requests)
def test_the_direct_line_is_the_formatter_line(
    stream: io.StringIO, request: tuple[str, str, int, float, str | None]
) -> None:
    stream.seek(0)
    stream.truncate()
    access_log.request(*request)
    written = stream.getvalue()
    assert written.endswith("\n")
    assert written.count("\n") == 1  # one line, whatever the path
    assert without_ts(written.rstrip("\n")) == without_ts(formatted(*request))
    assert json.loads(written)["path"] == request[1]


def test_a_handler_added_since_hears_the_record(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bounceledger.access"):
        access_log.request("POST", "/v1/webhooks/smtp2go/events", 200, 1.5, "127.0.0.1")
    [record] = [r for r in caplog.records if r.name == "bounceledger.access"]
    assert record.getMessage() == "POST /v1/webhooks/smtp2go/events 200"
    assert record.__dict__["peer"] == "127.0.0.1"


def test_nothing_is_written_above_info(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    access_log.request("GET", "/healthz", 200, 0.1, None)
    assert stream.getvalue() == ""


def test_text_logs_go_through_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    with configured(monkeypatch, json=False) as out:
        access_log.request("GET", "/healthz", 200, 0.1, None)
    assert out.getvalue().rstrip().endswith("INFO bounceledger.access: GET /healthz 200")
