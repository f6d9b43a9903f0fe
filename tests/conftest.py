"""Shared fixtures: settings, a running app with its test client, sample payloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings, load_settings
from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, Policy
from tests import pg
from tests.pg import pg_database, pg_fresh_url, pg_url  # noqa: F401  (fixtures for PostgreSQL)

# httpx logs request URLs, query tokens included; our own loggers must never do so,
# and keeping httpx quiet lets the secret-hygiene tests search everything captured.
logging.getLogger("httpx").setLevel(logging.WARNING)

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-webhook-secret-0123456789"
API_KEY = "test-api-key-abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BASE_URL = "https://testserver.local"
# The fields of a status answer, as the issues name them (HTTP and `status --json`):
# every active cause and the newest evidence since issue 18.
STATUS_FIELDS = {
    "causes",
    "newest_evidence",
    "email",
    "suppressed",
    "reason",
    "since",
    "soft_bounces",
    "events",
    "receipt",
    "last_event_at",
}


def fixture_bytes(provider: str, name: str) -> bytes:
    """A sample payload, byte for byte."""
    return (FIXTURES / provider / name).read_bytes()


async def settle(client: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Wait until the app's projector has folded every receipt (via /healthz).

    The test client runs the app on its own event loop, so tests observe it over HTTP.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        health = (await client.get("/healthz", headers=AUTH)).json()
        if health["projected"] >= health["receipts"]:
            return dict(health)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"projector did not catch up: {health}")
        await asyncio.sleep(0.01)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module or test marked `both_backends` runs once per backend: its `db_path` is a
    SQLite file, then a PostgreSQL URL (a schema of its own in the run's database). A
    test marked `sqlite_only` in such a module runs on SQLite alone."""
    marked = metafunc.definition.get_closest_marker
    if "backend" in metafunc.fixturenames and marked("both_backends") and not marked("sqlite_only"):
        metafunc.parametrize("backend", BACKENDS)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def db_path(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """Where the test's ledger lives (for `both_backends` tests on PostgreSQL, its URL)."""
    if backend == "postgresql":
        url: Path = request.getfixturevalue("pg_url")  # a str: every use goes through str()
        return url
    return tmp_path / "ledger.db"


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return load_settings(
        {
            "BOUNCELEDGER_DB": str(db_path),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        }
    )


@pytest.fixture
def make_client(
    settings: Settings,
) -> Callable[..., Any]:
    """`async with make_client(settings=..., policy=...) as client:` — a started app,
    reached over https as a deployment behind TLS is (the console's cookies are Secure)."""

    def make(settings: Settings = settings, policy: Policy | None = DEFAULT_POLICY) -> Any:
        return AsyncTestClient(app=create_app(settings, policy), base_url=BASE_URL)

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[Any]:
    async with make_client() as test_client:
        yield test_client


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the PostgreSQL server carries the `postgres` marker."""
    for item in items:
        if "pg_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    pg.terminal_summary(terminalreporter)
