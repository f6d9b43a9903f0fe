"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

import msgspec

from projections.queries import Status, Suppression

MAX_CHECK = 50_000


class WebhookAccepted(msgspec.Struct, frozen=True):
    """A delivery was committed to the ledger (or was a byte-identical redelivery)."""

    seq: int
    events: int
    duplicate: bool


class CheckRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Addresses to check before a send; up to 50,000 per call."""

    emails: Annotated[list[str], msgspec.Meta(max_length=MAX_CHECK)]


class CheckResult(msgspec.Struct, frozen=True):
    """Which of the checked addresses are suppressed (the others may be mailed)."""

    checked: int
    suppressed: list[Suppression]


class SuppressionPage(msgspec.Struct, frozen=True):
    """One page of the suppression list; pass `next` as `after` for the following page."""

    items: list[Suppression]
    next: str | None


class Health(msgspec.Struct, frozen=True):
    status: str
    receipts: int
    projected: int


__all__ = ["CheckRequest", "CheckResult", "Health", "Status", "SuppressionPage", "WebhookAccepted"]
