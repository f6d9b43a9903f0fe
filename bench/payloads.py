"""Realistic SMTP2GO webhook bodies (providers.md 1.6), form or JSON, one event per POST.

The mix (per 100): 56 delivered, 15 processed, 12 open, 3 click, 6 soft bounces,
3 hard bounces, 2 reject, 1.5 spam, 1 unsubscribe, 0.5 resubscribe. Recipients are drawn
uniformly from `population(n)` addresses (100,000 from 1,000,000 events up, about 10
events each below that); 3 % of events arrive late (up to 48 h, as
retries do), so event time and ledger order disagree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

RECIPIENTS = 100_000
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FORM_SHARE = 0.7  # SMTP2GO's default output is form; JSON is the opt-in

DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "corp.example",
    "shop.example",
    "news.example",
    "example.de",
    "example.fr",
    "example.co.uk",
    "inbox.example",
    "post.example",
)

MIX = (
    ("delivered", 56),
    ("processed", 15),
    ("open", 12),
    ("click", 3),
    ("soft", 6),
    ("hard", 3),
    ("reject", 2),
    ("spam", 1.5),
    ("unsubscribe", 1),
    ("resubscribe", 0.5),
)

SENDER = {
    "sender": "bounces@mail.example.com",
    "from": "Example App <noreply@example.com>",
    "from_address": "noreply@example.com",
    "from_name": "Example App",
    "auth": "api-1A2B3C4D5E6F",
}
SUBJECTS = ("Your receipt", "Weekly digest", "Newsletter", "Password reset", "Order shipped")
DIAG = {
    "delivered": {
        "host": "mx.example.com [192.0.2.44]",
        "message": "250 2.0.0 Ok: queued as 4XyZ1",
        "context": "Unavailable",
    },
    "soft": {
        "bounce": "soft",
        "host": "mx.example.net [203.0.113.7]",
        "message": "452 4.2.2 Mailbox full",
        "context": "DATA: 452 4.2.2 Mailbox full",
    },
    "hard": {
        "bounce": "hard",
        "host": "mx1.example.org [198.51.100.25]",
        "message": "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        "context": "RCPT TO:<{rcpt}>",
    },
    "open": {
        "srchost": "198.51.100.77",
        "read-secs": "5",
        "client": "Thunderbird",
        "client-device": "desktop",
        "client-os": "Linux",
        "geoip-country": "DE",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
    },
    "click": {
        "srchost": "198.51.100.78",
        "link": "https://example.com/offer?id=42",
        "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
    },
    "reject": {"message": "Recipient address is on the suppression list"},
}


def population(events: int) -> int:
    """How many distinct recipients a ledger of `events` events is drawn from."""
    return max(1000, min(RECIPIENTS, events // 10))


def recipient(k: int) -> str:
    """The k-th recipient address of the synthetic population."""
    return f"user{k:06d}@{DOMAINS[k % len(DOMAINS)]}"


# what quote_plus would escape among the characters these bodies contain
_FORM = str.maketrans({" ": "+", **{c: f"%{ord(c):02X}" for c in "%+@:<>/[]?=&;(),"}})


def _quote(text: str) -> str:
    """Form-encode a value (a faster quote_plus for the characters used here)."""
    return text.translate(_FORM)


@dataclass(frozen=True)
class Event:
    content_type: str
    body: bytes
    recipient: str
    kind: str


class Maker:
    """Deterministic bodies for a seed; `events(n)` yields (received_at µs, Event)."""

    def __init__(self, seed: int, recipients: int) -> None:
        self.rng = random.Random(seed)
        self.recipients = recipients
        self.kinds = [k for k, _ in MIX]
        self.weights = [w for _, w in MIX]
        self._json = msgspec.json.Encoder().encode

    def events(
        self, n: int, start_s: int = 1_746_000_000, span_s: int = 365 * 86400
    ) -> Iterator[tuple[int, Event]]:
        rng, step = self.rng, span_s / max(n, 1)
        for i in range(n):
            kind = rng.choices(self.kinds, self.weights)[0]
            received = int((start_s + i * step) * 1_000_000) + rng.randrange(1_000_000)
            late = rng.randrange(172_800) if rng.random() < 0.03 else rng.randrange(5)
            yield received, self.event(i, kind, received // 1_000_000 - late)

    def event(self, i: int, kind: str, at_s: int) -> Event:
        rng = self.rng
        rcpt = recipient(rng.randrange(self.recipients))
        ident = f"{rng.getrandbits(128):032x}"
        raw: dict[str, str | list[str]] = {
            "event": "bounce" if kind in ("soft", "hard") else kind,
            "id": ident,
            "email_id": f"1x{i:x}-{ident[:11]}-{ident[11:15]}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_s)),
            "sendtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_s - 3))
            + f".{rng.randrange(1_000_000):06d}+00:00",
            **SENDER,
        }
        if kind == "processed":
            raw["recipients"] = [rcpt]
            raw["srchost"] = "198.51.100.9"
        else:
            raw["rcpt"] = rcpt
        for key, value in DIAG.get(kind, {}).items():
            raw[key] = value.replace("{rcpt}", rcpt)
        message_id = f"<{ident[:14]}.{i}@example.com>"
        subject = SUBJECTS[i % len(SUBJECTS)]
        if rng.random() < FORM_SHARE:
            pairs = [
                (k, v)
                for k, value in raw.items()
                for v in (value if isinstance(value, list) else [value])
            ]
            # form output echoes the default headers under their header names too
            pairs += [
                ("Message-Id", message_id),
                ("message-id", message_id),
                ("Subject", subject),
                ("subject", subject),
            ]
            body = "&".join(f"{k}={_quote(v)}" for k, v in pairs).encode()
            return Event(FORM, body, rcpt, kind)
        raw["message-id"] = message_id
        raw["subject"] = subject
        return Event(JSON, self._json(raw), rcpt, kind)
