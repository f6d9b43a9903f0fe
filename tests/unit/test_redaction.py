"""Erasing one address from stored bodies: removed whole, or redacted so that every other
recipient's facts still decode the same (projections/redaction.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from ledger import Receipt
from projections import operator
from projections.facts import Fact, derive
from projections.redaction import FORM, mentions, redact
from tests.conftest import FIXTURES
from tests.providers.signing import dumps, fixture_json, sns_notification
from tests.unit.test_smtp2go import receipt as smtp2go_receipt

PLACEHOLDER = "[erased]"


def receipt(source: str, body: bytes, content_type: str = "application/json") -> Receipt:
    return smtp2go_receipt(
        body, seq=7, content_type=content_type, received_at=1_800_000_000_000_000, source=source
    )


def fixture_receipt(path: str) -> Receipt:
    """A fixture as the door stores it: `<provider>/<name>`, the body byte for byte."""
    provider, name = path.split("/")
    content_type = FORM if name.endswith(".form") else "application/json"
    return receipt(provider, (FIXTURES / path).read_bytes(), content_type)


def recipients(of: Receipt) -> list[str]:
    return sorted({keyed.fact.recipient for keyed in derive(of)})


def facts_about(of: Receipt, names: list[str]) -> list[tuple[bytes, Fact]]:
    """The facts (and their keys) about `names`, without their position among the facts."""
    return [
        (keyed.key, replace(keyed.fact, ord=0))
        for keyed in derive(of)
        if keyed.fact.recipient in names
    ]


FIXTURE_PATHS = sorted(
    f"{path.parent.name}/{path.name}"
    for path in FIXTURES.glob("*/*")
    if path.suffix in (".json", ".form")
)
# Every (fixture, recipient its facts name): who is erased from which body.
PAIRS = [(path, name) for path in FIXTURE_PATHS for name in recipients(fixture_receipt(path))]
CASES = [pytest.param(path, name, id=f"{path}:{name}") for path, name in PAIRS]


def test_the_cases_cover_every_provider_and_several_multi_recipient_bodies() -> None:
    assert {path.split("/")[0] for path, _ in PAIRS} == {
        "mailgun",
        "mailtura",
        "postmark",
        "resend",
        "sendgrid",
        "ses",
        "smtp2go",
    }
    shared = {path for path, _ in PAIRS if len(recipients(fixture_receipt(path))) > 1}
    assert {
        "ses/multi_recipient_bounce.json",
        "resend/multi_recipient_bounce.json",
        "smtp2go/processed.json",
        "sendgrid/batch.json",
    } <= shared


@pytest.mark.parametrize(("path", "email"), CASES)
def test_the_redacted_body_no_longer_mentions_the_address(path: str, email: str) -> None:
    original = fixture_receipt(path)
    assert mentions(original.body, email)
    redacted = redact(original, email, PLACEHOLDER)
    assert redacted is None or not mentions(redacted, email)
    assert redact(original, email, PLACEHOLDER) == redacted  # deterministic


@pytest.mark.parametrize(("path", "email"), CASES)
def test_the_other_recipients_keep_their_facts(path: str, email: str) -> None:
    original = fixture_receipt(path)
    others = [name for name in recipients(original) if name != email]
    redacted = redact(original, email, PLACEHOLDER)
    # Removed whole exactly when the body is about the address only.
    assert (redacted is None) == (not others)
    if redacted is not None:
        copy = replace(original, body=redacted)
        assert facts_about(copy, others) == facts_about(original, others)


@pytest.mark.parametrize(
    ("path", "email"),
    [
        ("smtp2go/hard_bounce.form", "nobody@example.org"),
        ("mailgun/hard_bounce.json", "nobody@example.org"),
        ("ses/notification.json", "nobody@example.org"),
    ],
)
def test_a_body_about_the_address_only_is_removed(path: str, email: str) -> None:
    assert redact(fixture_receipt(path), email, PLACEHOLDER) is None


def test_an_operator_receipt_mentioning_the_address_is_removed() -> None:
    def action(email: str, note: str) -> Receipt:
        body = operator.action_body("suppress", email, actor="ops", note=note, at=1)
        return receipt(operator.SOURCE, body)

    assert redact(action("Bob@Example.com", "asked by phone"), "bob@example.com", "x") is None
    # About someone else, but naming the address in its note: removed all the same.
    merged = action("carol@example.com", "same person as bob@example.com")
    assert redact(merged, "bob@example.com", PLACEHOLDER) is None
    unrelated = action("carol@example.com", "asked by phone")
    assert redact(unrelated, "bob@example.com", PLACEHOLDER) is unrelated.body


def test_a_body_not_mentioning_the_address_comes_back_unchanged() -> None:
    original = fixture_receipt("ses/multi_recipient_bounce.json")
    assert redact(original, "someone.else@example.net", PLACEHOLDER) is original.body


def test_an_sns_wrapped_ses_bounce_keeps_the_other_recipients() -> None:
    envelope = sns_notification(fixture_json("ses", "multi_recipient_bounce.json"))
    original = receipt("ses", dumps(envelope))
    redacted = redact(original, "second@example.org", PLACEHOLDER)
    assert redacted is not None
    assert b"econd@" not in redacted.lower()
    others = ["first@example.org", "third@example.org"]
    assert len(facts_about(original, others)) == 2
    assert facts_about(replace(original, body=redacted), others) == facts_about(original, others)
    # The SES event is still JSON inside the envelope's string, its lists as long.
    message = json.loads(json.loads(redacted)["Message"])
    assert len(message["bounce"]["bouncedRecipients"]) == 3
    assert message["mail"]["destination"][1] == PLACEHOLDER
    assert {key: value for key, value in json.loads(redacted).items() if key != "Message"} == {
        key: value for key, value in envelope.items() if key != "Message"
    }


def test_a_shared_complaint_still_counts_every_listed_recipient() -> None:
    complaint = fixture_json("ses", "complaint.json")
    listed = [{"emailAddress": "annoyed@example.com"}, {"emailAddress": "other@example.com"}]
    complaint["complaint"]["complainedRecipients"] = listed
    original = receipt("ses", dumps(sns_notification(complaint)))
    redacted = redact(original, "annoyed@example.com", PLACEHOLDER)
    assert redacted is not None
    [(_, fact)] = facts_about(replace(original, body=redacted), ["other@example.com"])
    assert fact.shared == 2


def test_a_display_name_goes_with_its_address() -> None:
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"]["to"] = ["Alice Example <alice@example.org>", "bob@example.org"]
    original = receipt("resend", dumps(document))
    redacted = redact(original, "alice@example.org", PLACEHOLDER)
    assert redacted is not None
    assert b"Alice" not in redacted
    assert json.loads(redacted)["data"]["to"] == [PLACEHOLDER, "bob@example.org"]
    bob = ["bob@example.org"]
    assert facts_about(replace(original, body=redacted), bob) == facts_about(original, bob)


def test_a_placeholder_naming_no_one_only_moves_the_others_facts_up() -> None:
    original = fixture_receipt("sendgrid/batch.json")
    redacted = redact(original, "nobody@example.org", "")
    assert redacted is not None
    copy = replace(original, body=redacted)
    assert [keyed.fact.ord for keyed in derive(copy)] == [0, 1, 2, 3, 4]  # 6 events, one left
    others = [name for name in recipients(original) if name != "nobody@example.org"]
    assert facts_about(copy, others) == facts_about(original, others)


def test_an_object_key_naming_the_address_is_replaced_too() -> None:
    """A tag named by the address is no label (a label never holds an address, nor the
    keyed hash that replaces it), so the other recipients' facts are unchanged."""
    subject = "hmac-sha256:k1:" + "ab" * 32
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"]["tags"] = {"One@Example.org": "vip", "plan": "gold"}
    redacted = redact(receipt("resend", dumps(document)), "one@example.org", subject)
    assert redacted is not None
    assert json.loads(redacted)["data"]["tags"] == {subject: "vip", "plan": "gold"}


def test_a_tag_that_is_not_an_address_stays_a_label_after_redaction() -> None:
    """With a placeholder that is no keyed hash, the tag's key changes the others' labels:
    the body is then not redacted but removed (redaction keeps only what it can prove)."""
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"]["tags"] = {"One@Example.org": "vip", "plan": "gold"}
    assert redact(receipt("resend", dumps(document)), "one@example.org", PLACEHOLDER) is None


def test_a_form_body_is_redacted_field_by_field() -> None:
    body = (
        b"event=processed&id=f00d&time=2026-05-06T09%3A00%3A00Z"
        b"&recipients=bob%40example.com&recipients=Carol+%3CCarol%40Example.com%3E"
    )
    original = receipt("smtp2go", body, FORM)
    redacted = redact(original, "carol@example.com", PLACEHOLDER)
    assert redacted == (
        b"event=processed&id=f00d&time=2026-05-06T09%3A00%3A00Z"
        b"&recipients=bob%40example.com&recipients=%5Berased%5D"
    )
    bob = ["bob@example.com"]
    assert facts_about(replace(original, body=redacted), bob) == facts_about(original, bob)


def test_an_address_inside_another_recipients_address_removes_the_body() -> None:
    # A search for bob@example.com finds jimbob@example.com: that string cannot be kept,
    # and replacing it would change jimbob's facts, so the body goes whole.
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"]["to"] = ["bob@example.com", "jimbob@example.com"]
    assert redact(receipt("resend", dumps(document)), "bob@example.com", PLACEHOLDER) is None


def test_there_must_be_an_address_to_erase() -> None:
    with pytest.raises(ValueError, match="no address"):
        mentions(b"{}", " ")


@pytest.mark.parametrize(
    "body",
    [
        b'{"to":"BOB@Example.ORG"}',
        b'{"to":"bob\\u0040example.org"}',
        b'{"Message":"{\\"to\\":\\"bob\\\\u0040example.org\\"}"}',  # escaped twice (SNS)
        b"rcpt=bob%40example.org",
        b"url=https%3A%2F%2Fx%2F%3Fe%3Dbob%2540example.org",  # percent-encoded twice
        b"<p>bob&#64;example.org</p>",
        "bob\u200b@example.org".encode(),
        b'{"to":"bob@example.org.invalid"}',
    ],
)
def test_mentions_finds_the_address_in_its_escaped_forms(body: bytes) -> None:
    assert mentions(body, "bob@example.org")


@pytest.mark.parametrize(
    ("body", "email"),
    [
        (b"to=bob+news%40b%C3%BCcher.example", "bob+news@xn--bcher-kva.example"),
        ("bob+news@BÜCHER.example".encode(), "bob+news@xn--bcher-kva.example"),
        (b"to=bob news@example.org", "bob+news@example.org"),
        (b"to=bob%20news%40example.org", "bob+news@example.org"),
    ],
)
def test_mentions_reads_unicode_domains_and_plus_as_blank(body: bytes, email: str) -> None:
    assert mentions(body, email)


@pytest.mark.parametrize(
    "body", [b'{"to":"bob@example.net"}', b"bob(at)example.org", b"rcpt=bob%41example.org"]
)
def test_mentions_does_not_find_other_text(body: bytes) -> None:
    assert not mentions(body, "bob@example.org")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ADDRESS = "rosa.l+tag@example.org"
MARK = "\ue123MARK\ue123"


def spelled(address: str, cases: list[bool], escapes: list[bool], upper_hex: bool) -> str:
    """The address as a JSON string's content: each character in either case, and raw or
    as a `\\u` escape."""
    out = []
    for char, upper, escape in zip(address, cases, escapes, strict=True):
        char = char.upper() if upper else char
        code = f"\\u{ord(char):04x}"
        out.append((code.upper().replace("\\U", "\\u") if upper_hex else code) if escape else char)
    return "".join(out)


@given(
    before=JSON,
    after=JSON,
    prefix=st.text(),
    suffix=st.text(),
    cases=st.lists(st.booleans(), min_size=len(ADDRESS), max_size=len(ADDRESS)),
    escapes=st.lists(st.booleans(), min_size=len(ADDRESS), max_size=len(ADDRESS)),
    upper_hex=st.booleans(),
)
def test_mentions_finds_the_address_anywhere_in_json_in_any_case_and_escaping(
    before: Any,
    after: Any,
    prefix: str,
    suffix: str,
    cases: list[bool],
    escapes: list[bool],
    upper_hex: bool,
) -> None:
    text = json.dumps([before, {"note": prefix + MARK + suffix}, after])
    text = text.replace(json.dumps(MARK)[1:-1], spelled(ADDRESS, cases, escapes, upper_hex))
    assert json.loads(text)[1]["note"].lower() == (prefix + ADDRESS + suffix).lower()
    assert mentions(text.encode(), ADDRESS)


# JSON built from text that holds no `@` and nothing that decodes to one.
PLAIN = st.recursive(
    st.none() | st.integers() | st.text(st.characters(exclude_characters="@%&\\")),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@given(PLAIN)
def test_mentions_finds_nothing_where_there_is_no_address(document: Any) -> None:
    assert not mentions(json.dumps(document).encode(), ADDRESS)


def test_a_json_body_with_a_byte_order_mark_is_redacted_and_keeps_it() -> None:
    plain = fixture_receipt("ses/multi_recipient_bounce.json")
    original = replace(plain, body=b"\xef\xbb\xbf" + plain.body)
    redacted = redact(original, "second@example.org", PLACEHOLDER)
    assert redacted == original.body.replace(b'"Second@Example.org"', b'"[erased]"')
    others = ["first@example.org", "third@example.org", "fine@example.org"]
    assert facts_about(replace(original, body=redacted), others) == facts_about(original, others)


FORM_BODY = (
    b"event=processed&id=f00d&time=2026-05-06T09%3A00%3A00Z"
    b"&recipients=bob%40example.com&recipients=carol%40example.com"
)


@pytest.mark.parametrize(
    "content_type",
    [FORM, "Application/X-WWW-Form-Urlencoded; charset=utf-8", "application/json", "text/plain"],
)
def test_an_smtp2go_form_body_is_redacted_whatever_its_content_type(content_type: str) -> None:
    # SMTP2GO's format is sniffed from the bytes: a webhook left on the wrong output type
    # still yields facts, so its body is redacted as the form it is.
    original = receipt("smtp2go", FORM_BODY, content_type)
    redacted = redact(original, "carol@example.com", PLACEHOLDER)
    assert redacted == FORM_BODY.replace(b"carol%40example.com", b"%5Berased%5D")
    bob = ["bob@example.com"]
    assert facts_about(replace(original, body=redacted), bob) == facts_about(original, bob)


def test_a_form_value_holding_an_equals_sign_is_replaced_whole() -> None:
    # parse_qsl splits a field at its first `=`: the rest, `=` included, is the value.
    body = FORM_BODY + b"&link=https%3A%2F%2Fexample.net%2Fu%3Fe=carol%40example.com"
    redacted = redact(receipt("smtp2go", body, FORM), "carol@example.com", PLACEHOLDER)
    assert redacted == (
        b"event=processed&id=f00d&time=2026-05-06T09%3A00%3A00Z"
        b"&recipients=bob%40example.com&recipients=%5Berased%5D&link=%5Berased%5D"
    )


def resend_with(**data: Any) -> Receipt:
    document = fixture_json("resend", "multi_recipient_bounce.json")
    document["data"].update(data)
    return receipt("resend", dumps(document))


def test_a_string_holding_a_json_array_is_redacted_inside() -> None:
    listed = json.dumps(["One@Example.org", "two@example.org"])
    redacted = redact(resend_with(cc=listed), "one@example.org", PLACEHOLDER)
    assert redacted is not None
    assert json.loads(json.loads(redacted)["data"]["cc"]) == [PLACEHOLDER, "two@example.org"]


@pytest.mark.parametrize(
    "value",
    [
        json.dumps("one@example.org"),  # a string holding a JSON string: no object, no array
        "[Team] update for one@example.org",  # starts like an array, but is no JSON
        "{one@example.org}",
    ],
)
def test_a_string_holding_no_json_object_or_array_is_replaced_whole(value: str) -> None:
    redacted = redact(resend_with(subject=value), "one@example.org", PLACEHOLDER)
    assert redacted is not None
    assert json.loads(redacted)["data"]["subject"] == PLACEHOLDER


@pytest.mark.parametrize(
    "placeholder",
    [
        "One@Example.org",  # the copy would still name the address
        "\ud800",  # the copy cannot be encoded
    ],
)
def test_a_copy_that_cannot_be_made_safely_removes_the_body(placeholder: str) -> None:
    assert redact(resend_with(), "one@example.org", placeholder) is None


def test_the_error_for_no_address_says_so() -> None:
    with pytest.raises(ValueError, match=r"^no address to erase$"):
        redact(resend_with(), "", PLACEHOLDER)


def test_mentions_splits_a_quoted_local_part_at_its_last_at_sign() -> None:
    email = '"a@b"@xn--bcher-kva.example'
    assert mentions('"a@b"@bücher.example'.encode(), email)
    assert not mentions(b'"a@b"@example.org', email)


def test_mentions_reads_no_unicode_domain_in_text_without_an_at_sign() -> None:
    assert mentions(b"xn--bcher-kva.example", "xn--bcher-kva.example")
    assert not mentions("bücher.example".encode(), "xn--bcher-kva.example")


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b'{"note":"\\ud800"}', False),
        (b'{"note":"\\udc00\\ud800x","to":"bob\\u0040example.org"}', True),
    ],
)
def test_mentions_reads_a_body_holding_a_lone_surrogate_escape(body: bytes, found: bool) -> None:
    assert mentions(body, "bob@example.org") is found
