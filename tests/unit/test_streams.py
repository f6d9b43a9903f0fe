"""projections/streams.py, piece by piece: which streams evidence belongs to, how a policy's
match is read and refused, the suppressions column's tags, and the rule each verdict
names."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from projections import operator
from projections.errors import UnknownStream
from projections.facts import Fact
from projections.mapping import Mapper
from projections.policy import Policy, Stream
from projections.state import Cause
from projections.streams import (
    Streams,
    label_name,
    matches,
    parse_tags,
    reason_names,
    scope,
    tag,
    verdicts,
    within,
)

NEWS = Stream(
    match={
        "postmark_message_stream": ["broadcast", "digest"],
        "sendgrid_asm_group": 4211,
        "smtp2go_header": {"X_Stream": ["news", "weekly"]},
        "mailtura_tag": "news",
    }
)
PROMO = Stream(blocked_by_any_stream=["complaint"], match={"mailgun_tag": ["promo"]})
TRANSACTIONAL = Stream(blocked_by=["hard_bounce", "manual", "complaint"])
POLICY = Policy(streams={"news": NEWS, "promo": PROMO, "transactional": TRANSACTIONAL})


def test_a_match_names_provider_label_and_value_triples() -> None:
    assert matches(NEWS) == {
        ("postmark", "message_stream", "broadcast"),
        ("postmark", "message_stream", "digest"),
        ("sendgrid", "asm_group", "4211"),
        ("smtp2go", "header:x-stream", "news"),
        ("smtp2go", "header:x-stream", "weekly"),
        ("mailtura", "tag", "news"),
    }
    assert matches(Stream(match={"mailtura_tag": {"Kind": "news"}})) == {
        ("mailtura", "tag:kind", "news")
    }


@pytest.mark.parametrize(
    ("match", "said"),
    [
        (
            {"nobody_tag": ["x"]},
            "'nobody_tag': name a provider and one of its labels, as <provider>_<label> "
            "(providers: mailgun, mailtura, postmark, resend, sendgrid, ses, smtp2go)",
        ),
        ({"postmark": ["x"]}, "'postmark': name a provider and one of its labels"),
        (
            {"postmark_stream": ["x"]},
            "'postmark_stream': postmark has no such label (it has: postmark_message_stream, "
            "postmark_metadata, postmark_tag)",
        ),
        (
            {"postmark_message_stream": {"a": "b"}},
            "'postmark_message_stream' takes a value or a list of values, not a table",
        ),
        ({"smtp2go_header": ["x"]}, "'smtp2go_header' takes a table of keys, as { name = value }"),
        (
            {"mailgun_tag": ["news", ""]},
            "'' can never match: a label is never blank and never holds an address",
        ),
        (
            {"mailgun_tag": "someone.with.a.very.long.name@example.org"},
            "'someone.with.a.very.long.name@example.or' can never match",  # 40 characters
        ),
        ({"mailgun_tag": "a@example.org"}, "'a@example.org' can never match"),
        ({"smtp2go_header": {"X-To": ["a@example.org"]}}, "'a@example.org' can never match"),
    ],
)
def test_a_match_naming_what_no_provider_reads_is_refused(match: dict[str, Any], said: str) -> None:
    with pytest.raises(ValueError, match=r"^'") as refused:  # names the key or the value
        matches(Stream(match=match))
    assert str(refused.value).startswith(said)


def test_smtp2go_header_names_read_underscores_as_dashes_and_others_keep_them() -> None:
    assert label_name("smtp2go", "header", " X_Stream ") == "header:x-stream"
    assert label_name("ses", "tag", "Campaign_Id") == "tag:campaign_id"


def test_evidence_belongs_to_every_stream_its_labels_match() -> None:
    streams = Streams(POLICY)
    assert streams.of("postmark", [("message_stream", "broadcast")]) == ("news",)
    assert streams.of("sendgrid", [("asm_group", "4211"), ("category", "x")]) == ("news",)
    assert streams.of("mailgun", [("tag", "promo")]) == ("promo",)
    assert streams.of("postmark", [("message_stream", "outbound")]) == ()  # global
    assert streams.of("mailgun", [("message_stream", "broadcast")]) == ()  # another provider's
    both = Policy(streams={"a": NEWS, "b": NEWS})
    assert Streams(both).of("mailtura", [("tag", "news")]) == ("a", "b")
    assert Streams(Policy()).of("postmark", [("message_stream", "broadcast")]) == ()


def test_an_operator_names_streams_directly_and_an_undefined_one_is_global() -> None:
    streams = Streams(POLICY)
    label = operator.STREAM_LABEL
    assert streams.of(operator.SOURCE, [(label, "promo"), (label, "news")]) == ("news", "promo")
    assert streams.of(operator.SOURCE, [(label, "gone")]) == ()
    assert streams.of(operator.SOURCE, [("tag", "promo")]) == ()


def test_scope_refuses_a_stream_the_policy_does_not_define() -> None:
    assert scope(POLICY, None) is None
    assert scope(POLICY, "news") is not None
    with pytest.raises(UnknownStream, match="the policy's streams: news, promo, transactional"):
        scope(POLICY, "weekly")


def test_tags_round_trip_through_the_suppressions_column() -> None:
    causes = [
        Cause("complaint", 1, 1, streams=("promo",)),
        Cause("hard_bounce", 1, 2),
        Cause("unsubscribe", 1, 3, streams=("news", "promo")),
    ]
    column = ",".join(tag(cause) for cause in causes)
    assert column == "complaint@promo,hard_bounce,unsubscribe@news+promo"
    assert parse_tags(column) == [
        ("complaint", ("promo",)),
        ("hard_bounce", ()),
        ("unsubscribe", ("news", "promo")),
    ]
    assert parse_tags("") == []
    assert reason_names("complaint@promo,complaint,hard_bounce", "x") == [
        "complaint",
        "hard_bounce",
    ]
    assert reason_names("", "manual") == ["manual"]


def test_a_row_is_read_per_stream_an_old_row_as_global() -> None:
    news = scope(POLICY, "news")
    promo = scope(POLICY, "promo")
    assert news is not None
    assert promo is not None
    assert news.blocked("unsubscribe@promo,hard_bounce", "unsubscribe") == ["hard_bounce"]
    assert news.blocked("complaint@promo", "complaint") == []
    assert promo.blocked("complaint@news", "complaint") == ["complaint"]  # any stream's
    assert promo.blocked("unsubscribe@news", "unsubscribe") == []
    assert news.blocked("", "unsubscribe") == ["unsubscribe"]  # written before tags: global


def test_a_release_reaches_only_causes_of_its_streams_alone() -> None:
    assert within(Cause("unsubscribe", 1, 1), ())
    assert within(Cause("unsubscribe", 1, 1, streams=("news",)), ())
    assert within(Cause("unsubscribe", 1, 1, streams=("news",)), ("news", "promo"))
    assert not within(Cause("unsubscribe", 1, 1, streams=("news", "promo")), ("news",))
    assert not within(Cause("unsubscribe", 1, 1), ("news",))  # a global cause stays


def test_bounces_are_global_whatever_their_evidence() -> None:
    """A hard bounce of a newsletter, and soft bounces of it reaching the threshold, say
    the mailbox does not work for any kind of mail: their causes name no stream."""
    mapper = Mapper(Policy(soft_bounce_threshold=2, streams=POLICY.streams))
    bounces = [
        Fact(
            source="postmark",
            raw_kind=kind,
            recipient="r@example.org",
            at=n,
            seq=n,
            ord=0,
            event_id=f"b{n}",
            bounce_class=cls,
            labels=(("message_stream", "broadcast"),),
        )
        for n, kind, cls in ((1, "soft_bounce", "soft"), (2, "soft_bounce", "soft"))
    ]
    state = mapper.fold_facts("r@example.org", bounces)
    assert [(c.reason, c.streams) for c in state.causes] == [("soft_bounce_threshold", ())]
    hard = msgspec.structs.replace(bounces[0], raw_kind="hard_bounce", bounce_class="hard")
    state = mapper.fold_facts("r@example.org", [hard])
    assert [(c.reason, c.streams) for c in state.causes] == [("hard_bounce", ())]


def test_each_verdict_names_the_rule_that_decided() -> None:
    causes = (
        Cause("complaint", 1, 7, streams=("news",)),
        Cause("unsubscribe", 1, 9, streams=("news",)),
    )
    by_stream = {v.stream: v for v in verdicts(POLICY, causes)}
    assert (by_stream["news"].suppressed, by_stream["news"].receipt) == (True, 7)
    assert by_stream["news"].rule == (
        "complaint (receipt 7) is in [streams.news] blocked_by; its evidence belongs to news"
    )
    assert by_stream["promo"].rule == (
        "complaint (receipt 7) is in [streams.promo] blocked_by; its evidence belongs to "
        "news, and [streams.promo] takes complaint from any stream (blocked_by_any_stream)"
    )
    two = (Cause("complaint", 1, 4, streams=("news", "transactional")),)
    (_, promo, _) = verdicts(POLICY, two)
    assert "its evidence belongs to news+transactional, and [streams.promo]" in promo.rule
    news_only = Policy(streams={"news": NEWS, "transactional": TRANSACTIONAL, "x": PROMO})
    spread = (Cause("unsubscribe", 1, 5, streams=("news", "x")),)
    assert verdicts(news_only, spread)[1].rule == (
        "unsubscribe is not in [streams.transactional] blocked_by"
    )
    assert verdicts(Policy(streams={"t": NEWS, "u": NEWS}), spread)[0].rule == (
        "unsubscribe (receipt 5) belongs to news+x only"
    )
    assert not by_stream["transactional"].suppressed
    assert by_stream["transactional"].receipt is None
    assert by_stream["transactional"].rule == (
        "complaint (receipt 7) belongs to news only; "
        "unsubscribe is not in [streams.transactional] blocked_by"
    )
    (everyone,) = verdicts(Policy(streams={"t": TRANSACTIONAL}), (Cause("manual", 1, 3),))
    assert everyone.rule == (
        "manual (receipt 3) is in [streams.t] blocked_by; its evidence names no stream, so "
        "it is about every one"
    )
    (free,) = verdicts(Policy(streams={"t": TRANSACTIONAL}), ())
    assert (free.suppressed, free.rule) == (False, "no active cause")


def test_a_stream_must_be_blocked_by_hard_bounces_and_manual_suppressions() -> None:
    with pytest.raises(ValueError, match="blocked_by must name hard_bounce and manual"):
        Stream(blocked_by=["complaint"])
    with pytest.raises(ValueError, match="blocked_by must name manual"):
        Stream(blocked_by=["hard_bounce"])
    with pytest.raises(ValueError, match="blocked_by_any_stream names 'complaint', not in"):
        Stream(blocked_by=["hard_bounce", "manual"], blocked_by_any_stream=["complaint"])


def _postmark(kind: str, n: int, message_stream: str) -> Fact:
    return Fact(
        source="postmark",
        raw_kind=f"subscription_change.{kind}",
        recipient="r@example.org",
        at=n * 1_000_000,
        seq=n,
        ord=0,
        event_id=f"e{n}",
        scope=message_stream,
        labels=(("message_stream", message_stream),),
    )


def test_a_resubscribe_lifts_only_the_unsubscribe_of_its_own_list_and_streams() -> None:
    """Unsubscribed from the newsletter (broadcast) and from the transactional stream's
    list (outbound, which no stream matches: global); resubscribing to the newsletter
    lifts the newsletter's unsubscribe alone."""
    mapper = Mapper(POLICY)
    facts = [
        _postmark("unsubscribed", 1, "broadcast"),
        _postmark("unsubscribed", 2, "outbound"),
        _postmark("resubscribed", 3, "broadcast"),
    ]
    state = mapper.fold_facts("r@example.org", facts)
    assert [(c.reason, c.scope, c.streams) for c in state.causes] == [
        ("unsubscribe", "postmark:outbound", ())
    ]
    before = mapper.fold_facts("r@example.org", facts[:2])
    assert [(c.scope, c.streams) for c in before.causes] == [
        ("postmark:broadcast", ("news",)),
        ("postmark:outbound", ()),
    ]
