"""The TOML policy: parsing, refusals naming the bad key, the hash, and its effects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger import Receipt
from projections import (
    DEFAULT_POLICY,
    KNOWN_SOURCES,
    Mapper,
    Policy,
    PolicyInvalid,
    load_policy,
    policy_hash,
    replay,
)
from projections.events import (
    Bounce,
    Complaint,
    Delivered,
    Ignored,
    NormalizedEvent,
    Unsubscribe,
)
from projections.facts import Fact
from projections.policy import ClassifyRule, Exclusion, parse_policy
from tests.conftest import fixture_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BLOCKED = "550 5.7.1 Service unavailable; client host [203.0.113.9] blocked using zen.spamhaus.org"
# A refusal with no enhanced code: neither a missing mailbox nor a sender-side refusal.
REFUSED = "550 Service unavailable; client host [203.0.113.9] blocked"


def parse(text: str) -> Policy:
    return parse_policy(text, known_sources=KNOWN_SOURCES)


def refused(text: str) -> str:
    with pytest.raises(PolicyInvalid) as info:
        parse(text)
    return str(info.value)


def micros(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds()) * 1_000_000 + moment.microsecond


# Webhooks arrive after their events: a receipt time after every event time used here.
RECEIVED = 1_800_000_000_000_000  # 2027-01-15


def mapped(body: bytes, policy: Policy, *, received_at: int = RECEIVED) -> list[NormalizedEvent]:
    receipt = Receipt(
        seq=1,
        source="smtp2go",
        received_at=received_at,
        content_type="application/json",
        body=body,
        headers={},
        peer=None,
        body_sha256=b"",
        chain_hash=b"",
    )
    return [item.event for item in Mapper(policy).placed(receipt)]


def only(body: bytes, policy: Policy, **kwargs: Any) -> NormalizedEvent:
    events = mapped(body, policy, **kwargs)
    assert len(events) == 1, events
    return events[0]


def bounce(message: str, cls: str | None = "hard", time: str = "2026-05-04T10:00:00Z") -> bytes:
    fields = {"event": "bounce", "id": "b1", "rcpt": "x@example.com", "time": time}
    if cls is not None:
        fields["bounce"] = cls
    fields["message"] = message
    return msgspec.json.encode(fields)


# -- parsing ----------------------------------------------------------------------------------


def test_no_policy_file_means_the_defaults() -> None:
    policy = load_policy(None, known_sources=KNOWN_SOURCES)
    assert policy == DEFAULT_POLICY
    assert policy.soft_bounce_threshold == 3
    assert policy.soft_bounce_window is None
    assert policy.window_us is None
    assert policy.delivery_clears_soft_bounces is True
    assert policy.providers == {}
    assert policy.classify == []
    assert policy.exclude == []


def test_an_empty_policy_file_means_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("# nothing set\n")
    policy = load_policy(path, known_sources=KNOWN_SOURCES)
    assert policy == DEFAULT_POLICY
    assert policy_hash(policy) == policy_hash(DEFAULT_POLICY)


def test_every_field_is_read() -> None:
    policy = parse(
        """
        soft_bounce_threshold = 5
        soft_bounce_window = "72h"
        delivery_clears_soft_bounces = false

        [providers.smtp2go]
        unsubscribe = "unsubscribe"
        open = "ignore"

        [[classify]]
        pattern = '5\\.7\\.1 .*blocked'
        bounce = "ignore"
        source = "smtp2go"
        note = "IP reputation"

        [[exclude]]
        source = "smtp2go"
        start = 2026-05-04T10:00:00Z
        end = 2026-05-04T12:00:00+01:00
        note = "incident 42"
        """
    )
    assert policy.soft_bounce_threshold == 5
    assert policy.soft_bounce_window == "72h"
    assert policy.window_us == 72 * 3600 * 1_000_000
    assert policy.delivery_clears_soft_bounces is False
    assert policy.providers == {"smtp2go": {"unsubscribe": "unsubscribe", "open": "ignore"}}
    assert policy.classify == [
        ClassifyRule(r"5\.7\.1 .*blocked", "ignore", source="smtp2go", note="IP reputation")
    ]
    (exclusion,) = policy.exclude
    assert exclusion.source == "smtp2go"
    assert exclusion.start == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    assert exclusion.end == datetime(2026, 5, 4, 11, 0, tzinfo=UTC)
    assert exclusion.note == "incident 42"


@pytest.mark.parametrize(
    ("window", "seconds"),
    [("90s", 90), ("90m", 5400), ("72h", 259_200), ("7d", 604_800), ("2w", 1_209_600)],
)
def test_the_window_is_a_number_and_a_unit(window: str, seconds: int) -> None:
    assert parse(f'soft_bounce_window = "{window}"').window_us == seconds * 1_000_000


def test_a_fractional_window_is_accepted() -> None:
    assert parse('soft_bounce_window = "1.5d"').window_us == 36 * 3600 * 1_000_000


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("soft_bounce_treshold = 2", "soft_bounce_treshold"),
        ("delivery_clears_soft_bounce = false", "delivery_clears_soft_bounce"),
        ("soft_bounce_windows = '7d'", "soft_bounce_windows"),
        ("[[clasify]]\npattern = 'x'\nbounce = 'soft'", "clasify"),
        ("[[classify]]\npattern = 'x'\nbounce = 'soft'\nsorce = 'smtp2go'", "sorce"),
        (
            "[[exclude]]\nsource = 'smtp2go'\nstart = 2026-05-04T10:00:00Z\n"
            "ned = 2026-05-04T11:00:00Z",
            "ned",
        ),
        ("[[exclude]]\nsource = 'smtp2go'\nstart = 2026-05-04T10:00:00Z", "end"),
        (
            "[[exclude]]\nsource = 'smtp2go'\nstart = 2026-05-04T10:00:00Z\n"
            "end = 2026-05-04T11:00:00Z\nreason = 'x'",
            "reason",
        ),
    ],
)
def test_an_unknown_or_misspelt_key_is_refused_by_name(text: str, name: str) -> None:
    assert name in refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "[providers.sendgird]\nbounce = 'bounce'",
        "[[classify]]\npattern = 'x'\nbounce = 'soft'\nsource = 'sendgird'",
        "[[exclude]]\nsource = 'sendgird'\nstart = 2026-05-04T10:00:00Z\n"
        "end = 2026-05-04T11:00:00Z",
    ],
    ids=["providers", "classify", "exclude"],
)
def test_an_unknown_provider_is_refused_by_name(text: str) -> None:
    message = refused(text)
    assert "sendgird" in message
    assert "smtp2go" in message  # the known ones are listed, so the typo is easy to see


@pytest.mark.parametrize("window", ["7 days", "7", "d", "-1d", "7y", ""])
def test_a_bad_duration_is_refused(window: str) -> None:
    assert repr(window) in refused(f'soft_bounce_window = "{window}"')


def test_a_bad_regular_expression_is_refused() -> None:
    message = refused("[[classify]]\npattern = '5\\.7\\.1 ([blocked'\nbounce = 'ignore'")
    assert "bad pattern" in message
    assert "classify" in message


def test_a_bounce_verdict_outside_hard_soft_ignore_is_refused() -> None:
    assert "classify" in refused("[[classify]]\npattern = 'x'\nbounce = 'complaint'")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-05-04T10:00:00Z", "2026-05-04T09:00:00Z"),
        ("2026-05-04T10:00:00Z", "2026-05-04T10:00:00Z"),
        ("2026-05-04T10:00:00Z", "2026-05-04T11:00:00+02:00"),  # 09:00Z
    ],
    ids=["before", "empty", "before-with-offset"],
)
def test_an_exclusion_that_ends_before_it_starts_is_refused(start: str, end: str) -> None:
    message = refused(f"[[exclude]]\nsource = 'smtp2go'\nstart = {start}\nend = {end}")
    assert "ends before it starts" in message


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-05-04T10:00:00", "2026-05-04T11:00:00Z"),
        ("2026-05-04T10:00:00Z", "2026-05-04T11:00:00"),
        ("2026-05-04", "2026-05-05"),
    ],
)
def test_an_exclusion_time_without_a_timezone_is_refused(start: str, end: str) -> None:
    message = refused(f"[[exclude]]\nsource = 'smtp2go'\nstart = {start}\nend = {end}")
    assert "exclude" in message


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_threshold_below_one_is_refused(value: str) -> None:
    assert "soft_bounce_threshold" in refused(f"soft_bounce_threshold = {value}")


def test_a_threshold_of_one_is_accepted() -> None:
    assert parse("soft_bounce_threshold = 1").soft_bounce_threshold == 1


@pytest.mark.parametrize(
    "text",
    [
        'soft_bounce_threshold = "3"',
        "soft_bounce_threshold = true",
        'delivery_clears_soft_bounces = "yes"',
        "[providers.smtp2go]\nunsubscribe = 'unsub'",
        "soft_bounce_threshold = ",
        "[providers]\nsmtp2go = 3",
    ],
)
def test_a_wrongly_typed_value_or_broken_toml_is_refused(text: str) -> None:
    refused(text)


def test_a_policy_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("soft_bounce_treshold = 2\n")
    with pytest.raises(PolicyInvalid) as info:
        load_policy(path, known_sources=KNOWN_SOURCES)
    assert str(path) in str(info.value)
    assert "soft_bounce_treshold" in str(info.value)


def test_a_missing_policy_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyInvalid) as info:
        load_policy(path, known_sources=KNOWN_SOURCES)
    assert str(path) in str(info.value)


# -- the hash ---------------------------------------------------------------------------------

COMPACT = """
soft_bounce_threshold = 2
soft_bounce_window = "7d"
providers = { smtp2go = { unsubscribe = "unsubscribe" } }
classify = [ { pattern = 'blocked', bounce = "ignore" } ]
"""

SPREAD = """
# the same policy, written another way

[providers.smtp2go]
"unsubscribe" = 'unsubscribe'

[[classify]]
bounce  = "ignore"
pattern = "blocked"

"""  # top-level keys must precede tables in TOML, so they are prepended below


def test_the_policy_hash_is_stable_across_reformatting_of_the_same_toml() -> None:
    spread = 'soft_bounce_window   =   "7d"   # a week\nsoft_bounce_threshold=2\n' + SPREAD
    assert parse(COMPACT) == parse(spread)
    assert policy_hash(parse(COMPACT)) == policy_hash(parse(spread))


def test_writing_a_default_value_out_does_not_change_the_hash() -> None:
    explicit = "soft_bounce_threshold = 3\ndelivery_clears_soft_bounces = true\n"
    assert policy_hash(parse(explicit)) == policy_hash(DEFAULT_POLICY)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("soft_bounce_threshold = 2", "soft_bounce_threshold = 3"),
        ('soft_bounce_window = "7d"', 'soft_bounce_window = "8d"'),
        ('unsubscribe = "unsubscribe"', 'unsubscribe = "complaint"'),
        ('bounce = "ignore" }', 'bounce = "soft" }'),
        ("pattern = 'blocked'", "pattern = 'Blocked'"),
    ],
)
def test_the_policy_hash_changes_when_a_value_changes(old: str, new: str) -> None:
    assert old in COMPACT
    changed = COMPACT.replace(old, new)
    assert policy_hash(parse(changed)) != policy_hash(parse(COMPACT))


def test_the_policy_hash_changes_with_an_added_exclusion() -> None:
    excluded = COMPACT.replace(
        "classify =",
        "exclude = [ { source = 'smtp2go', start = 2026-05-04T10:00:00Z, "
        "end = 2026-05-04T11:00:00Z } ]\nclassify =",
    )
    assert policy_hash(parse(excluded)) != policy_hash(parse(COMPACT))


@pytest.mark.parametrize("version", ["PROJECTION_VERSION", "DERIVATION_VERSION"])
def test_the_policy_hash_changes_with_the_code_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mutation audit's P1: a projection built by an older fold (or older derived
    facts) must not pass for current, so the hash a projection is stored under covers
    both versions as well as the policy."""
    import projections.policy

    before = policy_hash(DEFAULT_POLICY)
    monkeypatch.setattr(projections.policy, version, "next")
    assert policy_hash(DEFAULT_POLICY) != before


# -- mapping overrides --------------------------------------------------------------------------


def test_an_unsubscribe_override_makes_smtp2go_unsubscribes_suppress() -> None:
    policy = parse('[providers.smtp2go]\nunsubscribe = "unsubscribe"')
    got = only(fixture_bytes("smtp2go", "unsubscribe.json"), policy)
    assert isinstance(got, Unsubscribe)
    state = replay(got.recipient, [got], policy)
    assert state.suppressed
    assert state.reason == "unsubscribe"


def test_an_override_written_with_a_synonym_key_also_works() -> None:
    policy = parse('[providers.smtp2go]\nunsubscribed = "unsubscribe"')
    got = only(fixture_bytes("smtp2go", "unsubscribe.json"), policy)
    assert isinstance(got, Unsubscribe)
    assert replay(got.recipient, [got], policy).reason == "unsubscribe"


def test_an_override_can_turn_a_default_mapping_off() -> None:
    policy = parse('[providers.smtp2go]\nspam = "ignore"')
    got = only(fixture_bytes("smtp2go", "spam.json"), policy)
    assert isinstance(got, Ignored)
    assert not replay(got.recipient, [got], policy).suppressed


@pytest.mark.parametrize(("kind", "expected"), [("hard_bounce", "hard"), ("soft_bounce", "soft")])
def test_a_bounce_override_can_force_the_class(kind: str, expected: str) -> None:
    policy = parse(f'[providers.smtp2go]\nbounce = "{kind}"')
    for cls in ("hard", "soft", None):
        got = only(bounce("550 5.1.1 unknown", cls), policy)
        assert isinstance(got, Bounce)
        assert got.bounce_class == expected


def test_an_override_can_map_an_ignored_event_to_a_complaint() -> None:
    policy = parse('[providers.smtp2go]\nreject = "complaint"')
    body = msgspec.json.encode({"event": "reject", "id": "r", "rcpt": "x@example.com"})
    assert isinstance(only(body, policy), Complaint)


# -- classification rules ----------------------------------------------------------------------

IGNORE_BLOCKED = "[[classify]]\npattern = '5\\.7\\.1 .*blocked'\nbounce = \"ignore\"\n"


def test_a_matching_hard_bounce_classified_ignore_becomes_an_ignored_event() -> None:
    policy = parse(IGNORE_BLOCKED)
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Ignored)
    assert "5\\.7\\.1 .*blocked" in got.reason
    assert got.diagnostic == BLOCKED
    assert not replay(got.recipient, [got], policy).suppressed
    # without the rule the same bounce is ignored too, by the sender-side default (5.7.1)
    default = only(bounce(BLOCKED), DEFAULT_POLICY)
    assert isinstance(default, Ignored)
    assert default.reason == (
        "sender-side refusal: the sender or the message was refused, not the address "
        '(policy: sender_side_bounces = "ignore")'
    )
    # and a hard bounce without an enhanced code suppresses unless a rule ignores it
    rule = parse("[[classify]]\npattern = 'blocked'\nbounce = \"ignore\"\n")
    assert isinstance(only(bounce(REFUSED), rule), Ignored)
    assert replay(got.recipient, mapped(bounce(REFUSED), DEFAULT_POLICY), DEFAULT_POLICY).suppressed


def test_a_classification_rule_matches_case_insensitively_anywhere_in_the_text() -> None:
    got = only(
        bounce("Remote said: 550 5.7.1 Client host BLOCKED by policy"), parse(IGNORE_BLOCKED)
    )
    assert isinstance(got, Ignored)
    assert got.reason.startswith("classified by policy")


def test_a_hard_bounce_not_matching_any_rule_stays_hard() -> None:
    got = only(bounce("550 5.1.1 User unknown"), parse(IGNORE_BLOCKED))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_a_rule_with_bounce_soft_makes_a_matching_hard_bounce_soft() -> None:
    policy = parse("[[classify]]\npattern = '5\\.7\\.1 .*blocked'\nbounce = \"soft\"")
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"
    assert not replay(got.recipient, [got], policy).suppressed


def test_a_rule_with_bounce_hard_makes_a_matching_soft_bounce_hard() -> None:
    policy = parse("[[classify]]\npattern = 'user unknown'\nbounce = \"hard\"")
    got = only(bounce("550 5.1.1 User unknown", cls="soft"), policy)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_a_rule_reads_the_context_when_there_is_no_message() -> None:
    body = msgspec.json.encode(
        {"event": "bounce", "bounce": "hard", "id": "b", "rcpt": "x@example.com",
         "context": BLOCKED}
    )  # fmt: skip
    got = only(body, parse(IGNORE_BLOCKED))
    assert isinstance(got, Ignored)
    assert got.reason.startswith("classified by policy")


def test_the_first_matching_rule_wins() -> None:
    policy = parse(
        "[[classify]]\npattern = 'blocked'\nbounce = 'soft'\n"
        "[[classify]]\npattern = '5\\.7\\.1'\nbounce = 'ignore'\n"
    )
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"


def test_a_rule_limited_to_smtp2go_applies_to_smtp2go() -> None:
    policy = parse(IGNORE_BLOCKED + 'source = "smtp2go"\n')
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Ignored)
    assert got.reason.startswith("classified by policy")


def test_a_rule_limited_to_another_source_does_not_apply_to_smtp2go() -> None:
    # Built directly: the parser refuses sources this build has no decoder for.
    policy = Policy(classify=[ClassifyRule(pattern=r"blocked", bounce="ignore", source="ses")])
    got = only(bounce(REFUSED), policy)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_a_rule_for_another_source_does_not_hide_the_rules_after_it() -> None:
    policy = Policy(
        classify=[
            ClassifyRule(pattern=r"blocked", bounce="hard", source="ses"),
            ClassifyRule(pattern=r"5\.7\.1", bounce="ignore"),
        ]
    )
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Ignored)
    assert got.reason == "classified by policy: 5\\.7\\.1"


def test_classification_rules_touch_only_bounces() -> None:
    policy = parse("[[classify]]\npattern = '.*'\nbounce = 'ignore'")
    body = msgspec.json.encode(
        {"event": "spam", "id": "s", "rcpt": "x@example.com", "message": "anything"}
    )
    assert isinstance(only(body, policy), Complaint)


# -- exclusions ---------------------------------------------------------------------------------

EXCLUDE = """
[[exclude]]
source = "smtp2go"
start = 2026-05-04T10:00:00Z
end = 2026-05-04T11:00:00Z
note = "sender-side incident"
"""


@pytest.mark.parametrize(
    "time",
    ["2026-05-04T10:00:00Z", "2026-05-04T10:30:00Z", "2026-05-04T10:59:59.999999Z",
     "2026-05-04T12:30:00+02:00"],
)  # fmt: skip
def test_an_event_inside_an_exclusion_is_ignored(time: str) -> None:
    policy = parse(EXCLUDE)
    got = only(bounce(BLOCKED, time=time), policy)
    assert isinstance(got, Ignored)
    assert "excluded by policy" in got.reason
    assert "sender-side incident" in got.reason
    assert not replay(got.recipient, [got], policy).suppressed


def test_an_exclusion_without_a_note_says_only_that() -> None:
    policy = parse(EXCLUDE.replace('note = "sender-side incident"\n', ""))
    got = only(bounce(BLOCKED, time="2026-05-04T10:30:00Z"), policy)
    assert isinstance(got, Ignored)
    assert got.reason == "excluded by policy"


@pytest.mark.parametrize(
    "time", ["2026-05-04T09:59:59.999999Z", "2026-05-04T11:00:00Z", "2026-05-05T10:30:00Z"]
)
def test_an_event_outside_an_exclusion_is_read_as_usual(time: str) -> None:
    """The window is [start, end): a delivery — which an exclusion discards inside it —
    exactly at the end or a microsecond before the start is a delivery. (An unknown
    mailbox bounce would not do: no exclusion discards it, wherever it falls; the
    mutation audit's M1.)"""
    policy = parse(EXCLUDE)
    delivered = msgspec.json.encode(
        {"event": "delivered", "id": "s", "rcpt": "x@example.com", "time": time}
    )
    assert isinstance(only(delivered, policy), Delivered)
    assert isinstance(only(bounce("550 5.1.1 User unknown", time=time), policy), Bounce)


def test_an_exclusion_goes_by_event_time_not_receipt_time() -> None:
    policy = parse(EXCLUDE)
    inside = micros(datetime(2026, 5, 4, 10, 30, tzinfo=UTC))
    outside_event = bounce(REFUSED, time="2026-05-04T09:00:00Z")
    assert isinstance(only(outside_event, policy, received_at=inside), Bounce)
    # with no event time, the receipt time is the event time, and it is inside
    no_time = msgspec.json.encode({"event": "bounce", "bounce": "hard", "rcpt": "x@example.com"})
    assert isinstance(only(no_time, policy, received_at=inside), Ignored)


def _event(name: str) -> bytes:
    return msgspec.json.encode(
        {"event": name, "id": "s", "rcpt": "x@example.com", "time": "2026-05-04T10:10:00Z"}
    )


SMTP2GO_OPT_INS = "[providers.smtp2go]\nunsubscribe = 'unsubscribe'\n"


@pytest.mark.parametrize("name", ["spam", "unsubscribe"])
def test_an_exclusion_never_discards_a_complaint_or_unsubscribe_by_default(name: str) -> None:
    # issue 12, item 5: an incident produces blocks, not complaints or opt-outs
    got = only(_event(name), parse(SMTP2GO_OPT_INS + EXCLUDE))
    assert isinstance(got, Complaint | Unsubscribe)
    assert replay(got.recipient, [got], DEFAULT_POLICY).suppressed


def test_an_exclusion_never_discards_an_unknown_mailbox_bounce_by_default() -> None:
    got = only(bounce("550 5.1.1 <x@example.com>: User unknown"), parse(EXCLUDE))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_an_exclusion_discards_deliveries_and_sender_side_bounces_by_default() -> None:
    policy = parse(EXCLUDE)
    assert isinstance(only(_event("delivered"), policy), Ignored)
    assert isinstance(only(bounce(BLOCKED, cls="soft"), policy), Ignored)


def test_an_exclusion_can_be_widened_to_name_more_kinds() -> None:
    policy = parse(
        SMTP2GO_OPT_INS + EXCLUDE + 'kinds = ["bounce", "unknown_mailbox", "complaint"]\n'
    )
    assert isinstance(only(_event("spam"), policy), Ignored)
    assert isinstance(only(bounce("550 5.1.1 User unknown"), policy), Ignored)
    assert isinstance(only(_event("unsubscribe"), policy), Unsubscribe)  # not named
    assert isinstance(only(_event("delivered"), policy), Delivered)  # not named either


def test_an_exclusion_refuses_an_unknown_or_empty_kind_list() -> None:
    assert "kinds" in refused(EXCLUDE + 'kinds = ["spam"]\n')
    assert "names no kinds" in refused(EXCLUDE + "kinds = []\n")


def test_an_exclusion_for_another_source_does_not_apply_to_smtp2go() -> None:
    policy = Policy(
        exclude=[
            Exclusion(
                source="ses",
                start=datetime(2026, 5, 4, 10, tzinfo=UTC),
                end=datetime(2026, 5, 4, 11, tzinfo=UTC),
            )
        ]
    )
    assert isinstance(only(bounce("550", time="2026-05-04T10:30:00Z"), policy), Bounce)


# -- sender-side refusals (issue 18, finding N8) ------------------------------------------------


def test_sender_side_bounces_is_read_and_defaults_to_ignore() -> None:
    assert DEFAULT_POLICY.sender_side_bounces == "ignore"
    assert parse('sender_side_bounces = "soft"').sender_side_bounces == "soft"
    assert policy_hash(parse('sender_side_bounces = "ignore"')) == policy_hash(DEFAULT_POLICY)
    assert policy_hash(parse('sender_side_bounces = "soft"')) != policy_hash(DEFAULT_POLICY)


@pytest.mark.parametrize("value", ['"hard"', '"Ignore"', "true", '""'])
def test_sender_side_bounces_refuses_anything_but_ignore_or_soft(value: str) -> None:
    assert "sender_side_bounces" in refused(f"sender_side_bounces = {value}")


def test_a_sender_side_refusal_is_ignored_by_default_and_says_why() -> None:
    got = only(bounce(BLOCKED), DEFAULT_POLICY)
    assert isinstance(got, Ignored)
    assert got.reason.startswith("sender-side refusal")
    assert not replay(got.recipient, [got], DEFAULT_POLICY).suppressed


def test_a_sender_side_refusal_counts_as_soft_when_the_policy_says_so() -> None:
    policy = parse('sender_side_bounces = "soft"')
    got = only(bounce(BLOCKED), policy)  # SMTP2GO called it hard
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"


def test_a_matching_classify_rule_wins_over_the_sender_side_default() -> None:
    policy = parse("[[classify]]\npattern = 'spamhaus'\nbounce = \"hard\"\n")
    got = only(bounce(BLOCKED), policy)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


def test_a_policy_mapping_of_the_raw_kind_wins_over_the_sender_side_default() -> None:
    got = only(bounce(BLOCKED), parse('[providers.smtp2go]\nbounce = "soft_bounce"\n'))
    assert isinstance(got, Bounce)
    assert got.bounce_class == "soft"


def test_a_missing_mailbox_wins_over_a_sender_side_code_in_the_same_text() -> None:
    got = only(bounce("550 5.1.1 user unknown (5.7.1 relaying denied)"), DEFAULT_POLICY)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


@pytest.mark.parametrize(
    "text", ["451 4.7.1 greylisted, try again", "550 5.7.1000", "250 2.5.7.1 ok", "15.7.1 x"]
)
def test_only_a_permanent_5_7_code_of_its_own_is_a_sender_side_refusal(text: str) -> None:
    got = only(bounce(text), DEFAULT_POLICY)
    assert isinstance(got, Bounce)
    assert got.bounce_class == "hard"


# -- events naming several recipients (issue 18, finding N3) -------------------------------------


def shared_fact(raw_kind: str, source: str = "resend", **fields: Any) -> Fact:
    return Fact(
        source=source,
        raw_kind=raw_kind,
        recipient="one.of.two@example.org",
        at=RECEIVED - 1,
        seq=1,
        ord=0,
        event_id="e-shared",
        shared=2,
        **fields,
    )


@pytest.mark.parametrize(
    ("source", "raw_kind", "kind"),
    [
        ("resend", "complained", "complaint"),
        ("ses", "complaint", "complaint"),
        ("ses", "unsubscribe_all", "unsubscribe"),
    ],
)
def test_a_shared_complaint_or_unsubscribe_acts_for_every_listed_address(
    source: str, raw_kind: str, kind: str
) -> None:
    mapper = Mapper(DEFAULT_POLICY)
    fact = shared_fact(raw_kind, source)
    assert mapper.decide(fact) == (kind, None)
    assert replay(fact.recipient, [mapper.map_fact(fact)], DEFAULT_POLICY).reason == kind


@pytest.mark.parametrize(
    ("source", "raw_kind"),
    [("resend", "delivered"), ("ses", "resubscribe_all"), ("resend", "suppressed")],
)
def test_a_shared_delivery_resubscribe_or_provider_refusal_acts_for_nobody(
    source: str, raw_kind: str
) -> None:
    kind, reason = Mapper(DEFAULT_POLICY).decide(shared_fact(raw_kind, source))
    assert kind == "ignored"
    assert reason is not None
    assert "names 2 recipients and not which one" in reason


def test_a_shared_bounce_is_soft_even_when_hard_or_saying_the_mailbox_does_not_exist() -> None:
    fact = shared_fact("bounced", bounce_class="hard", refusal="no_mailbox")
    assert Mapper(DEFAULT_POLICY).decide(fact) == ("bounce", "soft")


# -- the unknown-mailbox fact and exclusions (issue 18, finding N6) ------------------------------


def test_an_exclusion_keeps_a_bounce_whose_fact_says_the_mailbox_does_not_exist() -> None:
    # the text has no 5.1.1: the provider's own field said so (as SES NoEmail does)
    inside = micros(datetime(2026, 5, 4, 10, 30, tzinfo=UTC))
    base = shared_fact("bounce", "smtp2go", bounce_class="hard", diagnostic="550 no such user")
    fact = msgspec.structs.replace(base, shared=0, at=inside)
    mapper = Mapper(parse(EXCLUDE))
    assert mapper.decide(msgspec.structs.replace(fact, refusal="no_mailbox")) == ("bounce", "hard")
    assert mapper.decide(fact)[0] == "ignored"


# -- empty provider tables and the wording of refusals -----------------------------------------


def test_an_empty_provider_table_means_the_defaults() -> None:
    policy = parse("[providers.smtp2go]\n")
    assert policy.providers == {}
    assert policy == DEFAULT_POLICY
    assert policy_hash(policy) == policy_hash(DEFAULT_POLICY)


def test_an_empty_table_keeps_the_overrides_of_the_other_providers() -> None:
    policy = parse("[providers.smtp2go]\nopen = 'ignore'\n\n[providers.sendgrid]\n")
    assert policy.providers == {"smtp2go": {"open": "ignore"}}


def test_a_misspelt_provider_is_refused_even_as_an_empty_table() -> None:
    # once accepted silently: empty tables were dropped before providers were checked
    assert "unknown provider 'sendgird'" in refused("[providers.sendgird]\n")


def test_an_unknown_provider_refusal_lists_the_known_ones_sorted_and_comma_separated() -> None:
    message = refused("[providers.sendgird]\nbounce = 'bounce'")
    assert f"unknown provider 'sendgird' (known: {', '.join(sorted(KNOWN_SOURCES))})" in message


def test_a_policy_text_of_no_named_origin_is_refused_as_the_policy() -> None:
    assert refused("soft_bounce_treshold = 2").startswith("policy: ")
    assert refused("[providers.sendgird]\nbounce = 'bounce'").startswith("policy: ")


def test_a_refusal_names_the_origin_it_is_given() -> None:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(
            "soft_bounce_treshold = 2", known_sources=KNOWN_SOURCES, origin="candidate policy"
        )
    assert str(info.value).startswith("candidate policy: ")
