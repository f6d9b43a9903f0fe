"""Fixtures for the provider tests. The app with every provider's door open
(`provider_settings`, `make_pclient`, `pclient`) is tests/conftest.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.providers.signing import place_certificate


@pytest.fixture
def cert_cache(tmp_path: Path) -> Path:
    """The SNS certificate cache, holding the stand-in certificate (the one
    `provider_settings` names)."""
    cache = tmp_path / "sns-certs"
    place_certificate(cache)
    return cache
