"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec

from projections.audit import ReceiptView
from projections.queries import Status, Suppression
from projections.recipients import parse_time
from projections.search import Entry

MAX_CHECK = 50_000
# A check's body may be larger than BOUNCELEDGER_MAX_BODY_BYTES (a webhook's bound): 50,000
# addresses of up to 254 characters (RFC 5321's longest path), quoted and separated.
MAX_CHECK_BODY = MAX_CHECK * 260 + 1024
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER: larger numbers cannot name anything stored


class Problem(msgspec.Struct, frozen=True):
    """Every error answer: the status code and a sentence saying what went wrong."""

    status_code: int
    detail: str


def not_found(what: str) -> dict[int, ResponseSpec]:
    """The OpenAPI entry for a route's 404."""
    return {404: ResponseSpec(data_container=Problem, description=f"no such {what}")}


class Refused(msgspec.Struct, frozen=True):
    """A release that was not recorded: what changed (or what it does not name), and the
    address's status as it stands now."""

    status_code: int
    detail: str
    current: Status


# The answers of a route that answers from the projection, beyond its own.
BEHIND = {
    503: ResponseSpec(
        data_container=Problem,
        description="the projection trails the ledger (or was built under another policy): "
        "retry after Retry-After",
    )
}
REFUSED = {
    409: ResponseSpec(
        data_container=Refused,
        description="not released, nothing recorded: newer evidence than `If-Match`/`expect`, "
        "or every active cause is one the release does not name",
    ),
    **BEHIND,
}


class WebhookAccepted(msgspec.Struct, frozen=True, omit_defaults=True):
    """A delivery was committed to the ledger (or was a byte-identical redelivery).

    `events`: the events about a recipient read from the body (one per recipient);
    `unattributed`: events that name no recipient (kept, logged and counted; left out
    when there are none).
    """

    seq: int
    events: int
    duplicate: bool
    unattributed: int = 0


class CheckRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Addresses to check before a send; up to 50,000 per call; for one stream of the
    policy (what that kind of mail may not be sent to), or every stream (the strictest)."""

    emails: Annotated[list[str], msgspec.Meta(max_length=MAX_CHECK)]
    stream: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class CheckResult(msgspec.Struct, frozen=True):
    """Which of the checked addresses are suppressed (the others may be mailed), each
    spelled as it was given; an address given twice is listed once."""

    checked: int
    suppressed: list[Suppression]
    stream: str | msgspec.UnsetType = msgspec.UNSET  # the stream asked for, if one was


class SuppressionPage(msgspec.Struct, frozen=True):
    """One page of the suppression list; pass `next` as `after` for the following page.
    Each item also names the source of its evidence (`provider`) and the time of the
    address's latest event (`last_event`)."""

    items: list[Entry]
    next: str | None


class ReceiptPage(msgspec.Struct, frozen=True):
    """One page of receipts; pass `next` as `after` for the following page."""

    items: list[ReceiptView]
    next: int | None


class OperatorNote(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Why an operator suppresses an address (required), and for which streams of the
    policy (none: every stream)."""

    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    streams: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=16)
    ] = []


class ReleaseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Why an operator releases an address (required); the causes to lift beyond the
    bounces (`complaint`, `unsubscribe`, `manual`, `provider_suppressed`, or `all`); and
    the newest evidence receipt the operator saw (`expect`: refused with 409 if newer
    evidence has arrived since)."""

    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    also: Annotated[list[str], msgspec.Meta(max_length=8)] = []
    expect: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] | None = None
    # the streams of the policy it is for (none: every stream): it lifts only the causes
    # of those streams alone
    streams: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=16)
    ] = []


def if_match(value: str | None) -> int | None:
    """The receipt an `If-Match` header names (`"812"`, `W/"812"` or `812`); None without
    one or for `*`; 400 for anything else."""
    if value is None or value.strip() in ("", "*"):
        return None
    text = value.strip().removeprefix("W/").strip().strip('"')
    if not text.isdigit() or len(text) > 19:
        raise ValidationException(
            f"If-Match: not a receipt: {value[:40]!r} (send the ETag of the address's status)"
        )
    return int(text)


def parse_when(text: str | None, name: str) -> int | None:
    """A query-string time (ISO-8601 or epoch seconds) as microseconds; 400 if unreadable."""
    if text is None or not text.strip():
        return None
    micros = parse_time(text)
    if micros is None:
        raise ValidationException(f"{name}: not a time: {text!r} (use ISO-8601)")
    return micros


class Readiness(msgspec.Struct, frozen=True, omit_defaults=True):
    """Ready when every check's problem is null; `failing` names the first that is not.
    `problems` (every check) only for a request with an API key."""

    ready: bool
    failing: str | None = None
    problems: dict[str, str | None] | None = None


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    """Alive; the counts only for a request with an API key."""

    status: str
    receipts: int | None = None
    projected: int | None = None
    projecting: bool | None = None  # whether this instance runs the projector (its lease)


__all__ = [
    "CheckRequest",
    "CheckResult",
    "Health",
    "OperatorNote",
    "Problem",
    "Readiness",
    "ReceiptPage",
    "ReceiptView",
    "ReleaseRequest",
    "Status",
    "SuppressionPage",
    "WebhookAccepted",
    "if_match",
    "parse_when",
]
