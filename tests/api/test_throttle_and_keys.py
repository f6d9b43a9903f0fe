"""Keys and secrets that cannot be mistaken or guessed, and repeated authentication
failures slowed down per source address (issue 13, item 11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.settings import SettingsInvalid, load_settings, parse_api_keys
from api.throttle import FailureCounter
from tests.conftest import API_KEY, SECRET

STRONG = "k" * 16


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ops:abc:defghijklmnopqrstu", "more than one ':'"),
        ("ops:short", "too short: 5 characters"),
        ("tooshort", "too short"),
        ("a b:" + STRONG, "the name before ':'"),
        (f"ops:{STRONG},ops:{'m' * 16}", "repeats a name or a key"),
        (f"ops:{STRONG},dev:{STRONG}", "repeats a name or a key"),
    ],
)
def test_ambiguous_or_short_api_keys_are_refused_at_start(text: str, says: str) -> None:
    with pytest.raises(SettingsInvalid, match="BOUNCELEDGER_API_KEYS") as info:
        parse_api_keys(text)
    assert says in str(info.value)
    assert STRONG not in str(info.value)  # the message never shows a key


def test_a_well_formed_key_list_names_each_key() -> None:
    keys = parse_api_keys(f"ops:{STRONG}, ci-bot@acme:{'m' * 20}, {'p' * 16}")
    assert [key.name for key in keys] == ["ops", "ci-bot@acme", "key3"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMTP2GO_WEBHOOK_SECRET", "x"),
        ("POSTMARK_WEBHOOK_SECRET", "short-secret"),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", "abc"),
        ("MAILTURA_WEBHOOK_SECRET", "abc"),
        ("RESEND_WEBHOOK_SECRET", "whsec_AA=="),
    ],
)
def test_short_webhook_secrets_are_refused_at_start(name: str, value: str) -> None:
    with pytest.raises(SettingsInvalid, match=name) as info:
        load_settings({name: value})
    assert "too short" in str(info.value)


def test_the_failure_counter_blocks_for_the_rest_of_the_window() -> None:
    now = [1000.0]
    counter = FailureCounter(limit=3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert counter.blocked_for("203.0.113.9") == 0
        counter.failed("203.0.113.9")
    assert counter.blocked_for("203.0.113.9") == pytest.approx(60.0)
    assert counter.blocked_for("198.51.100.1") == 0  # per source
    now[0] += 59.5
    assert counter.blocked_for("203.0.113.9") == pytest.approx(0.5)
    now[0] += 0.5
    assert counter.blocked_for("203.0.113.9") == 0  # a new window


def _settings(tmp_path: Any, failures: str) -> Any:
    return load_settings(
        {
            "BOUNCELEDGER_DB": str(tmp_path / "l.db"),
            "SMTP2GO_WEBHOOK_SECRET": SECRET,
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "BOUNCELEDGER_AUTH_FAILURES": failures,
        }
    )


async def test_repeated_failures_from_one_address_are_answered_429(
    make_client: Callable[..., Any], tmp_path: Any
) -> None:
    async with make_client(settings=_settings(tmp_path, "5"), policy=None) as client:
        wrong = {"Authorization": "Bearer not-the-key-at-all"}
        codes = [
            (await client.get("/v1/suppressions", headers=wrong)).status_code for _ in range(5)
        ]
        assert codes == [401] * 5
        webhook = await client.post("/v1/webhooks/smtp2go/events", params={"token": "nope"})
        assert webhook.status_code == 429  # the doors count and refuse alike
        refused = await client.get(
            "/v1/suppressions", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert refused.status_code == 429  # credentials are not even checked now
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await client.get("/healthz", headers=wrong)).status_code == 429


async def test_successes_never_count_and_zero_disables(
    make_client: Callable[..., Any], tmp_path: Any
) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with make_client(settings=_settings(tmp_path, "2"), policy=None) as client:
        for _ in range(10):
            assert (await client.get("/v1/suppressions", headers=auth)).status_code == 200
    async with make_client(settings=_settings(tmp_path, "0"), policy=None) as client:
        wrong = {"Authorization": "Bearer not-the-key-at-all"}
        codes = {
            (await client.get("/v1/suppressions", headers=wrong)).status_code for _ in range(30)
        }
        assert codes == {401}
