"""Shared fixtures: settings, a running app with its test client, sample payloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings
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

# `pytest --hypothesis-profile=mutation` (what `make mutate` runs): the same examples on
# every run and no example database, so a mutant's verdict depends on the code alone —
# never on a failing example another mutant left behind — and a score can be compared.
# A quarter of the examples, since every surviving mutant runs every property that
# reaches it; no deadline, so a slow mutant is never counted as killed by the clock; and
# no shrinking or explaining of a failure (a kill needs the failure, not the smallest
# example: shrinking made a killed mutant of the fold take up to 86 s instead of ~1 s).
hypothesis_settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    report_multiple_bugs=False,
)


def examples(wanted: int) -> int:
    """A property's own number of examples: `wanted`, or an eighth of it (at least 10)
    under the mutation profile, where every surviving mutant runs every property that
    reaches it. Call it where the test module builds its settings (after the profile
    is loaded: test modules are imported after pytest's configure)."""
    if hypothesis_settings.get_current_profile_name() == "mutation":
        return max(10, wanted // 8)
    return wanted


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
    "erased",
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


def every_provider_environment(tmp_path: Path, db: Path | str | None = None) -> dict[str, str]:
    """The environment with every provider's door open, signed with the keys of
    tests/providers/signing.py: the ledger at `db` (tmp_path/data/ledger.db unless
    given), the SNS certificate cache at tmp_path/sns-certs holding the stand-in
    certificate, no outbound fetches."""
    # imported here, not at the top: tests.providers.signing imports this module
    from tests.providers.signing import (
        MAILGUN_KEY,
        MAILTURA_SECRET,
        POSTMARK_PASSWORD,
        SVIX_SECRET,
        TOPIC,
        place_certificate,
        sendgrid_public_b64,
    )

    cache = tmp_path / "sns-certs"
    place_certificate(cache)
    return {
        "BOUNCELEDGER_DB": str(tmp_path / "data" / "ledger.db" if db is None else db),
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64(),
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
        "POSTMARK_WEBHOOK_SECRET": POSTMARK_PASSWORD,
        "MAILTURA_WEBHOOK_SECRET": MAILTURA_SECRET,
        "SES_SNS_TOPIC_ARNS": f"arn:aws:sns:us-east-1:111122223333:other, {TOPIC}",
        "SES_SNS_CERT_CACHE": str(cache),
        "SES_SNS_FETCH": "off",  # tests never reach the network
        # these tests send wrong credentials by the hundred from one address: the failure
        # throttle (tests/api/test_throttle_and_keys.py) would answer 429 instead
        "BOUNCELEDGER_AUTH_FAILURES": "0",
    }


@pytest.fixture
def provider_settings(db_path: Path, tmp_path: Path) -> Settings:
    """The settings with every provider's door open, the ledger at `db_path`."""
    return load_settings(every_provider_environment(tmp_path, db_path))


@pytest.fixture
def make_client(settings: Settings) -> Callable[..., Any]:
    """`async with make_client(settings=..., policy=...) as client:` — a started app,
    reached over https as a deployment behind TLS is (the console's cookies are Secure).
    The one way the tests build an app and its client: `base_url` and create_app's own
    options (`fast_webhooks`) may be given too."""

    def make(
        settings: Settings = settings,
        policy: Policy | None = DEFAULT_POLICY,
        *,
        base_url: str = BASE_URL,
        **options: Any,
    ) -> Any:
        return AsyncTestClient(app=create_app(settings, policy, **options), base_url=base_url)

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[Any]:
    async with make_client() as test_client:
        yield test_client


@pytest.fixture
def make_pclient(
    make_client: Callable[..., Any], provider_settings: Settings
) -> Callable[..., Any]:
    """`async with make_pclient(settings=..., policy=...) as client:` — make_client with
    every provider's door open (each call a fresh start of the app on the same ledger)."""

    def make(settings: Settings = provider_settings, policy: Policy = DEFAULT_POLICY) -> Any:
        return make_client(settings=settings, policy=policy)

    return make


@pytest.fixture
async def pclient(make_pclient: Callable[..., Any]) -> AsyncIterator[Any]:
    """A started app with every provider's door open."""
    async with make_pclient() as test_client:
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
