"""Telling a PostgreSQL URL from a SQLite path, and never showing a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import is_database_url
from ledger.urls import redact


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("postgresql://bl@db:5432/bounceledger", True),
        ("postgres://bl@db/bl", True),
        ("data/ledger.db", False),
        (Path("postgresql://not-a-url-but-a-path"), False),
        ("./postgresql.db", False),
    ],
)
def test_a_url_selects_postgresql_and_anything_else_is_a_sqlite_path(
    target: str | Path, url: bool
) -> None:
    assert is_database_url(target) is url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bl:s3cret@db:5432/x", "postgresql://bl@db:5432/x"),
        ("postgresql://:s3cret@db/x", "postgresql://db/x"),
        ("postgresql://bl@db/x", "postgresql://bl@db/x"),
        ("postgresql://db/x?sslmode=require", "postgresql://db/x?sslmode=require"),
        ("postgresql://bl:p@ss:w@rd@db/x", "postgresql://bl@db/x"),
    ],
)
def test_messages_show_the_url_without_its_password(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)


def test_settings_take_a_url_as_the_database_and_size_its_pool() -> None:
    from api.settings import DEFAULT_DB, SettingsInvalid, load_settings

    url = "postgresql://bl@db.internal:5432/bounceledger"
    settings = load_settings({"BOUNCELEDGER_DB": url, "BOUNCELEDGER_PG_POOL_MAX": "4"})
    assert settings.db == url  # kept as text: a URL is not a path
    assert (settings.pg_pool_min, settings.pg_pool_max) == (2, 4)
    assert settings.ses_cert_cache == DEFAULT_DB.parent / "sns-certs"  # not under the URL
    assert load_settings({"BOUNCELEDGER_DB": "x/ledger.db"}).db == Path("x/ledger.db")
    for bad in ({"BOUNCELEDGER_PG_POOL_MIN": "5", "BOUNCELEDGER_PG_POOL_MAX": "4"},
                {"BOUNCELEDGER_PG_POOL_MAX": "0"}):  # fmt: skip
        with pytest.raises(SettingsInvalid, match="BOUNCELEDGER_PG_POOL"):
            load_settings(bad)
