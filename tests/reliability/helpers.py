"""What the reliability tests share: an environment with every provider's door open."""

from __future__ import annotations

from pathlib import Path

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


def provider_environment(tmp_path: Path) -> dict[str, str]:
    """Every provider enabled, the ledger at tmp_path/data/ledger.db, no outbound fetches."""
    cache = tmp_path / "sns-certs"
    place_certificate(cache)
    return {
        "BOUNCELEDGER_DB": str(tmp_path / "data" / "ledger.db"),
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid_public_b64(),
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
        "POSTMARK_WEBHOOK_SECRET": POSTMARK_PASSWORD,
        "MAILTURA_WEBHOOK_SECRET": MAILTURA_SECRET,
        "SES_SNS_TOPIC_ARNS": TOPIC,
        "SES_SNS_CERT_CACHE": str(cache),
        "SES_SNS_FETCH": "off",  # tests never reach the network
        # these tests send wrong credentials by the hundred from one address: the failure
        # throttle (tests/api/test_throttle_and_keys.py) would answer 429 instead
        "BOUNCELEDGER_AUTH_FAILURES": "0",
    }
