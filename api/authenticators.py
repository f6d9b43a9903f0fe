"""One door per provider: is its endpoint enabled, how is a delivery authenticated, and
which of its headers are kept in the receipt for audit and decoding.

The checks themselves are pure functions in api.signatures / api.sns_messages; a door
only reads them out of the request. `Authorization` is never among the kept headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import ClientException

from api.auth import check_shared_secret
from api.settings import Settings
from api.signatures import (
    SignatureInvalid,
    SignatureUnverifiable,
    verify_basic_password,
    verify_mailgun,
    verify_mailtura,
    verify_sendgrid,
    verify_svix,
)
from api.sns_certificates import CertificateSource
from api.sns_messages import (
    EnvelopeMalformed,
    check_message,
    check_signature,
    check_subscribe_url,
    check_unique_keys,
)
from projections.providers.common import JSON_ERRORS

log = logging.getLogger("bounceledger.webhooks")

AnyRequest = Request[Any, Any, Any]
T = TypeVar("T")
Check = Callable[[AnyRequest, bytes, Settings], Awaitable[None]]


@dataclass(frozen=True)
class Door:
    """How one provider's endpoint authenticates (`check` raises to refuse)."""

    enabled: Callable[[Settings], bool]
    check: Check
    headers: tuple[str, ...] = ()


def _configured(value: T | None) -> T:
    """The provider's setting (a door is only used when it is enabled, so it is set)."""
    if value is None:
        raise SignatureUnverifiable("this webhook endpoint is not configured")
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
    except JSON_ERRORS as exc:
        raise SignatureInvalid("body is not JSON: the signature cannot be read") from exc
    if not isinstance(document, dict):
        raise SignatureInvalid("body is not a JSON object: the signature cannot be read")
    return document


async def _smtp2go(request: AnyRequest, body: bytes, settings: Settings) -> None:
    check_shared_secret(request, _configured(settings.smtp2go_secret))


async def _sendgrid(request: AnyRequest, body: bytes, settings: Settings) -> None:
    verify_sendgrid(
        body,
        request.headers.get("x-twilio-email-event-webhook-signature"),
        request.headers.get("x-twilio-email-event-webhook-timestamp"),
        _configured(settings.sendgrid_public_key),
        now=time.time(),
    )


async def _mailgun(request: AnyRequest, body: bytes, settings: Settings) -> None:
    signature = _json_object(body).get("signature")
    if not isinstance(signature, dict):
        raise SignatureInvalid("body has no Mailgun `signature` object")
    # The signature covers timestamp + token only: the token is single-use, kept durably
    # by the ledger (api/door_identity.py), where the same token with other bytes is refused.
    verify_mailgun(signature, _configured(settings.mailgun_signing_key), now=time.time())


async def _resend(request: AnyRequest, body: bytes, settings: Settings) -> None:
    verify_svix(
        body,
        request.headers.get("svix-id"),
        request.headers.get("svix-timestamp"),
        request.headers.get("svix-signature"),
        _configured(settings.resend_secret),
        now=time.time(),
    )


async def _postmark(request: AnyRequest, body: bytes, settings: Settings) -> None:
    verify_basic_password(
        request.headers.get("authorization"), _configured(settings.postmark_secret)
    )


async def _mailtura(request: AnyRequest, body: bytes, settings: Settings) -> None:
    signature = request.headers.get("x-mailtura-signature")
    verify_mailtura(body, signature, _configured(settings.mailtura_secret), now=time.time())


_SNS_CERTIFICATES = "sns_certificates"
_WARNED_V1: set[str] = set()  # topics already reported as signing with SHA-1


def _certificates(request: AnyRequest, settings: Settings) -> CertificateSource:
    """The app's certificate source (one per app, so fetches are bounded across requests)."""
    state = request.app.state
    source = state.get(_SNS_CERTIFICATES)
    if (
        not isinstance(source, CertificateSource)
        or source.cache_dir != settings.ses_cert_cache
        or source.fetch is not settings.ses_fetch
    ):
        source = CertificateSource(settings.ses_cert_cache, settings.ses_fetch)
        state[_SNS_CERTIFICATES] = source
    return source


async def _ses(request: AnyRequest, body: bytes, settings: Settings) -> None:
    message = _json_object(body)
    kind = message.get("Type")
    header = request.headers.get("x-amz-sns-message-type")
    if header is not None and header != kind:
        raise SignatureInvalid("x-amz-sns-message-type does not match the message's Type")
    try:
        url = check_message(
            message,
            topics=settings.ses_topic_arns,
            now=time.time(),
            require_v2=settings.ses_require_v2,
        )
        check_unique_keys(body)  # a second, slower read: only for what passed the rest
    except EnvelopeMalformed as exc:
        log.info("refused an SES delivery: %s", exc)
        raise ClientException(str(exc)) from exc
    check_signature(message, await _certificates(request, settings).get(url))
    topic, message_id = message.get("TopicArn"), message.get("MessageId")
    if message.get("SignatureVersion") == "1" and topic not in _WARNED_V1:
        _WARNED_V1.add(str(topic))
        log.warning(
            "SNS topic %s signs with SHA-1 (SignatureVersion 1): set its SignatureVersion "
            "attribute to 2, then SES_SNS_REQUIRE_V2=on",
            topic,
        )
    if kind == "SubscriptionConfirmation":
        await _confirm_subscription(message, settings)
    elif kind == "UnsubscribeConfirmation":
        log.warning("SNS unsubscribed this endpoint from %s (message %s)", topic, message_id)


async def _confirm_subscription(message: dict[str, Any], settings: Settings) -> None:
    """GET the SubscribeURL when it is SNS's own and fetching is on; else tell the operator.

    The URL carries the confirmation token, so it is never logged: the receipt holds it.
    """
    topic, message_id = message.get("TopicArn"), message.get("MessageId")
    url = message.get("SubscribeURL")
    check_subscribe_url(str(url), str(topic))
    if settings.ses_fetch is None:
        log.warning(
            "SNS subscription to %s awaits confirmation (message %s) and outbound fetching "
            "is off: confirm it in the SNS console, or open the SubscribeURL kept in the "
            "receipt (bounceledger audit)",
            topic,
            message_id,
        )
        return
    try:
        await asyncio.to_thread(settings.ses_fetch, str(url))
    except Exception as exc:
        log.warning(
            "confirming the SNS subscription to %s failed (%s): confirm it in the SNS console",
            topic,
            type(exc).__name__,
        )
        return
    log.info("confirmed the SNS subscription to %s", topic)


DOORS: dict[str, Door] = {
    "smtp2go": Door(lambda s: s.smtp2go_secret is not None, _smtp2go),
    "sendgrid": Door(
        lambda s: s.sendgrid_public_key is not None,
        _sendgrid,
        (
            "x-twilio-email-event-webhook-signature",
            "x-twilio-email-event-webhook-timestamp",
        ),
    ),
    "mailgun": Door(lambda s: s.mailgun_signing_key is not None, _mailgun),
    "resend": Door(
        lambda s: s.resend_secret is not None,
        _resend,
        ("svix-id", "svix-timestamp", "svix-signature"),
    ),
    "postmark": Door(
        lambda s: s.postmark_secret is not None,
        _postmark,
        ("x-pm-webhook-trace-id", "x-pm-retries-remaining"),
    ),
    "mailtura": Door(lambda s: s.mailtura_secret is not None, _mailtura, ("x-mailtura-signature",)),
    "ses": Door(
        lambda s: bool(s.ses_topic_arns),
        _ses,
        (
            "x-amz-sns-message-type",
            "x-amz-sns-message-id",
            "x-amz-sns-topic-arn",
            "x-amz-sns-subscription-arn",
            "x-amz-sns-rawdelivery",
        ),
    ),
}
