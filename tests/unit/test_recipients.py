"""`normalize_recipient`, case by case (issue 18, review 2 findings N1 and N12).

N1: an address a backend cannot store (a control character, a lone surrogate, more than
254 characters) names no recipient (""), on every backend alike. N12: one key per
mailbox (quoting, NFC, invisible characters, domains IDNA 2008 refuses). And what was
kept correctly before stays so.
"""

from __future__ import annotations

import unicodedata

import pytest

from projections import recipients
from projections.facts import read
from projections.providers import PROVIDERS
from projections.recipients import normalize_recipient

# -- N1: refused, as no recipient ------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "nul\x00user@example.org",
        "a\x01b@example.org",
        "a\x1fb@example.org",
        "a\x7fb@example.org",
        "bob@exa\x00mple.org",
        "bob\t@example.org",  # a tab inside, before the `@`
        "bob\n.smith@example.org",
        "a\x85b@example.org",  # C1: NEL
        "a\x9fb@example.org",
        "a\ud800b@example.org",  # a lone surrogate: no UTF-8 for it
        "bob@example.\udfff",
        '"Bob\x00" <bob@example.org>',  # in the display name too
        "<bob\x00@example.org>",
        '"bob\x00"@example.org',
        "no address\x00",
    ],
)
def test_a_control_character_or_surrogate_inside_names_no_recipient(address: str) -> None:
    assert normalize_recipient(address) == ""


@pytest.mark.parametrize(
    "address",
    [
        "bob@example.org\n",
        "\tbob@example.org",
        "\r\nbob@example.org\r\n",
        "\xa0bob@example.org\xa0",
        ' "Bob" <bob@example.org>\n',
    ],
)
def test_whitespace_around_an_address_is_trimmed_not_refused(address: str) -> None:
    """A guard (passes on the old code too): a newline or tab around an address is
    trimmed, not taken for a control character inside it."""
    assert normalize_recipient(address) == "bob@example.org"


def test_an_address_longer_than_254_characters_names_no_recipient() -> None:
    domain = "@example.org"  # 12 characters
    longest = "a" * (254 - len(domain)) + domain
    assert normalize_recipient(longest) == longest
    assert normalize_recipient(longest.upper()) == longest
    assert normalize_recipient("b" + longest) == ""  # plain: the fast path
    assert normalize_recipient(f'"Bob" <b{longest}>') == ""  # parsed
    assert normalize_recipient(f"<{longest}>") == longest
    # counted in the stored (A-label) form: 241 + 1 + 21 characters
    assert normalize_recipient("a" * 241 + "@bücher.example") == ""
    assert (
        normalize_recipient("a" * 232 + "@bücher.example") == "a" * 232 + "@xn--bcher-kva.example"
    )
    assert normalize_recipient("x" * 300) == ""  # not an address either


def test_an_event_whose_recipient_is_refused_is_read_as_unattributed() -> None:
    """`facts.read` takes "" as "names no recipient": counted, not folded."""
    raws = [
        {"email": "nul\x00user@example.org", "event": "bounce", "sg_event_id": "n1-a"},
        {"email": "kept@example.org", "event": "spamreport", "sg_event_id": "n1-b"},
    ]
    reading = read(PROVIDERS["sendgrid"], raws)
    assert [recipient for recipient, _ in reading.events] == ["kept@example.org"]
    assert reading.unattributed == ["bounce"]


# -- N12: one key per mailbox ----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ('"bob"@example.org', "bob@example.org"),
        ('"Bob.Smith"@Example.org', "bob.smith@example.org"),
        ('"bob+tag"@example.org', "bob+tag@example.org"),
        ('"o\'brien"@example.org', "o'brien@example.org"),
        ('"b\\ob"@example.org', "bob@example.org"),  # a needless quoted-pair
        ('"josé"@example.org', "josé@example.org"),
        ('Bob <"Bob"@Example.org>', "bob@example.org"),
    ],
)
def test_a_quoted_local_part_that_needs_no_quotes_is_unquoted(written: str, key: str) -> None:
    assert normalize_recipient(written) == key


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ('"Bob Smith"@example.org', '"bob smith"@example.org'),
        ('"a..b"@example.org', '"a..b"@example.org'),
        ('".bob"@example.org', '".bob"@example.org'),
        ('"bob."@example.org', '"bob."@example.org'),
        ('"a@b"@example.org', '"a@b"@example.org'),
        ('"a,b"@example.org', '"a,b"@example.org'),
        ('"a\\"b"@example.org', '"a\\"b"@example.org'),
        ('"a\\\\b"@example.org', '"a\\\\b"@example.org'),
        ('""@example.org', '""@example.org'),
    ],
)
def test_a_quoted_local_part_that_needs_its_quotes_keeps_them(written: str, key: str) -> None:
    """A guard (passes on the old code too): unquoting stops where quotes are needed."""
    assert normalize_recipient(written) == key
    assert normalize_recipient(key) == key


def test_the_local_part_is_nfc() -> None:
    nfc = unicodedata.normalize("NFC", "josé@example.org")
    nfd = unicodedata.normalize("NFD", "josé@example.org")
    assert nfc != nfd
    assert normalize_recipient(nfd) == normalize_recipient(nfc) == nfc
    assert normalize_recipient(f"José <{nfd.upper()}>") == nfc
    assert normalize_recipient(unicodedata.normalize("NFD", '"josé"@example.org')) == nfc


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\xad"])
def test_invisible_characters_are_removed(invisible: str) -> None:
    for written in [
        f"{invisible}bob@example.org",
        f"bo{invisible}b@example.org",
        f"bob{invisible}@example.org",
        f"bob@exam{invisible}ple.org",
        f"bob@example.org{invisible}",
        f"{invisible} bob@example.org",
    ]:
        assert normalize_recipient(written) == "bob@example.org", repr(written)


@pytest.mark.parametrize(
    "written",
    [
        "bob@i❤.ws",
        "BOB@I❤.WS",
        "bob@i❤.ws.",
        "Bob <bob@i❤.ws>",
        "bob@xn--i-7iq.ws",
        "bob@XN--I-7IQ.WS",
    ],
)
def test_a_domain_idna_2008_refuses_still_has_its_a_label(written: str) -> None:
    assert normalize_recipient(written) == "bob@xn--i-7iq.ws"


def test_a_label_idna_2003_refuses_too_is_punycode() -> None:
    """A private-use character: IDNA 2008 and IDNA 2003 both refuse it."""
    assert normalize_recipient("bob@\ue000.example") == "bob@xn--0y0c.example"
    assert normalize_recipient("bob@xn--0y0c.example") == "bob@xn--0y0c.example"


def test_refused_labels_convert_one_by_one() -> None:
    """One label IDNA 2008 refuses does not change how the others are written."""
    assert normalize_recipient("bob@i❤.straße.example") == "bob@xn--i-7iq.xn--strae-oqa.example"


# -- kept as it was --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("BOB+Tag@Example.org", "bob+tag@example.org"),
        ("Bob@Example.org.", "bob@example.org"),
        ('"Bob Smith" <Bob@Example.org>', "bob@example.org"),
        ("<bob@example.org>", "bob@example.org"),
        ("bob@example.org (Bob)", "bob@example.org"),
        ("bob@Bücher.example", "bob@xn--bcher-kva.example"),
        ("bob@XN--BCHER-KVA.EXAMPLE", "bob@xn--bcher-kva.example"),
        ("not an address", "not an address"),
    ],
)
def test_what_was_kept_correctly_stays(written: str, key: str) -> None:
    """A guard (passes on the old code too): what review 2 found correct stays so."""
    assert normalize_recipient(written) == key


def test_a_plain_address_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard (passes on the old code too), for the webhook hot path: an ASCII
    addr-spec with nothing to parse is not parsed."""

    def parsed(text: str) -> str:
        raise AssertionError(f"parsed: {text!r}")

    monkeypatch.setattr(recipients, "_canonical", parsed)
    for plain in ["bob@example.org", " Bob.Smith+Tag@Example.org\n", "o'brien@mail.example.co"]:
        assert normalize_recipient(plain) == plain.strip().lower()


# -- where the parser reads no address -------------------------------------------------


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("<bob>", "bob"),  # no domain: only the angle brackets go
        ("<Xavier>", "xavier"),  # the letters at the edges stay
        ("< Bob >", "bob"),
    ],
)
def test_text_with_no_address_loses_only_its_angle_brackets(written: str, key: str) -> None:
    assert normalize_recipient(written) == key


def test_an_upper_case_domain_behind_a_display_name_is_lower_cased_whole() -> None:
    assert normalize_recipient('"Bob" <bob@MAIL.BOX>') == "bob@mail.box"
    assert normalize_recipient("Bob <bob@EXAMPLE.TAX.>") == "bob@example.tax"


def test_an_at_sign_in_a_quoted_local_part_does_not_split_the_address() -> None:
    """The domain is what follows the last `@`: the quoted `@` stays in the local part."""
    assert normalize_recipient('"a@b"@bücher.example') == '"a@b"@xn--bcher-kva.example'
    assert normalize_recipient('"Bob@Home"@Bücher.example') == '"bob@home"@xn--bcher-kva.example'


def test_a_label_converts_by_idna_2008_mapping_even_when_another_label_is_refused() -> None:
    """A full-width letter maps to its ASCII form (UTS 46), and `ß` stays `ß` (IDNA 2008),
    not `ss` as IDNA 2003 would have it."""
    assert normalize_recipient("bob@\uff53traße.i❤.ws") == "bob@xn--strae-oqa.xn--i-7iq.ws"


# -- lists of recipients ---------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "Xavier@example.org bob@example.org",
        "XX@example.org  bob@example.org",
        "Xavier@example.org\tbob@example.org",
    ],
)
def test_bare_addresses_separated_by_blanks_are_each_a_recipient(field: str) -> None:
    first, second = field.split()
    assert recipients.split_recipients([field]) == [first, second]


# -- event times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("1777889702", 1_777_889_702_000_000),  # epoch seconds
        ("1777889702000", 1_777_889_702_000_000),  # epoch milliseconds
        ("1777889702123", 1_777_889_702_123_000),
        ("1777889702.5", 1_777_889_702_500_000),
        # 10^11: still seconds (year 5138); anything above is milliseconds
        ("100000000000", 100_000_000_000_000_000),
        ("100000000001", 100_000_000_001_000),
        ("100000000000.5", 100_000_000_000_500),
    ],
)
def test_an_epoch_number_is_read_as_seconds_up_to_10_to_the_11_then_milliseconds(
    text: str, micros: int
) -> None:
    assert recipients.parse_time(text) == micros


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0001-01-01T00:00:00+00:00", -62_135_596_800_000_000),  # the first readable moment
        ("9999-12-31T23:59:59.999999+00:00", 253_402_300_799_999_999),  # the last
        ("0001-01-01T00:00:00.000001Z", -62_135_596_799_999_999),
    ],
)
def test_the_first_and_last_moments_a_datetime_shows_are_readable(text: str, micros: int) -> None:
    assert recipients.parse_time(text) == micros


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "9999999999999999",  # epoch milliseconds in year 318857
    ],
)
def test_a_time_outside_years_1_to_9999_utc_is_unreadable(text: str) -> None:
    assert recipients.parse_time(text) is None


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2026-05-04 10:15:02 UTC", 1_777_889_702_000_000),
        ("2026-05-04T10:15:02 GMT", 1_777_889_702_000_000),
        # an explicit offset is kept: the zone word does not override it
        ("2026-05-04T12:15:02+02:00 UTC", 1_777_889_702_000_000),
        ("2026-05-04 12:15:02 +0200 UTC", 1_777_889_702_000_000),
        ("2026-05-04T12:15:02+02:00Z", 1_777_889_702_000_000),
    ],
)
def test_a_trailing_zone_word_reads_as_utc_unless_an_offset_is_given(
    text: str, micros: int
) -> None:
    assert recipients.parse_time(text) == micros


@pytest.mark.parametrize("brackets", [4, 5, 6, 7, 20])
def test_text_that_does_not_stand_still_after_eight_readings_names_no_recipient(
    brackets: int,
) -> None:
    # Each "< " costs the parser one more reading; normalising twice must change nothing
    # (once, '@' + '< ' * 7 + '<.' gave '@<', and '@<' gave '@').
    text = "@" + "< " * brackets + "<."
    once = normalize_recipient(text)
    assert normalize_recipient(once) == once
    assert once == ("" if brackets >= 6 else "@")
