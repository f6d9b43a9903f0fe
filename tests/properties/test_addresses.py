"""One canonical form per address (issue 12, item 6), as properties.

Whatever spelling a provider, an API client or an operator uses — a display name,
angle brackets, case, blanks, a trailing dot, the domain in Unicode or in its `xn--`
form — the address normalises to the same key; and normalising twice changes nothing.
"""

from __future__ import annotations

import idna
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.recipients import normalize_recipient, split_recipients

SETTINGS = settings(max_examples=300, deadline=None)

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
    )
)
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
