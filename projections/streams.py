"""Streams: a verdict per kind of mail, from one fold.

The fold keeps every active cause with the streams its evidence belongs to (`Cause.
streams`; empty: global). Which streams that is, the policy's `[streams.NAME.match]`
says from the labels a provider read off the event (`ProviderEvent.labels`) or the
stream an operator named; a bounce is always global. The verdict for a stream is then a
pure function of the causes and that stream's rules (`blocking`), so adding a stream or
changing its rules is a policy change like any other: dry run, rebuild, recorded.

Without a stream, the verdict is the strictest: any active cause suppresses — what every
read answered before streams, so nothing that worked starts mailing anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from projections import operator
from projections.errors import UnknownStream
from projections.policy import MatchValues, Policy, Stream
from projections.providers import PROVIDERS
from projections.providers.common import Label, label_value
from projections.state import Cause


def matches(stream: Stream) -> set[tuple[str, str, str]]:
    """The (provider, label, value) triples a stream's `match` names; ValueError naming
    an unknown provider or label, or a value of the wrong shape. A table names a label
    that takes a key (`tag:`), anything else one that does not (`tag`): Mailtura has both."""
    found: set[tuple[str, str, str]] = set()
    for key, wanted in stream.match.items():
        provider, _, label = key.partition("_")
        if provider not in PROVIDERS or not label:
            raise ValueError(
                f"{key!r}: name a provider and one of its labels, as <provider>_<label> "
                f"(providers: {', '.join(sorted(PROVIDERS))})"
            )
        known = PROVIDERS[provider].LABELS
        if isinstance(wanted, dict) and f"{label}:" in known:
            for name, values in wanted.items():
                named = label_name(provider, label, name)
                found |= {(provider, named, value) for value in _values(values)}
        elif not isinstance(wanted, dict) and label in known:
            found |= {(provider, label, value) for value in _values(wanted)}
        elif f"{label}:" in known or label in known:
            shape = (
                "a table of keys, as { name = value }"
                if label not in known
                else "a value or a list of values, not a table"
            )
            raise ValueError(f"{key!r} takes {shape}")
        else:
            names = ", ".join(sorted({f"{provider}_{n.rstrip(':')}" for n in known}))
            raise ValueError(f"{key!r}: {provider} has no such label (it has: {names})")
    return found


def label_name(provider: str, label: str, key: str) -> str:
    """A keyed label's name as the provider module writes it (`header:x-stream`): lower
    case; SMTP2GO reads `_` in a header's name as `-`."""
    name = f"{label}:{key.strip().lower()}"
    return name.replace("_", "-") if provider == "smtp2go" and label == "header" else name


def _values(values: MatchValues) -> list[str]:
    """A match's values as labels hold them (text; numbers as text); ValueError for one
    no label can hold — blank, or an address (`common.labels`): it would never match."""
    listed = values if isinstance(values, list) else [values]
    found = []
    for value in listed:
        kept = label_value(value)
        if kept is None:
            raise ValueError(
                f"{str(value)[:40]!r} can never match: a label is never blank and never holds "
                "an address"
            )
        found.append(kept)
    return found


class Streams:
    """A policy's streams, compiled: which streams an event belongs to, and what blocks
    each one."""

    def __init__(self, policy: Policy) -> None:
        self.rules: Mapping[str, Stream] = policy.streams
        self._by_label: dict[tuple[str, str, str], set[str]] = {}
        for name, stream in policy.streams.items():
            for triple in matches(stream):
                self._by_label.setdefault(triple, set()).add(name)

    def of(self, source: str, event_labels: Iterable[Label]) -> tuple[str, ...]:
        """The streams an event's evidence belongs to (empty: global). An operator's
        names a stream directly; one this policy does not define is global."""
        if not self.rules:
            return ()
        found: set[str] = set()
        for name, value in event_labels:
            if source == operator.SOURCE:
                if name == operator.STREAM_LABEL and value in self.rules:
                    found.add(value)
            else:
                found |= self._by_label.get((source, name, value), set())
        return tuple(sorted(found))


def blocks(cause: Cause, stream: str, rules: Stream) -> bool:
    """Whether one cause blocks `stream` under its rules (`reaches`)."""
    return reaches(cause.reason, cause.streams, stream, rules)


def reaches(reason: str, streams: tuple[str, ...], stream: str, rules: Stream) -> bool:
    """Whether a cause of `reason` whose evidence belongs to `streams` (none: global)
    blocks `stream`: its reason is one the stream is blocked by, and its evidence is
    global, this stream's, or any stream's for a reason the stream takes from every one."""
    if reason not in rules.blocked_by:
        return False
    if not streams or stream in streams:
        return True
    return reason in rules.blocked_by_any_stream


def within(cause: Cause, streams: tuple[str, ...]) -> bool:
    """Whether an operator's release for `streams` (none: every stream) reaches a cause:
    one for every stream reaches all; one for some streams, the causes whose evidence
    belongs to those streams alone — never a global cause, which stays for the others."""
    return not streams or (bool(cause.streams) and set(cause.streams) <= set(streams))


class Scope:
    """One stream's view of the causes: the verdict for `name` under `rules`."""

    def __init__(self, name: str, rules: Stream) -> None:
        self.name, self.rules = name, rules
        # A list holds few distinct `reasons` columns (23 in 5,000 rows of the bench):
        # each is read once per scope (one per request).
        self._blocked: dict[tuple[str, str], list[str]] = {}

    def blocking(self, causes: Iterable[Cause]) -> tuple[Cause, ...]:
        return tuple(cause for cause in causes if blocks(cause, self.name, self.rules))

    def blocked(self, tags: str, strongest: str) -> list[str]:
        """The reasons of a suppressions row that block this stream, strongest first:
        `tags`, its `reasons` column (a row written before the column held every reason
        has only `strongest`, its `reason`, read as global)."""
        known = self._blocked.get((tags, strongest))
        if known is None:
            causes = parse_tags(tags) or [(strongest, ())]
            known = [
                reason
                for reason, streams in causes
                if reaches(reason, streams, self.name, self.rules)
            ]
            self._blocked[(tags, strongest)] = known
        return known


def scope(policy: Policy, stream: str | None) -> Scope | None:
    """The view of `stream` under `policy` (None for None: every stream, the strictest);
    UnknownStream when the policy does not define it."""
    if stream is None:
        return None
    rules = policy.streams.get(stream)
    if rules is None:
        raise UnknownStream(stream, sorted(policy.streams))
    return Scope(stream, rules)


def tag(cause: Cause) -> str:
    """A cause as the suppressions table lists it: its reason, and `@a+b` for the streams
    its evidence belongs to (none: global) — so a check for a stream reads no state."""
    return f"{cause.reason}@{'+'.join(cause.streams)}" if cause.streams else cause.reason


def parse_tags(tags: str) -> list[tuple[str, tuple[str, ...]]]:
    """The (reason, streams) pairs of a `reasons` column written by `tag`."""
    pairs = []
    for item in tags.split(",") if tags else ():
        reason, _, streams = item.partition("@")
        pairs.append((reason, tuple(streams.split("+")) if streams else ()))
    return pairs


def reason_names(tags: str, strongest: str) -> list[str]:
    """The reasons of a `reasons` column, each once, strongest first (`strongest` when the
    column is empty: rows written before it held every reason)."""
    return list(dict.fromkeys(reason for reason, _ in parse_tags(tags))) or [strongest]


class StreamVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One stream's verdict on an address, and the rule that decided it, in words."""

    stream: str
    suppressed: bool
    rule: str
    receipt: int | None = None  # the deciding cause's evidence (shown first)


def verdicts(policy: Policy, causes: tuple[Cause, ...]) -> list[StreamVerdict]:
    """Each of the policy's streams' verdict on these causes (strongest first), with the
    rule that decided: the cause that blocks it and why it reaches the stream, or why
    none of them does."""
    found = []
    for name in sorted(policy.streams):
        rules = policy.streams[name]
        blocking = [cause for cause in causes if blocks(cause, name, rules)]
        if blocking:
            cause = blocking[0]
            found.append(
                StreamVerdict(
                    stream=name, suppressed=True, rule=_why(cause, name), receipt=cause.seq
                )
            )
            continue
        passed = "; ".join(_why_not(cause, name, rules) for cause in causes)
        found.append(StreamVerdict(stream=name, suppressed=False, rule=passed or "no active cause"))
    return found


def _why(cause: Cause, name: str) -> str:
    if not cause.streams:
        reach = "its evidence names no stream, so it is about every one"
    elif name in cause.streams:
        reach = f"its evidence belongs to {name}"
    else:
        reach = (
            f"its evidence belongs to {'+'.join(cause.streams)}, and [streams.{name}] takes "
            f"{cause.reason} from any stream (blocked_by_any_stream)"
        )
    return f"{cause.reason} (receipt {cause.seq}) is in [streams.{name}] blocked_by; {reach}"


def _why_not(cause: Cause, name: str, rules: Stream) -> str:
    if cause.reason not in rules.blocked_by:
        return f"{cause.reason} is not in [streams.{name}] blocked_by"
    return f"{cause.reason} (receipt {cause.seq}) belongs to {'+'.join(cause.streams)} only"
