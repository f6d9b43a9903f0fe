"""api/paths.py: an address in a request path becomes one segment (N11), and every other
path is left as it was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.paths import ADDRESS_PREFIXES, address, routable

SUFFIXES = ["", "/", "/explain", "/events", "/suppress", "/release"]


@pytest.mark.parametrize("prefix", ADDRESS_PREFIXES)
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("given", "segment"),
    [
        pytest.param("bob@example.org", "bob@example.org", id="plain"),
        pytest.param("a/b@example.org", "a%2Fb@example.org", id="slash"),
        pytest.param("x/y/z@example.org", "x%2Fy%2Fz@example.org", id="slashes"),
        pytest.param("a%b@example.org", "a%25b@example.org", id="percent"),
        pytest.param("a%41@example.org", "a%2541@example.org", id="percent-hex"),
        pytest.param("a/%2F@example.org", "a%2F%252F@example.org", id="slash-and-escape"),
        pytest.param('"a@b"@example.org', '"a@b"@example.org', id="quoted-at"),
        pytest.param('"a/@b"@example.org', '"a%2F@b"@example.org', id="quoted-at-slash"),
        pytest.param("a//b@example.org", "a%2F%2Fb@example.org", id="double-slash"),
        pytest.param("/a@example.org", "%2Fa@example.org", id="leading-slash"),
        pytest.param("josé/x@bücher.example", "josé%2Fx@bücher.example", id="unicode"),
    ],
)
def test_the_address_becomes_one_segment(
    prefix: str, suffix: str, given: str, segment: str
) -> None:
    rewritten = routable(prefix + given + suffix)
    assert rewritten == prefix + segment + suffix
    assert address(segment) == given


@pytest.mark.parametrize(
    "path",
    [
        "/v1/suppressions",
        "/v1/suppressions/",
        "/v1/suppressions/check",
        "/v1/suppressions/nobody",
        "/v1/suppressions/nobody/explain",
        "/v1/suppressions/a/b",  # no `@`: the segment ends at the next `/`, as before
        "/v1/audit/recipients/nobody/events",
        "/v1/audit/receipts/12",
        "/v1/audit/policies",
        "/v1/webhooks/smtp2go/events",
        "/v1/webhooks/a/b@example.org/events",
        "/console",
        "/console/address/",
        "/console/receipts/3",
        "/healthz",
        "/schema/openapi.json",
        "/v1/suppressionsx/a/b@example.org",
        "/console/addresses/a/b@example.org",
        "/",
        "",
    ],
)
def test_other_paths_are_untouched(path: str) -> None:
    assert routable(path) == path


def test_without_an_at_percent_is_kept_for_the_handler() -> None:
    # The handlers always undo the escaping, so a `%` in the segment is escaped too.
    assert routable("/v1/suppressions/100%") == "/v1/suppressions/100%25"
    assert address("100%25") == "100%"
    assert routable("/v1/suppressions/a%b/explain") == "/v1/suppressions/a%25b/explain"


def test_the_segment_ends_at_the_first_slash_after_the_last_at() -> None:
    assert routable("/v1/suppressions/a@b/c@example.org/explain") == (
        "/v1/suppressions/a@b%2Fc@example.org/explain"
    )
    assert routable("/v1/suppressions/a/b@") == "/v1/suppressions/a%2Fb@"


@given(
    prefix=st.sampled_from(ADDRESS_PREFIXES),
    local=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30),
    domain=st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="/@"),
        min_size=1,
        max_size=20,
    ),
    suffix=st.sampled_from(SUFFIXES),
)
def test_any_address_round_trips(prefix: str, local: str, domain: str, suffix: str) -> None:
    given_address = f"{local}@{domain}"
    rewritten = routable(prefix + given_address + suffix)
    assert rewritten.startswith(prefix)
    assert rewritten.endswith(suffix)
    segment = rewritten[len(prefix) : len(rewritten) - len(suffix)]
    assert "/" not in segment
    assert address(segment) == given_address
