"""Hypothesis strategies for SMTP2GO histories and policies, and the pure reference pipeline.

A history is a list of deliveries (one body each, as the door would append them):
logical SMTP2GO events over a small pool of recipients written in varying case and
spacing, random event names (synonyms included), times within a few days in several
ISO-8601 spellings, ids with deliberate duplicates, JSON object / JSON array / form
encodings, now and then an operator's manual suppress or release — plus redeliveries of
earlier events (byte-identical, or re-encoded with the same id and recipient) and,
optionally, colliding ids (another event reusing an id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import msgspec
from hypothesis import strategies as st

from ledger import NewReceipt, Receipt
from projections import Mapper, Policy, RecipientState, operator, replay
from projections.facts import derive
from projections.policy import ClassifyRule, Exclusion

ADDRESSES = (
    "alice@example.com",
    "bob@example.org",
    "carol@example.net",
    "dave@example.com",
    "jose@xn--bcher-kva.example",  # jose@bücher.example
)
# How webhooks spell the domain of the internationalised address above.
UNICODE_DOMAINS = {"xn--bcher-kva.example": ("bücher.example", "BÜCHER.example")}
# Webhooks arrive after their events: within two days (providers retry for up to 48 h).
MAX_DELAY_MS = 2 * 86_400_000
BASE = datetime(2026, 5, 1, tzinfo=UTC)
SPAN_MS = 4 * 86_400_000  # events happen within four days
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Weighted towards the events that change state.
NAMES = (
    "delivered", "delivered", "bounce", "bounce", "bounce", "bounced",
    "spam", "spam_complaint", "open", "opened", "click",
    "unsubscribe", "unsubscribed", "resubscribe",
    "processed", "reject", "operator:suppress", "operator:release",
)  # fmt: skip
BOUNCE_NAMES = ("bounce", "bounced")
DIAGNOSTICS = (
    "550 5.1.1 <x>: Recipient address rejected: User unknown",
    "452 4.2.2 Mailbox full",
    "550 5.7.1 Service unavailable; client host [203.0.113.9] blocked using zen.spamhaus.org",
)
ENCODINGS = ("json", "json_array", "form", "form_list")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain", "")


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def variants(address: str) -> st.SearchStrategy[str]:
    """The same recipient as different senders of webhooks might spell it: case, blanks,
    angle brackets, a display name, a trailing dot, the domain in Unicode."""
    local, _, domain = address.partition("@")
    spellings = [
        address,
        address.upper(),
        address.title(),
        f"  {address}",
        f"{address.capitalize()}\t",
        f" <{address.upper()}> ",
        f'"{local.title()} Smith" <{address}>',
        f"{local.title()} <{address.upper()}>",
        f"{address}.",
    ]
    spellings += [f"{local}@{form}" for form in UNICODE_DOMAINS.get(domain, ())]
    return st.sampled_from(spellings)


def time_text(ms: int, style: int) -> str:
    """One instant in one of the ISO-8601 spellings SMTP2GO (and its imitators) use."""
    moment = BASE + timedelta(milliseconds=ms)
    if style == 0:
        fraction = f".{ms % 1000:03d}" if ms % 1000 else ""
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    if style == 1:
        return moment.isoformat()
    if style == 2:
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return moment.astimezone(timezone(timedelta(hours=-5))).isoformat()


@dataclass(frozen=True)
class LogicalEvent:
    """One SMTP2GO event, before it is written into a body."""

    name: str
    addresses: tuple[str, ...]  # normalized; several only for `processed`
    bounce: str | None
    time: str | None
    id: str | None
    email_id: str
    message: str | None
    at_ms: int  # the instant `time` spells; an operator action always carries it

    @property
    def operator(self) -> bool:
        return self.name.startswith("operator:")

    def fields(self, recipients: list[str], listed: bool) -> list[tuple[str, Any]]:
        pairs: list[tuple[str, Any]] = [("event", self.name)]
        for key, value in (
            ("bounce", self.bounce),
            ("id", self.id),
            ("email_id", self.email_id),
            ("time", self.time),
            ("message", self.message),
        ):
            if value is not None:
                pairs.append((key, value))
        if self.name == "processed":
            if listed:
                pairs.append(("recipients", ", ".join(recipients)))
            else:
                pairs.append(("recipients", recipients))
        else:
            pairs.append(("rcpt", recipients[0]))
        return pairs


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery: a body as the door stores it."""

    body: bytes
    received_at: int
    content_type: str
    source: str = "smtp2go"

    def new_receipt(self) -> NewReceipt:
        return NewReceipt(
            source=self.source,
            received_at=self.received_at,
            content_type=self.content_type,
            body=self.body,
        )


def encode(pairs: list[tuple[str, Any]], encoding: str) -> bytes:
    if encoding in ("json", "json_array"):
        document = dict(pairs)
        return msgspec.json.encode([document] if encoding == "json_array" else document)
    form: list[tuple[str, str]] = []
    for key, value in pairs:
        if isinstance(value, list):
            form.extend((key, item) for item in value)  # repeated keys
        else:
            form.append((key, value))
    return urlencode(form).encode()


@st.composite
def deliveries_of(draw: st.DrawFn, event: LogicalEvent) -> Delivery:
    """One delivery of `event`: recipient spellings, encoding and receipt time drawn."""
    recipients = [draw(variants(address)) for address in event.addresses]
    if event.operator:  # appended by the service itself, at the time of the action
        at = micros(BASE) + event.at_ms * 1000
        action: operator.Action = "suppress" if event.name == "operator:suppress" else "release"
        body = operator.action_body(action, recipients[0], actor="ops", note="ticket", at=at)
        return Delivery(body, at, operator.CONTENT_TYPE, source=operator.SOURCE)
    encoding = draw(st.sampled_from(ENCODINGS))
    body = encode(event.fields(recipients, listed=encoding == "form_list"), encoding)
    return Delivery(body, draw(arrival(event)), draw(st.sampled_from(CONTENT_TYPES)))


def arrival(event: LogicalEvent) -> st.SearchStrategy[int]:
    """When a delivery of `event` reaches the ledger: after the event, within two days."""
    return st.integers(0, MAX_DELAY_MS).map(
        lambda delay: micros(BASE) + (event.at_ms + delay) * 1000
    )


@st.composite
def logical_events(
    draw: st.DrawFn, *, distinct_times: bool = False, timed: bool = False
) -> list[LogicalEvent]:
    """Logical events with unique ids (or none); times coarse (many ties) unless distinct."""
    count = draw(st.integers(1, 10))
    if distinct_times:
        instants = draw(
            st.lists(st.integers(0, SPAN_MS), min_size=count, max_size=count, unique=True)
        )
    else:
        hours = draw(st.lists(st.integers(0, 96), min_size=count, max_size=count))
        instants = [hour * 3_600_000 for hour in hours]
    events = []
    for index, ms in enumerate(instants):
        name = draw(st.sampled_from(NAMES))
        if name == "processed":
            addresses = tuple(
                draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=3, unique=True))
            )
        else:
            addresses = (draw(st.sampled_from(ADDRESSES)),)
        text: str | None = time_text(ms, draw(st.integers(0, 3)))
        if not timed:
            text = draw(st.sampled_from([text, text, text, None, "not a time"]))
        bounces = name in BOUNCE_NAMES
        events.append(
            LogicalEvent(
                name=name,
                addresses=addresses,
                bounce=draw(st.sampled_from(["hard", "soft", None, "undetermined"]))
                if bounces
                else None,
                time=text,
                id=draw(st.sampled_from([f"{index:08x}" * 4, f"{index:08x}" * 4, None])),
                email_id=draw(st.sampled_from(["1xAaaa-Bbbb-Cc", "1xDddd-Eeee-Ff"])),
                message=draw(st.sampled_from([None, *DIAGNOSTICS])) if bounces else None,
                at_ms=ms,
            )
        )
    return events


@st.composite
def redeliveries(
    draw: st.DrawFn, events: list[LogicalEvent], firsts: list[Delivery]
) -> list[tuple[int, Delivery]]:
    """Redeliveries of earlier events, each with the index of the event it repeats:
    byte-identical copies (a provider retry) or the same event, same id and recipient,
    written again in another encoding and spelling."""
    out: list[tuple[int, Delivery]] = []
    webhooks = [index for index, event in enumerate(events) if not event.operator]
    if not webhooks:  # an operator action is recorded once; nothing redelivers it
        return out
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.sampled_from(webhooks))
        if draw(st.booleans()):
            first = firsts[index]
            received_at = draw(arrival(events[index]))
            out.append((index, Delivery(first.body, received_at, first.content_type)))
        else:
            out.append((index, draw(deliveries_of(events[index]))))
    return out


@st.composite
def histories(
    draw: st.DrawFn,
    *,
    distinct_times: bool = False,
    timed: bool = False,
    collisions: bool = True,
) -> list[Delivery]:
    """A ledger's worth of SMTP2GO deliveries, redeliveries interleaved after their first.

    `distinct_times`: every logical event has its own instant (and `timed` makes every
    event carry a readable time), so per recipient no two distinct events tie.
    `collisions`: also add events that reuse another event's id and recipient with
    different content — the first one in the ledger wins.
    """
    events = draw(logical_events(distinct_times=distinct_times, timed=timed))
    firsts = [draw(deliveries_of(event)) for event in events]
    history: list[Delivery] = list(firsts)
    for index, copy in draw(redeliveries(events, firsts)):
        position = draw(st.integers(history.index(firsts[index]) + 1, len(history)))
        history.insert(position, copy)
    if collisions:
        webhooks = [event for event in events if not event.operator]
        for _ in range(draw(st.integers(0, 2)) if webhooks else 0):
            victim = draw(st.sampled_from(webhooks))
            at_ms = draw(st.integers(0, SPAN_MS))
            impostor = replace(
                victim,
                name=draw(st.sampled_from(NAMES[:8])),
                bounce="hard",
                time=time_text(at_ms, 0),
                at_ms=at_ms,
            )
            position = draw(st.integers(0, len(history)))
            history.insert(position, draw(deliveries_of(impostor)))
    return history


POLICIES = st.builds(
    Policy,
    soft_bounce_threshold=st.integers(1, 4),
    soft_bounce_window=st.sampled_from([None, "6h", "1d", "2d"]),
    delivery_clears_soft_bounces=st.booleans(),
    providers=st.sampled_from(
        [
            {},
            {"smtp2go": {"unsubscribe": "unsubscribe", "resubscribe": "resubscribe"}},
            {"smtp2go": {"unsubscribed": "unsubscribe", "open": "delivered"}},
            {"smtp2go": {"reject": "deferred", "bounce": "soft_bounce"}},
        ]
    ),
    classify=st.sampled_from(
        [
            [],
            [ClassifyRule(pattern=r"5\.7\.1 .*blocked", bounce="ignore")],
            [ClassifyRule(pattern="mailbox full", bounce="hard", source="smtp2go")],
        ]
    ),
    exclude=st.sampled_from(
        [
            [],
            [
                Exclusion(
                    source="smtp2go", start=BASE + timedelta(days=1), end=BASE + timedelta(days=2)
                )
            ],
        ]
    ),
)


def receipts(deliveries: Iterable[Delivery]) -> list[Receipt]:
    """Deliveries as ledger receipts numbered 1, 2, … (no ledger-level de-duplication)."""
    return [
        Receipt(
            seq=seq,
            source=delivery.source,
            received_at=delivery.received_at,
            content_type=delivery.content_type,
            body=delivery.body,
            headers={},
            peer=None,
            body_sha256=b"",
            chain_hash=b"",
        )
        for seq, delivery in enumerate(deliveries, start=1)
    ]


def project(ledger: Iterable[Receipt], policy: Policy) -> dict[str, RecipientState]:
    """The reference projection: derive every receipt's facts in ledger order, keep the
    first fact of each de-duplication key, read each recipient's whole history under the
    policy and replay it in history order."""
    mapper = Mapper(policy)
    seen: set[bytes] = set()
    by_email = defaultdict(list)
    for receipt in ledger:
        for item in derive(receipt):
            if item.key not in seen:
                seen.add(item.key)
                by_email[item.fact.recipient].append(item.fact)
    return {
        email: replay(email, mapper.history(sorted(facts, key=lambda f: f.position)), policy)
        for email, facts in sorted(by_email.items())
    }


# Resend: one event names every `to` address (shared when there are several), about one
# of a few messages: bounces, deliveries and complaints of the same message interleave.
RESEND_TO = (
    ("alice@example.com",),
    ("alice@example.com", "bob@example.org"),
    ("bob@example.org", "carol@example.net"),
)
RESEND_KINDS = ("email.bounced", "email.bounced", "email.delivered", "email.complained")


@st.composite
def resend_histories(draw: st.DrawFn) -> list[Delivery]:
    """Resend deliveries, each one event (no svix-id: the id is derived)."""
    deliveries = []
    for index in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(RESEND_KINDS))
        ms = draw(st.integers(0, SPAN_MS))
        data: dict[str, Any] = {
            "email_id": draw(st.sampled_from(["m1", "m2", "m3"])),
            "to": list(draw(st.sampled_from(RESEND_TO))),
            "subject": f"update {index}",
        }
        if kind == "email.bounced":
            kinds = ["Permanent", "Transient"]
            data["bounce"] = {"type": draw(st.sampled_from(kinds)), "message": "bounced"}
        body = msgspec.json.encode({"type": kind, "created_at": time_text(ms, 0), "data": data})
        received = micros(BASE) + (ms + draw(st.integers(0, MAX_DELAY_MS))) * 1000
        deliveries.append(Delivery(body, received, "application/json", source="resend"))
    return deliveries


def verdict(state: RecipientState) -> tuple[Any, ...]:
    """Everything in a state that does not name a ledger position (seq, ord).

    Which receipt carried an event depends on arrival order; when it happened, what it
    did and how many events there were does not.
    """
    return (
        state.suppressed,
        state.reason,
        state.since,
        tuple((cause.reason, cause.scope, cause.at) for cause in state.causes),
        tuple(counted.at for counted in state.soft_bounces),
        state.events,
        state.position[0],
    )
