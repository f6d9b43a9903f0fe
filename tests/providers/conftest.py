"""Fixtures for the provider tests: settings with every provider's endpoint enabled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings, load_settings
from projections import DEFAULT_POLICY, Policy
from tests.conftest import API_KEY, SECRET
from tests.providers.signing import (
    MAILGUN_KEY,
    MAILTURA_SECRET,
    POSTMARK_PASSWORD,
    SVIX_SECRET,
    TOPIC,
    place_certificate,
    sendgrid_public_b64,
)


@pytest.fixture
def cert_cache(tmp_path: Path) -> Path:
    """The SNS certificate cache, holding the stand-in certificate."""
    cache = tmp_path / "sns-certs"
    place_certificate(cache)
    return cache


@pytest.fixture
def provider_env(db_path: Path, cert_cache: Path) -> dict[str, str]:
    return {
        "BOUNCELEDGER_DB": str(db_path),
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64(),
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
        "POSTMARK_WEBHOOK_SECRET": POSTMARK_PASSWORD,
        "MAILTURA_WEBHOOK_SECRET": MAILTURA_SECRET,
        "SES_SNS_TOPIC_ARNS": f"arn:aws:sns:us-east-1:111122223333:other, {TOPIC}",
        "SES_SNS_CERT_CACHE": str(cert_cache),
        "SES_SNS_FETCH": "off",  # tests never reach the network
    }


@pytest.fixture
def provider_settings(provider_env: dict[str, str]) -> Settings:
    return load_settings(provider_env)


@pytest.fixture
def make_pclient(provider_settings: Settings) -> Callable[..., Any]:
    """`async with make_pclient(settings=..., policy=...) as client:` — every door open."""

    def make(settings: Settings = provider_settings, policy: Policy = DEFAULT_POLICY) -> Any:
        return AsyncTestClient(app=create_app(settings, policy))

    return make


@pytest.fixture
async def pclient(make_pclient: Callable[..., Any]) -> AsyncIterator[Any]:
    async with make_pclient() as client:
        yield client
