"""Issue 13, items 1, 6, 7, 9, 15 and 16, in process: /metrics labels from fixed sets,
log records that stay one line, an access-log line for unmatched routes, the certificate
cache beside `serve --db`, the server's slow-client settings, and responses a browser
will neither sniff nor render (raw receipts are downloads).

The same defences against a real `serve` process and slow sockets: test_slow_clients.py.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest

from api import logs
from api.cli import cli
from api.metrics import Metrics
from projections.providers import PROVIDERS
from projections.state import REASON_RANK
from tests.api.helpers import hard_bounce, post_webhook
from tests.conftest import AUTH, SECRET
from tests.logs import kept_records

# What a label may say (written out here, not imported: the test must fail, not break,
# on code that has no such sets).
SOURCES = {*PROVIDERS, "operator", "api", "unknown"}
REASONS = {
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "timeout",
    "too_large",
    "rate_limited",
    "unavailable",
    "error",
    "other",
}
OUTCOMES = {"appended", "duplicate", "conflict", "other"}
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _label_values(exposition: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        if line.startswith("#"):
            continue
        for name, value in _LABEL.findall(line):
            found.setdefault(name, set()).add(value)
    return found


def _assert_fixed(values: dict[str, set[str]]) -> None:
    assert values.get("source", set()) <= SOURCES, values["source"] - SOURCES
    assert values.get("reason", set()) <= REASONS | set(REASON_RANK)  # refusals, suppressions
    assert values.get("outcome", set()) <= OUTCOMES


# -- item 1: /metrics labels -----------------------------------------------------------


async def test_unknown_providers_in_the_path_are_counted_as_unknown(client: Any) -> None:
    for n in range(25):
        junk = f"{n}-" + "a" * 3000
        response = await client.post(f"/v1/webhooks/{junk}/events", content=b"{}")
        assert response.status_code == 404
    exposition = (await client.get("/metrics", headers=AUTH)).text
    assert "aaaa" not in exposition
    assert len(exposition) < 20_000
    assert 'bounceledger_refusals_total{reason="not_found",source="unknown"} 25.0' in exposition
    _assert_fixed(_label_values(exposition))


async def test_a_known_but_closed_provider_keeps_its_name(client: Any) -> None:
    # mailgun has no key in these settings: 404, labelled with a name from the fixed set
    assert (await client.post("/v1/webhooks/mailgun/events", content=b"{}")).status_code == 404
    assert (await client.get("/v1/suppressions/x@example.com")).status_code == 401
    exposition = (await client.get("/metrics", headers=AUTH)).text
    assert 'bounceledger_refusals_total{reason="not_found",source="mailgun"} 1.0' in exposition
    assert 'bounceledger_refusals_total{reason="unauthorized",source="api"} 1.0' in exposition


def test_every_labelled_metric_maps_values_outside_its_set() -> None:
    metrics = Metrics()
    metrics.refuse("x" * 500, "418")
    metrics.refuse("smtp2go", "teapot")
    metrics.receipts.labels("<script>", "sideways").inc()
    metrics.unattributed.labels("evil\n").inc()
    metrics.ambiguous.labels("evil2").inc()
    metrics.suppressions.labels("made-up").set(1)
    values = _label_values(generate_latest(metrics.registry).decode())
    assert values["source"] == {"unknown", "smtp2go"}
    assert values["reason"] == {"other"}
    assert values["outcome"] == {"other"}


# -- item 6: one line per record ----------------------------------------------------------


FORGED = (
    "/v1/suppressions/x\n2026-12-01 13:22:00,000 WARNING bounceledger: rebuilt\x1b[2J\x85\u2028"
)


@pytest.fixture
def formatters() -> Iterator[tuple[logging.Formatter, logging.Formatter]]:
    """The text and the JSON formatter `bounceledger serve` installs."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        made = []
        for as_json in (False, True):
            logs.configure("info", json=as_json)
            formatter = root.handlers[0].formatter
            assert formatter is not None
            made.append(formatter)
        yield made[0], made[1]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _record(msg: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("line one\nline two")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord(
        "bounceledger.access", logging.INFO, __file__, 1, msg, args, exc_info
    )
    record.__dict__.update(extra)
    return record


def test_text_logs_escape_control_characters_in_every_field(
    formatters: tuple[logging.Formatter, logging.Formatter],
) -> None:
    text, _ = formatters
    line = text.format(_record("%s %s %d", "GET", FORGED, 401, path=FORGED))
    assert len(line.splitlines()) == 1
    assert "\x1b" not in line
    assert "\x85" not in line
    assert "x\\n2026-12-01 13:22:00,000 WARNING" in line
    assert "\\x1b[2J" in line
    # a traceback stays within its record too
    assert len(text.format(_record("failed", exc=True)).splitlines()) == 1


def test_json_logs_stay_valid_json_with_no_raw_control_characters(
    formatters: tuple[logging.Formatter, logging.Formatter],
) -> None:
    _, as_json = formatters
    line = as_json.format(_record("%s %s %d", "GET", FORGED, 401, path=FORGED, exc=True))
    assert len(line.splitlines()) == 1
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", line)
    entry = json.loads(line)
    assert entry["path"] == FORGED  # escaped on the line, the same value once parsed


# -- item 7: unmatched routes are logged ----------------------------------------------


@pytest.fixture
def access_records() -> Iterator[list[logging.LogRecord]]:
    with kept_records("bounceledger.access") as records:
        yield records


async def test_404_and_405_leave_an_access_log_line(
    client: Any, access_records: list[logging.LogRecord]
) -> None:
    assert (await client.get("/admin", params={"token": "sekrit-query"})).status_code == 404
    assert (await client.delete("/healthz", headers=AUTH)).status_code == 405
    assert (await client.get("/v1/nothing/x%0ay")).status_code == 404
    seen = [
        (r.__dict__["method"], r.__dict__["path"], r.__dict__["status"]) for r in access_records
    ]
    assert ("GET", "/admin", 404) in seen
    assert ("DELETE", "/healthz", 405) in seen
    assert ("GET", "/v1/nothing/x\\ny", 404) in seen  # escaped
    for record in access_records:
        assert {"method", "path", "status", "ms", "peer"} <= set(record.__dict__)
        assert "sekrit-query" not in record.getMessage()
        assert "?" not in record.__dict__["path"]


# -- items 9 and 15: what `serve` hands to uvicorn --------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run `serve` through click with uvicorn.run replaced: what it would have served."""
    import uvicorn

    captured: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        captured.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
    for name in ("BOUNCELEDGER_DB", "SES_SNS_CERT_CACHE", "BOUNCELEDGER_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMTP2GO_WEBHOOK_SECRET", SECRET)
    return captured


def test_serve_keeps_the_certificate_cache_beside_its_db(
    served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    db = tmp_path / "s7" / "ledger.db"
    result = CliRunner().invoke(cli, ["serve", "--db", str(db)])
    assert result.exit_code == 0, result.output
    settings = served["app"].state.runtime.settings
    assert settings.db == db
    assert settings.ses_cert_cache == db.parent / "sns-certs"


def test_serve_times_slow_clients_and_limits_connections(
    served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.setenv("BOUNCELEDGER_READ_TIMEOUT", "7.5")
    monkeypatch.setenv("BOUNCELEDGER_MAX_CONNECTIONS", "40")
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "l.db")])
    assert result.exit_code == 0, result.output
    assert served["limit_concurrency"] == 40
    assert 0 < served["timeout_keep_alive"] <= 10
    assert 0 < served["h11_max_incomplete_event_size"] <= 64 * 1024
    protocol = served["http"]
    assert isinstance(protocol, type)
    assert issubclass(protocol, HttpToolsProtocol)
    assert getattr(protocol, "read_timeout", None) == 7.5
    assert served["app"].state.runtime.settings.read_timeout == 7.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOUNCELEDGER_READ_TIMEOUT", "0"),
        ("BOUNCELEDGER_READ_TIMEOUT", "soon"),
        ("BOUNCELEDGER_MAX_CONNECTIONS", "1.5"),
        ("BOUNCELEDGER_MAX_CONNECTIONS", "-3"),
    ],
)
def test_serve_refuses_bad_slow_client_settings(
    served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "l.db")])
    assert result.exit_code != 0
    assert name in result.output
    assert "app" not in served


# -- item 16: nothing stored is rendered; nosniff and a CSP everywhere -----------------

CSP_STRICT = "default-src 'none'"


async def test_raw_receipts_are_downloads_whatever_their_sender_said(client: Any) -> None:
    body = hard_bounce("<script>alert(1)</script>@example.com")
    response = await post_webhook(client, body, content_type="text/html; charset=utf-8")
    assert response.status_code == 200, response.text
    seq = response.json()["seq"]
    raw = await client.get(f"/v1/audit/receipts/{seq}", params={"raw": "true"}, headers=AUTH)
    assert raw.status_code == 200
    assert raw.content == body
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"] == f'attachment; filename="receipt-{seq}"'
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert raw.headers["x-receipt-content-type"] == "text/html; charset=utf-8"
    assert raw.headers["x-receipt-seq"] == str(seq)
    assert raw.headers["x-receipt-source"] == "smtp2go"
    assert CSP_STRICT in raw.headers["content-security-policy"]


async def test_every_response_says_nosniff_and_forbids_active_content(client: Any) -> None:
    ok = await post_webhook(client, hard_bounce("a@example.com"))
    answers = [
        ok,
        await client.get("/healthz", headers=AUTH),
        await client.get("/metrics", headers=AUTH),
        await client.get("/v1/suppressions/a@example.com", headers=AUTH),
        await client.get("/v1/audit/receipts/1", headers=AUTH),
        await client.get("/v1/suppressions/a@example.com"),  # 401
        await post_webhook(client, b"{}", token="wrong-secret-wrong-secret"),  # 403
        await client.get("/nowhere"),  # 404 from the router
        await client.delete("/healthz", headers=AUTH),  # 405
        await client.get("/v1/audit/receipts/99", headers=AUTH),  # 404 from a handler
        await client.get("/schema/openapi.json", headers=AUTH),
    ]
    for answer in answers:
        where = f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}"
        assert answer.headers.get("x-content-type-options") == "nosniff", where
        csp = answer.headers.get("content-security-policy", "")
        assert CSP_STRICT in csp, where
        assert "frame-ancestors 'none'" in csp, where


async def test_the_schema_pages_keep_only_the_framing_rule(client: Any) -> None:
    # The documentation viewers load scripts and styles from CDNs and run inline script:
    # the strict policy would blank them, so they get `frame-ancestors` alone.
    page = await client.get("/schema", headers=AUTH)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
