"""Settings: typed values built from the environment at the edge, then passed in."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_DB = Path("data/ledger.db")
DEFAULT_MAX_BODY = 1024 * 1024


class Secret:
    """A secret value: compared in constant time, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.encode()

    def matches(self, candidate: str | bytes | None) -> bool:
        """Constant-time comparison (for a given secret length)."""
        if candidate is None:
            return False
        given = candidate.encode() if isinstance(candidate, str) else candidate
        return hmac.compare_digest(given, self._value)

    def __repr__(self) -> str:
        return "Secret('***')"


class ApiKey(msgspec.Struct, frozen=True):
    """A named API key from `BOUNCELEDGER_API_KEYS="ops:KEY1,app:KEY2"`.

    Plain keys (no `name:`) are named key1, key2… by position."""

    name: str
    secret: Secret


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service is configured with."""

    db: Path = DEFAULT_DB
    policy: Path | None = None
    api_keys: tuple[ApiKey, ...] = ()
    smtp2go_secret: Secret | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY


class SettingsInvalid(ValueError):
    """When an environment variable holds a value that cannot be used."""


def _secret(environ: Mapping[str, str], name: str) -> Secret | None:
    value = environ.get(name, "").strip()
    return Secret(value) if value else None


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """`name:key,name:key` or plain `key,key` (named key1, key2, … by position)."""
    keys = []
    for index, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep:
            name, key = f"key{index + 1}", item
        if not name.strip() or not key.strip():
            raise SettingsInvalid(f"BOUNCELEDGER_API_KEYS entry {index + 1} is empty")
        keys.append(ApiKey(name.strip(), Secret(key.strip())))
    return tuple(keys)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from an environment mapping (a dict in tests, os.environ in the CLI)."""
    max_body = environ.get("BOUNCELEDGER_MAX_BODY_BYTES", "").strip()
    if max_body and (not max_body.isdigit() or int(max_body) < 1):
        raise SettingsInvalid(
            f"BOUNCELEDGER_MAX_BODY_BYTES must be a positive integer, not {max_body!r}"
        )
    policy = environ.get("BOUNCELEDGER_POLICY", "").strip()
    return Settings(
        db=Path(environ.get("BOUNCELEDGER_DB", "").strip() or DEFAULT_DB),
        policy=Path(policy) if policy else None,
        api_keys=parse_api_keys(environ.get("BOUNCELEDGER_API_KEYS", "")),
        smtp2go_secret=_secret(environ, "SMTP2GO_WEBHOOK_SECRET"),
        max_body_bytes=int(max_body) if max_body else DEFAULT_MAX_BODY,
    )
