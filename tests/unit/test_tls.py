"""Whether a request arrived over TLS (issue 19, N3): its own scheme, or a trusted
proxy's `X-Forwarded-Proto` — never the header of anyone else."""

from __future__ import annotations

import pytest

from api.network import arrived_over_tls, parse_networks

TRUSTED = parse_networks("127.0.0.1, 10.0.0.0/8", "proxies")


@pytest.mark.parametrize(
    ("scheme", "peer", "forwarded", "tls"),
    [
        ("https", "203.0.113.9", [], True),
        ("http", "203.0.113.9", [], False),
        ("http", "203.0.113.9", ["https"], False),  # not a proxy of ours
        ("http", "127.0.0.1", ["https"], True),
        ("http", "10.1.2.3", ["HTTPS"], True),
        ("http", "127.0.0.1", ["http"], False),
        ("http", "127.0.0.1", ["https, http"], False),  # the nearest hop says http
        ("http", "127.0.0.1", ["http", "https"], True),  # the nearest hop's line comes last
        ("http", "127.0.0.1", [], False),
        ("http", None, ["https"], False),
        ("http", "testclient", ["https"], False),
    ],
)
def test_tls_is_the_scheme_or_a_trusted_proxys_word(
    scheme: str, peer: str | None, forwarded: list[str], tls: bool
) -> None:
    assert arrived_over_tls(scheme, peer, forwarded, TRUSTED) is tls
