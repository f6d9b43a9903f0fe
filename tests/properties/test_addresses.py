"""One canonical form per address (issue 12, item 6; issue 18, review 2 N1 and N12), as
properties.

Whatever spelling a provider, an API client or an operator uses — a display name,
angle brackets, case, blanks, a trailing dot, the domain in Unicode or in its `xn--`
form (emoji domains IDNA 2008 refuses included), a needlessly quoted local part, NFC or
NFD, invisible characters — the address normalises to the same key; normalising twice
changes nothing; and a key is never one a backend cannot store (no control character,
no surrogate, at most 254 characters).
"""

from __future__ import annotations

import re
import unicodedata

import idna
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from projections.recipients import normalize_recipient, split_recipients
from tests.conftest import examples

SETTINGS = settings(max_examples=examples(300), deadline=None)

_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.+_-"
LOCALS = st.text(_LOCAL_CHARS, min_size=1, max_size=12).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
LABELS = st.sampled_from(
    ["example", "bücher", "münchen", "mail", "straße", "xn--80ak6aa92e", "co", "dev"]
)
DOMAINS = st.lists(LABELS, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "org"]))
NAMES = st.sampled_from(["Bob", "Bob Smith", "José Müller", "O'Brien", "Support Team"])


def _unicode(domain: str) -> str:
    return idna.decode(idna.encode(domain, uts46=True))


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(canonical address, one way of writing it)."""
    local, domain = draw(LOCALS), draw(DOMAINS)
    ascii_domain = idna.encode(domain, uts46=True).decode()
    canonical = f"{local}@{ascii_domain}"
    shown_domain = draw(st.sampled_from([domain, ascii_domain, _unicode(domain)]))
    shown_local = draw(st.sampled_from([local, local.upper(), local.title()]))
    # upper case, where it is a case change (`ß`.upper() is `SS`: another domain)
    if draw(st.booleans()) and shown_domain.upper().lower() == shown_domain.lower():
        shown_domain = shown_domain.upper()
    if draw(st.booleans()):
        shown_domain += "."
    address = f"{shown_local}@{shown_domain}"
    name = draw(NAMES)
    written = draw(
        st.sampled_from(
            [
                address,
                f"<{address}>",
                f"  {address}\t",
                f'"{name}" <{address}>',
                f"{name} <{address}>" if name.replace(" ", "").isalpha() else address,
            ]
        )
    )
    return canonical, written


@SETTINGS
@given(case=spellings())
def test_every_spelling_of_an_address_normalises_to_one_key(case: tuple[str, str]) -> None:
    canonical, written = case
    assert normalize_recipient(written) == canonical


@SETTINGS
@given(
    text=st.one_of(
        spellings().map(lambda c: c[1]),
        st.text(max_size=40),
        st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=8), st.text(max_size=12)),
        # address punctuation alone: text that holds no address but looks like one in
        # parts, where one pass can leave something a second pass would change again
        st.text('ab@<>"(),;. ', max_size=12),
    )
)
@example(">  < ,ba>")  # the mutation audit's R4: two passes needed to settle
@example('(@"> .')
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalize_recipient(text)
    assert normalize_recipient(once) == once


@SETTINGS
@given(cases=st.lists(spellings(), min_size=1, max_size=4))
def test_an_address_list_splits_into_its_canonical_addresses(
    cases: list[tuple[str, str]],
) -> None:
    field = ", ".join(written.strip() for _, written in cases)
    assert [normalize_recipient(a) for a in split_recipients([field])] == [c for c, _ in cases]


# -- issue 18, review 2: N1 (unstorable addresses) and N12 (one key per mailbox) ----------

UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\xad"
CONTROLS = "\x00\x01\t\n\r\x1f\x7f\x85\x9f\ud800\udfff"
# what address parsing trips on: quoting, escapes, brackets, comments, combining marks
# (NFC composes `e` + U+0301, and `>` + U+0338 into `≯`), case changes that change length
AWKWARD = '"\\@.<>(),;: ' + "\u0301\u0308\u0338" + "ßİ❤☃😀" + "\xa0"
WILD_CHARS = st.one_of(st.characters(), st.sampled_from(INVISIBLE + CONTROLS + AWKWARD))
WILD = st.text(WILD_CHARS, max_size=40)
# (U-label, A-label): IDNA 2008 takes the first two, refuses the emoji ones
DOMAIN_LABELS = st.sampled_from(
    [
        ("example", "example"),
        ("bücher", "xn--bcher-kva"),
        ("münchen", "xn--mnchen-3ya"),
        ("i❤", "xn--i-7iq"),
        ("☃", "xn--n3h"),
        ("😀", "xn--e28h"),
    ]
)
UNICODE_LOCALS = st.text(_LOCAL_CHARS + "éüñøåç", min_size=1, max_size=12).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
LONG = st.one_of(
    st.integers(230, 270).map(lambda n: "a" * n + "@example.org"),
    st.integers(225, 260).map(lambda n: '"Bob" <' + "B" * n + "@Bücher.example>"),
    st.integers(225, 260).map(lambda n: "é" * n + "@i❤.ws"),
    st.text(WILD_CHARS, min_size=240, max_size=300),
)
EVERYTHING = st.one_of(
    WILD,
    LONG,
    st.builds(lambda a, b: f"{a}@{b}", WILD, WILD),
    st.builds(lambda a, b: f'"{a}"@{b}', WILD, WILD),
    st.builds(lambda a, b, c: f"{a} <{b}@{c}>", WILD, WILD, WILD),
)


@st.composite
def invisible_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(canonical address, one way of writing it): quoted or not, NFC or NFD, invisible
    characters, each label of the domain in its U-label or A-label form."""
    local = draw(UNICODE_LOCALS)
    labels = draw(st.lists(DOMAIN_LABELS, min_size=1, max_size=3))
    canonical = f"{local}@{'.'.join([*(a for _, a in labels), 'org'])}"
    shown_local = draw(st.sampled_from([local, local.upper()]))
    if draw(st.booleans()):
        shown_local = f'"{shown_local}"'  # quoting it needs not
    shown_domain = ".".join([*(draw(st.sampled_from(label)) for label in labels), "org"])
    address = f"{shown_local}@{shown_domain}"
    written = draw(st.sampled_from([address, f"<{address}>", f'"José" <{address}>\n']))
    written = unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), written)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(written)))
        written = written[:at] + draw(st.sampled_from(INVISIBLE)) + written[at:]
    return canonical, written


@SETTINGS
@given(case=invisible_spellings())
def test_quoting_nfd_invisibles_and_a_labels_do_not_make_another_key(
    case: tuple[str, str],
) -> None:
    """Review 2, N12."""
    canonical, written = case
    assert normalize_recipient(written) == canonical


@settings(max_examples=examples(1000), deadline=None)
@given(text=EVERYTHING)
def test_normalising_anything_twice_changes_nothing(text: str) -> None:
    """Review 2, N1 and N12: control characters, quotes, combining marks, invisible
    characters, emoji domains and very long text included."""
    once = normalize_recipient(text)
    assert normalize_recipient(once) == once


@settings(max_examples=examples(1000), deadline=None)
@given(text=EVERYTHING)
def test_a_key_is_always_storable(text: str) -> None:
    """Review 2, N1: no control character or surrogate, at most 254 characters."""
    key = normalize_recipient(text)
    assert not UNSTORABLE.search(key)
    assert len(key) <= 254


@SETTINGS
@given(before=WILD, control=st.sampled_from(CONTROLS), after=WILD)
def test_a_control_character_inside_names_no_recipient(
    before: str, control: str, after: str
) -> None:
    """Review 2, N1: a control character left once invisible characters are removed and
    surrounding whitespace is trimmed refuses the whole text (display name included)."""
    text = f"{before}{control}{after}"
    assume(UNSTORABLE.search(text.translate(dict.fromkeys(map(ord, INVISIBLE))).strip()))
    assert normalize_recipient(text) == ""
