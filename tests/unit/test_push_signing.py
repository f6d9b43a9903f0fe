"""Outbound webhooks' secrets and signatures: each endpoint's secret is derived from the
server's key, its id and its generation; the signature is the one a Standard Webhooks
library makes and checks; the key is read like the erasure key; the retry schedule is
Svix's; a URL is refused unless it is http(s) without credentials."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.push import signing
from api.push.endpoints import SVIX_RETRIES, EndpointRefused, Schedule, check_url
from api.push.signing import EndpointKey, EndpointKeyMissing, load_key, require_key
from api.settings import SettingsInvalid, load_settings

KEY = EndpointKey(b"k" * 32)


def test_each_endpoint_and_generation_has_its_own_secret() -> None:
    secret = KEY.secret("ep_0123456789ab", 1)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert KEY.secret("ep_0123456789ab", 1) == secret  # derived: the same every time
    others = {
        KEY.secret("ep_0123456789ac", 1),
        KEY.secret("ep_0123456789ab", 2),
        EndpointKey(b"j" * 32).secret("ep_0123456789ab", 1),
        KEY.secret("ep_0123456789ab1", 1),  # the separator keeps id and generation apart
        KEY.secret("ep_0123456789ab", 11),
    }
    assert secret not in others
    assert len(others) == 5
    assert "k" * 32 not in repr(KEY)


def test_the_signature_is_what_a_standard_webhooks_receiver_checks() -> None:
    secret = KEY.secret("ep_0123456789ab", 1)
    body = b'{"type":"suppression.changed","data":{"email":"\xc3\xa9@example.org"}}'
    now = int(datetime.now(tz=UTC).timestamp())
    headers = signing.headers(secret, "chg_7", now, body)
    assert headers["webhook-id"] == "chg_7"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"] == Webhook(secret).sign(
        "chg_7", datetime.fromtimestamp(now, tz=UTC), body
    )
    assert Webhook(secret).verify(body, headers)["type"] == "suppression.changed"
    with pytest.raises(WebhookVerificationError):
        Webhook(KEY.secret("ep_0123456789ab", 2)).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "chg_8"})


def test_the_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load_key({}) is None
    with pytest.raises(EndpointKeyMissing, match="BOUNCELEDGER_ENDPOINT_KEY_FILE"):
        require_key({})
    with pytest.raises(EndpointKeyMissing, match="at least 32"):
        load_key({"BOUNCELEDGER_ENDPOINT_KEY": "short"})
    path = tmp_path / "key"
    path.write_bytes(b"k" * 32 + b"\n")
    from_file = load_key({"BOUNCELEDGER_ENDPOINT_KEY_FILE": str(path)})
    assert from_file is not None
    assert from_file.secret("ep_1", 1) == KEY.secret("ep_1", 1)
    with pytest.raises(EndpointKeyMissing, match="BOUNCELEDGER_ENDPOINT_KEY_FILE="):
        load_key({"BOUNCELEDGER_ENDPOINT_KEY_FILE": str(tmp_path / "missing")})


def test_the_settings_hold_the_key_and_refuse_an_unusable_one(tmp_path: Path) -> None:
    base = {"BOUNCELEDGER_DB": str(tmp_path / "l.db")}
    assert load_settings(base).endpoint_key is None
    settings = load_settings({**base, "BOUNCELEDGER_ENDPOINT_KEY": "k" * 32})
    assert settings.endpoint_key is not None
    assert settings.endpoint_key.secret("ep_1", 1) == KEY.secret("ep_1", 1)
    assert settings.push_schedule == Schedule(SVIX_RETRIES)
    with pytest.raises(SettingsInvalid, match="endpoint key"):
        load_settings({**base, "BOUNCELEDGER_ENDPOINT_KEY": "too-short"})


def test_the_schedule_is_svix_s_and_spans_a_day() -> None:
    schedule = Schedule()
    waits = [schedule.wait(failures) for failures in range(1, 9)]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert sum(SVIX_RETRIES) >= 24 * 3600
    assert schedule.wait(0) is None
    assert Schedule((0.1,)).wait(1) == 0.1
    assert Schedule((0.1,)).wait(2) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hooks", "https://example.org/a?token=x", "HTTPS://Example.org"],
)
def test_http_and_https_urls_are_taken(url: str) -> None:
    assert check_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.org/",
        "gopher://example.org/",
        "//example.org/",
        "http:///path",
        "https://u:p@example.org/",
        "https://u@example.org/",
        "https://example.org/\x00",
        "https://example.org:http/",
        "https://example.org/" + "a" * 2000,
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefused, match=r"^url: "):
        check_url(url)
