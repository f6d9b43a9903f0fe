"""Every provider is registered with a decoder, a mapping and a door, and configured
from its own environment variable."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from api.authenticators import DOORS
from api.settings import SettingsInvalid, load_settings
from projections.mapping import check_event_names
from projections.policy import Kind, Policy
from projections.providers import PROVIDERS
from tests.conftest import SECRET
from tests.providers.signing import (
    MAILGUN_KEY,
    MAILTURA_SECRET,
    POSTMARK_PASSWORD,
    SVIX_SECRET,
    TOPIC,
    sendgrid_public_b64,
)

NAMES = ["smtp2go", "ses", "sendgrid", "mailgun", "resend", "postmark", "mailtura"]
KINDS = set(typing.get_args(Kind))


@pytest.mark.parametrize("name", NAMES)
def test_each_provider_is_registered_with_a_door(name: str) -> None:
    module: Any = PROVIDERS[name]
    assert name == module.NAME
    assert name in DOORS
    for attribute in ("decode", "facts", "canonical_kind", "DEFAULT_MAPPING"):
        assert hasattr(module, attribute), attribute


@pytest.mark.parametrize("name", NAMES)
def test_default_mappings_use_known_kinds_and_canonical_names(name: str) -> None:
    provider = PROVIDERS[name]
    for raw_kind, kind in provider.DEFAULT_MAPPING.items():
        assert kind in KINDS, (raw_kind, kind)
        # A policy override is canonicalised before lookup: the default's key must be a
        # fixed point, or no override could ever replace it.
        assert provider.canonical_kind(raw_kind) == raw_kind


# Raw kinds added by the provider-suppression / scope / shared changes, and names a
# policy written before them may use: every one must stay nameable in a policy.
NAMEABLE = {
    "postmark": [
        "subscribe",
        "unsubscribe",
        "manually_deactivated",
        "subscription_change.manual_suppression",
        "subscription_change.unsubscribed",
        "subscription_change.reactivated",
        "subscription_change.resubscribed",
        "SubscriptionChange.Resubscribed",
    ],
    "ses": [
        "bounce",
        "complaint_not_spam",
        "complaint_auth_failure",
        "complaint_virus",
        "account_suppressed",
        "unsubscribe_all",
        "resubscribe_all",
    ],
    "resend": [
        "bounced",
        "suppressed",
        "email.suppressed",
        "account_suppressed",
        "suppression_added",
        "suppression.added",
        "suppression.removed",
        # issue 18, N4: contact events
        "contact_updated",
        "contact.updated",
        "contact.created",
        "contact_deleted",
        "contact_unsubscribed",
    ],
    "mailgun": [
        "permanent_fail",
        "unsubscribed",
        "tag_unsubscribed",
        "suppress_bounce",
        "suppress-complaint",
        "suppress_unsubscribe",
        "espblock",  # issue 18, N8
    ],
    "sendgrid": [
        "blocked",
        "dropped",
        "dropped_bounce",
        "dropped_spamreport",
        "dropped_unsubscribe",
        "bounce_reputation",
        "bounce_content",
        "bounce_frequency",
        "group_unsubscribe",
    ],
    "smtp2go": ["unsubscribe", "unsubscribed", "processed", "reject", "rejected"],
}


@pytest.mark.parametrize(("name", "event"), [(n, e) for n, es in NAMEABLE.items() for e in es])
def test_new_and_existing_raw_kinds_can_be_named_in_a_policy(name: str, event: str) -> None:
    check_event_names(Policy(providers={name: {event: "ignore"}}))


def test_provider_suppressed_is_a_known_kind() -> None:
    assert "provider_suppressed" in KINDS


def test_every_door_belongs_to_a_provider() -> None:
    assert set(DOORS) <= set(PROVIDERS)


ENV = {
    "sendgrid": {"SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64()},
    "mailgun": {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY},
    "resend": {"RESEND_WEBHOOK_SECRET": SVIX_SECRET},
    "postmark": {"POSTMARK_WEBHOOK_SECRET": POSTMARK_PASSWORD},
    "mailtura": {"MAILTURA_WEBHOOK_SECRET": MAILTURA_SECRET},
    "ses": {"SES_SNS_TOPIC_ARNS": TOPIC},
    "smtp2go": {"SMTP2GO_WEBHOOK_SECRET": SECRET},
}


@pytest.mark.parametrize("name", sorted(ENV))
def test_each_endpoint_is_enabled_by_its_own_variable_only(name: str) -> None:
    settings = load_settings(ENV[name])
    enabled = {provider for provider, door in DOORS.items() if door.enabled(settings)}
    assert enabled == {name}
    assert not any(door.enabled(load_settings({})) for door in DOORS.values())


def test_ses_settings_parse_topics_cache_and_fetching(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BOUNCELEDGER_DB": str(tmp_path / "db" / "ledger.db"),
            "SES_SNS_TOPIC_ARNS": f" {TOPIC} ,, arn:aws:sns:us-east-1:1:b ",
        }
    )
    assert settings.ses_topic_arns == {TOPIC, "arn:aws:sns:us-east-1:1:b"}
    assert settings.ses_cert_cache == tmp_path / "db" / "sns-certs"
    assert settings.ses_fetch is not None  # on unless switched off
    off = load_settings({"SES_SNS_FETCH": "off", "SES_SNS_CERT_CACHE": str(tmp_path)})
    assert off.ses_fetch is None
    assert off.ses_cert_cache == tmp_path
    with pytest.raises(SettingsInvalid, match="SES_SNS_FETCH"):
        load_settings({"SES_SNS_FETCH": "maybe"})


def test_secrets_never_show_in_the_settings_repr() -> None:
    env = {
        "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-secret-value",
        "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
        "POSTMARK_WEBHOOK_SECRET": "postmark-secret-value",
        "MAILTURA_WEBHOOK_SECRET": "mailtura-secret-value",
    }
    shown = repr(load_settings(env))
    for value in (*env.values(), SVIX_SECRET.removeprefix("whsec_")):
        assert value not in shown
