"""SMTP2GO: form-encoded (the default) or JSON webhook bodies, one event per POST.

Keys are looked up case-insensitively with `-` and `_` alike (form output repeats
`Message-Id`/`message-id`); the recipient is `rcpt` (one address, kept as given), or
each address of `recipients` for `processed`: a string or a list of strings, each
holding an address list that is split with a real address parser, so
`"Bob Smith" <bob@x.org>, carol@y.org` is two addr-specs. `reject` (SMTP2GO's own
suppression list refused the send) is a provider-side suppression. SMTP2GO has no
field saying whether the mailbox does not exist or the sender was refused: that
refusal is read from the enhanced code in `message` (projections.facts.place). SMTP2GO
does not sign its webhooks: authentication is at the door.

Labels: the custom headers a webhook is set to pass on, which SMTP2GO sends as extra
top-level keys named as the header (`X-Stream: newsletter` is `header:x-stream`). Every
top-level key that is not one of SMTP2GO's own fields (`_FIELDS`: its documented
parameters, the keys seen in live callbacks, and the names an early library used) and
is a valid header name (printable ASCII, no `:`) is one, named `header:` + its name
lower-cased, with `_` read as `-` as for every key. The default `Message-Id` and
`Subject` headers are SMTP2GO's own `message-id` and `subject`, so never labels.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from projections.errors import DecodeFailed
from projections.policy import Kind
from projections.providers.common import JSON_ERRORS, Label, labels
from projections.providers.events import ProviderEvent
from projections.providers.forms import form_pairs
from projections.recipients import normalize_recipient, parse_time, split_recipients

NAME = "smtp2go"

Raw = dict[str, Any]

# The upstream pull request's mapping: delivered heals soft bounces, bounce is hard or
# soft by the `bounce` field (unknown counts as soft), spam is a complaint, and the
# rest is kept in the ledger without effect until a policy maps it. `unsubscribe` stays
# ignored as upstream documents it (a policy maps `unsubscribe = "unsubscribe"`).
# `reject` is SMTP2GO refusing to send to an address on its own suppression list (it
# hard-bounced, complained or unsubscribed, SMTP2GO does not say which): a provider-side
# suppression, as SES / Resend `OnAccountSuppressionList`.
DEFAULT_MAPPING: dict[str, Kind] = {
    "delivered": "delivered",
    "bounce": "bounce",
    "spam": "complaint",
    "reject": "provider_suppressed",
    "open": "ignore",
    "click": "ignore",
    "unsubscribe": "ignore",
    "resubscribe": "ignore",
    "processed": "ignore",
}

LABELS: dict[str, str] = {
    "header:": "each custom header the webhook passes on (a top-level key named as it)",
}

# Spellings seen in the wild (docs vs. one library's reconstructed callbacks).
SYNONYMS = {
    "opened": "open",
    "clicked": "click",
    "spam_complaint": "spam",
    "spamreport": "spam",
    "unsubscribed": "unsubscribe",
    "resubscribed": "resubscribe",
    "bounced": "bounce",
    "rejected": "reject",
}

_json = msgspec.json.Decoder()


def canonical_kind(name: str) -> str:
    """The event name with spelling synonyms folded (`opened` -> `open`)."""
    name = name.strip().lower().replace("-", "_")
    return SYNONYMS.get(name, name)


def decode(
    body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
) -> list[Raw]:
    """The raw events in a body. The format is sniffed from the bytes, not trusted from
    `content_type`, so a webhook left on the wrong output type still works. SMTP2GO
    puts nothing in its headers that the events need."""
    text = body.strip().removeprefix(b"\xef\xbb\xbf").strip()
    if not text:
        raise DecodeFailed("empty body")
    raws = _decode_json(text) if text[:1] in (b"{", b"[") else [_decode_form(text)]
    for index, raw in enumerate(raws):
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise DecodeFailed(f"event {index} has no `event` field")
    return raws


_KEYS: dict[str, str] = {}  # the same few dozen field names arrive in every body


def _key(name: str) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = name.strip().lower().replace("-", "_")
        if len(_KEYS) < 4096:  # bounded: names are chosen by whoever sends the body
            _KEYS[name] = key
    return key


def _decode_json(text: bytes) -> list[Raw]:
    try:
        document = _json.decode(text)
    except JSON_ERRORS as exc:
        raise DecodeFailed(f"body is not valid JSON: {exc}") from exc
    items = document if isinstance(document, list) else [document]
    if not items:
        raise DecodeFailed("JSON array holds no events")
    raws = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeFailed(f"JSON item {index} is not an object")
        raw: Raw = {}
        for name, value in item.items():
            raw.setdefault(_key(name), value)
        raws.append(raw)
    return raws


def _decode_form(text: bytes) -> Raw:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeFailed("form body is not UTF-8") from exc
    if "=" not in decoded:
        raise DecodeFailed("body is neither JSON nor form-encoded")
    raw: Raw = {}
    recipients: list[str] = []
    for name, value in form_pairs(decoded):
        key = _key(name)
        if key in ("recipients", "recipients[]"):
            recipients.append(value)
        else:
            raw.setdefault(key, value)
    if recipients:
        raw["recipients"] = recipients
    return raw


# SMTP2GO's own top-level fields, as `_key` spells them: any other key is a custom header.
_FIELDS = frozenset(
    {
        # the documented parameters (the default Message-Id and Subject headers among them)
        *("event", "time", "sendtime", "sender", "from", "from_address", "from_name"),
        *("rcpt", "recipients", "auth", "host", "message", "context", "email_id", "id"),
        *("message_id", "bounce", "subject", "user_agent", "read_secs", "client"),
        *("client_device", "client_os", "geoip_continent", "geoip_country", "geoip_city"),
        "srchost",
        # seen in live callbacks but not documented, and a form's repeated recipients
        *("opened_at", "clicked_at", "link", "click_url", "recipients[]"),
        # the names an early library took from SMTP2GO's reference page
        *("timestamp", "email", "recipients_list", "hostname"),
    }
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but `:`


def _labels(raw: Raw) -> tuple[Label, ...]:
    """`header:<name>` for each top-level key that is a custom header (module docstring)."""
    keys = ((_key(name), value) for name, value in raw.items())
    return labels(
        ("header:" + key.replace("_", "-"), value)
        for key, value in keys
        if key not in _FIELDS and _HEADER_NAME.fullmatch(key)
    )


def _text(raw: Raw, key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text.strip() or None


def _recipients(raw: Raw) -> list[str | None]:
    rcpt = _text(raw, "rcpt")
    if rcpt:
        return [rcpt]
    listed = raw.get("recipients")
    values = listed if isinstance(listed, list) else [listed]
    found: list[str | None] = [*split_recipients(v for v in values if isinstance(v, str))]
    return found or [None]


def facts(raw: Raw) -> list[ProviderEvent]:
    """One ProviderEvent per recipient the raw event names."""
    kind = canonical_kind(str(raw["event"]))
    time = _text(raw, "time")
    event_id = _text(raw, "id")
    bounce = (_text(raw, "bounce") or "").lower()
    found = _labels(raw)
    out = []
    for recipient in _recipients(raw):
        identity = event_id or _derived_id(raw, kind, recipient, time)
        out.append(
            ProviderEvent(
                raw_kind=kind,
                recipient=recipient,
                at=parse_time(time),
                event_id=identity,
                message_id=_text(raw, "email_id"),
                diagnostic=_text(raw, "message") or _text(raw, "context"),
                bounce_class=bounce if bounce in ("hard", "soft") else None,
                labels=found,
            )
        )
    return out


def _derived_id(raw: Raw, kind: str, recipient: str | None, time: str | None) -> str:
    """SMTP2GO sent no `id`: identify the event by (email_id, event, rcpt, time)."""
    rcpt = normalize_recipient(recipient) if recipient else ""  # compared case-insensitively
    parts = [_text(raw, "email_id") or "", kind, rcpt, time or ""]
    return "derived:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
