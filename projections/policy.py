"""The policy: how history is read. A TOML file decoded into a frozen Struct.

Changing the policy and rebuilding is how history is re-read; the policy's hash is
stored with the projection so a server never serves state built under another one.
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from projections.errors import PolicyInvalid
from projections.state import REASON_RANK, Reason

# Bumped whenever the fold, a default mapping or the projection's tables change, so that
# a projection built by older code is rebuilt rather than served. 3: `suppressions`
# gained `source` and `last_event` and the indexes of the list's filters and sorts.
# 4: a release lifts only the causes it names, up to the evidence it saw;
# shared complaints and unsubscribes act; a shared bounce is weighed against the
# deliveries of its message (states count `shared_bounces`); `suppressions` lists every
# active reason; receipts the projector cannot fold are set aside in a table of their own.
PROJECTION_VERSION = "4"
# Bumped whenever decoding or a provider's field reading changes, or the fact index's
# layout: stored facts are then re-derived from the receipts by the next rebuild. 4: the
# key's uniqueness is an index of its own, built after the rows (projections/views.py).
# 5: facts gained `refusal` (no_mailbox / sender, from each provider's fields
# and the diagnostic's enhanced code), Resend `contact.*` events name `data.email`, SES
# complaints naming several recipients are shared, Mailgun `espblock` is its own kind;
# recipients are normalised anew (control characters and over-long addresses refused,
# quoted local parts unquoted, NFC, emoji domains as A-labels); a release's fact carries
# the causes it lifts and the evidence it saw.
# 6: an erased address's keyed hash in a redacted body is no recipient; the index keeps
# the receipts whose facts repeat indexed ones (`recipient_echoes`), which an erasure
# needs to find every receipt about an address.
# 7: facts carry the provider's stream fields (`labels`: a Postmark message stream, a
# SendGrid group, Mailgun tags…) and an operator action's streams.
# 8: the index is keyed by (recipient, key), with no index on the key alone.
DERIVATION_VERSION = "8"

Kind = Literal[
    "delivered",
    "bounce",
    "hard_bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "resubscribe",
    "provider_suppressed",
    "deferred",
    "ignore",
]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@functools.lru_cache(maxsize=64)
def duration_us(text: str) -> int:
    """Microseconds in a duration such as `90m`, `72h`, `7d` or `2w`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use a number and one of s, m, h, d, w)")
    micros = int(float(match[1]) * _UNIT_SECONDS[match[2]] * 1_000_000)
    if micros <= 0:
        raise ValueError(f"a duration must be longer than zero, not {text!r}")
    return micros


class ClassifyRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Reclassify bounces whose diagnostic text matches `pattern` (case-insensitive)."""

    pattern: str
    bounce: Literal["hard", "soft", "ignore"]
    source: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"bad pattern {self.pattern!r}: {exc}") from exc


ExcludedKind = Literal[
    "bounce",
    "unknown_mailbox",
    "delivered",
    "deferred",
    "complaint",
    "unsubscribe",
    "resubscribe",
    "provider_suppressed",
]


class Exclusion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ignore the events of `source` whose event time is in [start, end) and whose kind
    (as mapped) is in `kinds`.

    An exclusion is the clean-up after a sender-side incident (a blocklisting, a broken
    DKIM key), which produces bounces — so by default it applies to bounces and
    deliveries only, never to complaints or unsubscribes, and never to a bounce that
    says the mailbox does not exist (`unknown_mailbox`: the provider's own field says so,
    such as SES `NoEmail` or Postmark `BadEmailAddress`, or the status is 5.1.1 or
    5.1.10), which no sender-side incident causes. Name more kinds to widen it.
    """

    source: str
    start: UtcTime
    end: UtcTime
    note: str = ""
    kinds: list[ExcludedKind] = msgspec.field(default_factory=lambda: ["bounce", "delivered"])

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"exclusion for {self.source!r} ends before it starts")
        if not self.kinds:
            raise ValueError(f"exclusion for {self.source!r} names no kinds")


# At most this many streams: each is a label of a metric (api/metrics.py).
MAX_STREAMS = 64
# A stream's name, as the policy's `[streams.NAME]`, `--stream` and `?stream=` spell it.
STREAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# What every stream is blocked by, whatever its `blocked_by` says: a mailbox that does not
# exist takes no mail of any kind, and an operator's suppression for every stream means
# every stream.
EVERY_STREAM: tuple[str, ...] = ("hard_bounce", "manual")
# A value a stream's match names: one or several, text or a number (`asm_group = [4211]`).
MatchValues = str | int | list[str | int]


class Stream(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One kind of mail (`[streams.NAME]`) and the causes that block it.

    A cause blocks the stream when its reason is in `blocked_by` and its evidence is
    global (names no stream: every bounce, every event without a matching label) or
    belongs to this stream; `blocked_by_any_stream` widens that for some reasons to
    evidence of any stream (a complaint about anything stops marketing). `match` says
    which evidence belongs to the stream: `<provider>_<label> = [values]`, or for a
    label that takes a key, `<provider>_<label> = { key = value(s) }` (the labels each
    provider reads: docs/providers.md, "Stream fields"); evidence matching no stream's
    labels is global.
    """

    blocked_by: list[Reason] = msgspec.field(default_factory=lambda: list(REASON_RANK))
    blocked_by_any_stream: list[Reason] = []
    match: dict[str, MatchValues | dict[str, MatchValues]] = {}
    note: str = ""

    def __post_init__(self) -> None:
        missing = [reason for reason in EVERY_STREAM if reason not in self.blocked_by]
        if missing:
            raise ValueError(
                f"blocked_by must name {' and '.join(missing)}: a mailbox that does not "
                "exist takes no mail of any kind, and an operator's suppression for every "
                "stream blocks every stream"
            )
        outside = [r for r in self.blocked_by_any_stream if r not in self.blocked_by]
        if outside:
            raise ValueError(f"blocked_by_any_stream names {outside[0]!r}, not in blocked_by")


# The kinds a retention period may be set for: what a receipt's events are, as mapped
# (a receipt is kept for the longest period among its events' kinds). Bounces,
# complaints, unsubscribes and operator actions are evidence: kept forever.
RetainedKind = Literal["delivered", "deferred", "ignored"]


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Thresholds, mapping overrides, classification rules and exclusions.

    `sender_side_bounces` is what a bounce refusing the sender or the message (5.7.x:
    policy, reputation, blocklist; the provider's own sender-side class) counts as:
    `ignore` (the default: it says nothing about the address) or `soft`. A `[[classify]]`
    rule matching the bounce, or a `[providers.NAME]` mapping of its raw kind, wins.
    """

    soft_bounce_threshold: Annotated[int, msgspec.Meta(ge=1)] = 3
    soft_bounce_window: str | None = None
    delivery_clears_soft_bounces: bool = True
    sender_side_bounces: Literal["ignore", "soft"] = "ignore"
    providers: dict[str, dict[str, Kind]] = {}
    classify: list[ClassifyRule] = []
    exclude: list[Exclusion] = []
    # How long the bodies of receipts whose events are all of one kind are kept
    # (projections/retention.py): kind -> a duration ("90d") or "forever" (the default
    # for every kind). Not part of the fold: it never changes a verdict.
    retention: dict[RetainedKind, str] = {}
    # Kinds of mail with verdicts of their own (projections/streams.py): name -> rules.
    streams: dict[str, Stream] = {}

    def __post_init__(self) -> None:
        if self.soft_bounce_window is not None:
            duration_us(self.soft_bounce_window)
        if len(self.streams) > MAX_STREAMS:
            raise ValueError(f"at most {MAX_STREAMS} streams, not {len(self.streams)}")
        for name in self.streams:
            if not STREAM_NAME.match(name):
                raise ValueError(
                    f"stream name {name!r}: use lower-case letters, digits, '_', '-' and "
                    "'.' (at most 64, starting with a letter or digit)"
                )
        for kept in self.retention.values():
            if kept != "forever":
                duration_us(kept)

    @property
    def window_us(self) -> int | None:
        """The soft-bounce window in microseconds, or None for no window."""
        return None if self.soft_bounce_window is None else duration_us(self.soft_bounce_window)


DEFAULT_POLICY = Policy()


def policy_hash(policy: Policy) -> str:
    """A stable hash of the decoded policy (not of the file: reformatting changes nothing),
    the fold's version and the fact derivation's version: a change of any means rebuild.
    Retention is left out: it decides which bodies are kept, never a verdict."""
    folded = msgspec.to_builtins(policy)
    del folded["retention"]
    if not folded["streams"]:
        del folded["streams"]  # a policy without streams hashes as it did before them
    canonical = msgspec.json.encode(folded, order="sorted")
    versions = f"{PROJECTION_VERSION}/{DERIVATION_VERSION}".encode()
    return hashlib.sha256(versions + b"\0" + canonical).hexdigest()


def parse_policy(
    text: str | bytes, *, known_sources: frozenset[str], origin: str = "policy"
) -> Policy:
    """Decode a TOML policy; an unknown or misspelt key is refused with its name."""
    try:
        policy = msgspec.toml.decode(text, type=Policy)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise PolicyInvalid(f"{origin}: {exc}") from exc
    named = {*policy.providers, *(rule.source for rule in policy.classify if rule.source)}
    named |= {exclusion.source for exclusion in policy.exclude}
    unknown = sorted(named - known_sources)
    if unknown:  # a misspelt provider is refused, even as an empty table
        raise PolicyInvalid(
            f"{origin}: unknown provider {unknown[0]!r} (known: {', '.join(sorted(known_sources))})"
        )
    # An empty provider table means the defaults, exactly as no table does.
    return msgspec.structs.replace(
        policy, providers={name: table for name, table in policy.providers.items() if table}
    )


def load_policy(path: str | Path | None, *, known_sources: frozenset[str]) -> Policy:
    """Read the policy file at `path`, or the built-in defaults when `path` is None."""
    if path is None:
        return DEFAULT_POLICY
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyInvalid(f"cannot read policy file {path}: {exc.strerror}") from exc
    return parse_policy(text, known_sources=known_sources, origin=str(path))
