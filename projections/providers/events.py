"""What a provider module extracts from one raw event, before the policy reads it.

(This module was `providers/facts.py`, its event `Facts`: one letter from
`projections.facts.Fact`, which is this event once placed in the ledger.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from projections.policy import Kind
from projections.providers.common import Label, Refusal


class ProviderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One provider event about one recipient, in the provider's own terms (placed in
    the ledger by `projections.facts.place`, it becomes a `Fact`).

    `raw_kind` is the provider's event name after its spelling synonyms are folded;
    `bounce_class` is the provider's own hard/soft call, None when it made none;
    `event_id` identifies the event for de-duplication (derived when the provider
    sends no id). `scope` is the list, topic, tag or stream an (un)subscribe is about
    (None: the provider's whole list), so a resubscribe lifts only the unsubscribe it
    answers. `shared` is how many recipients an event names without saying which one
    it is about (0: it names its recipient): such an event never heals anyone and a
    bounce counts as soft for each, while a complaint or unsubscribe suppresses every
    listed address (see projections.mapping). `refusal` is who a refusal is about, as
    the provider's own fields state it: `no_mailbox` (the mailbox does not exist) or
    `sender` (a refusal of the sender or the message: 5.7.x, reputation, content);
    None when its fields say neither (facts.place then reads the diagnostic text).
    `labels` are the provider's own fields that say which kind of mail the event is
    about (`common.labels`; the module's LABELS names them), which the policy's
    streams match.
    """

    raw_kind: str
    recipient: str | None
    at: int | None
    event_id: str
    message_id: str | None = None
    diagnostic: str | None = None
    bounce_class: str | None = None
    scope: str | None = None
    shared: int = 0
    refusal: Refusal | None = None
    labels: tuple[Label, ...] = ()


class Provider(Protocol):
    """What every provider module exposes (modules satisfy this protocol)."""

    NAME: str
    DEFAULT_MAPPING: dict[str, Kind]
    # The labels the module reads (`ProviderEvent.labels`): name -> what it is, in the
    # provider's terms. A name ending in `:` takes a key (`tag:` -> `tag:campaign`).
    LABELS: dict[str, str]

    def decode(
        self, body: bytes, content_type: str = "", headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]: ...
    def facts(self, raw: dict[str, Any]) -> list[ProviderEvent]: ...
    def canonical_kind(self, name: str) -> str: ...
