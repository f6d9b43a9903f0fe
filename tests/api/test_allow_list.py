"""Per-provider source-address allow-lists, honouring X-Forwarded-For only from
configured trusted proxies."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.network import NetworksInvalid, client_address, parse_networks
from api.settings import SettingsInvalid, load_settings
from tests.conftest import API_KEY, SECRET, fixture_bytes
from tests.serving import bounceledger_script, free_port, stop, wait_healthy

PROXY = parse_networks("127.0.0.1, 10.0.0.0/8", "proxies")


def test_a_direct_peer_is_the_client_and_forwarded_for_is_ignored() -> None:
    got = client_address("198.51.100.7", "203.0.113.9", trusted=())
    assert got == ipaddress.ip_address("198.51.100.7")


def test_behind_a_trusted_proxy_the_forwarded_client_counts() -> None:
    got = client_address("127.0.0.1", "203.0.113.9", trusted=PROXY)
    assert got == ipaddress.ip_address("203.0.113.9")


def test_only_hops_up_to_the_first_untrusted_one_are_believed() -> None:
    # the client forged the left entry; the proxy appended what it really saw
    got = client_address("127.0.0.1", "203.0.113.9, 198.51.100.1, 10.1.2.3", trusted=PROXY)
    assert got == ipaddress.ip_address("198.51.100.1")


def test_a_malformed_forwarded_chain_gives_no_address() -> None:
    assert client_address("127.0.0.1", "nonsense", trusted=PROXY) is None


def test_a_non_ip_peer_gives_no_address() -> None:
    assert client_address("testclient", None, trusted=PROXY) is None


def test_lists_take_cidrs_and_bare_addresses_and_refuse_garbage() -> None:
    assert parse_networks("203.0.113.0/24, 2001:db8::/32, 198.51.100.7", "x") == (
        ipaddress.ip_network("203.0.113.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("198.51.100.7/32"),
    )
    with pytest.raises(NetworksInvalid, match="x: 'not-an-ip'"):
        parse_networks("10.0.0.0/8, not-an-ip", "x")


def test_settings_read_one_list_per_provider_and_name_a_bad_one() -> None:
    settings = load_settings(
        {"SMTP2GO_ALLOWED_IPS": "203.0.113.0/24", "BOUNCELEDGER_TRUSTED_PROXIES": "127.0.0.1"}
    )
    assert settings.allowed_ips == {"smtp2go": (ipaddress.ip_network("203.0.113.0/24"),)}
    assert settings.trusted_proxies == (ipaddress.ip_network("127.0.0.1/32"),)
    with pytest.raises(SettingsInvalid, match="SENDGRID_ALLOWED_IPS"):
        load_settings({"SENDGRID_ALLOWED_IPS": "300.1.1.1"})


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SMTP2GO_WEBHOOK_SECRET": SECRET,
        "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
        **request.param,
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [bounceledger_script(), "serve", "--port", str(port), "--db", tmp_path / "l.db"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(base, process, log_path)
            yield base
        finally:
            stop(process)


def _post(base: str, body: bytes, forwarded_for: str | None = None) -> int:
    headers = {"authorization": f"Bearer {SECRET}"}
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for
    url = f"{base}/v1/webhooks/smtp2go/events"
    return httpx.post(url, content=body, headers=headers, timeout=5).status_code


BEHIND_PROXY = {
    "SMTP2GO_ALLOWED_IPS": "203.0.113.0/24",
    "BOUNCELEDGER_TRUSTED_PROXIES": "127.0.0.1",
}


@pytest.mark.parametrize("served", [BEHIND_PROXY], indirect=True)
def test_behind_a_trusted_proxy_only_allowed_clients_get_in(served: str) -> None:
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    assert _post(served, body) == 403  # the proxy itself is not an allowed client
    assert _post(served, body, "198.51.100.1") == 403
    assert _post(served, body, "203.0.113.9, 198.51.100.1") == 403  # forged left entry
    assert _post(served, body, "nonsense") == 403
    assert _post(served, body, "198.51.100.1, 203.0.113.9") == 200
    health = httpx.get(f"{served}/healthz", headers={"authorization": f"Bearer {API_KEY}"})
    assert health.json()["receipts"] == 1  # refused requests appended nothing


@pytest.mark.parametrize("served", [{"SMTP2GO_ALLOWED_IPS": "127.0.0.1"}], indirect=True)
def test_without_trusted_proxies_forwarded_for_cannot_spoof_or_lock_out(served: str) -> None:
    body = fixture_bytes("smtp2go", "spam.json")
    assert _post(served, body, "203.0.113.9") == 200  # the real peer, 127.0.0.1, is allowed


@pytest.mark.parametrize("served", [BEHIND_PROXY], indirect=True)
def test_every_forwarded_for_line_is_read_not_only_the_first(served: str) -> None:
    """Issue 13, item 2: a proxy that appends its own `X-Forwarded-For` line leaves the
    client's (forged) line first; the lines are one list, read from the right."""
    url = f"{served}/v1/webhooks/smtp2go/events"
    body = fixture_bytes("smtp2go", "hard_bounce.form")
    lines = [
        (b"authorization", f"Bearer {SECRET}".encode()),
        (b"x-forwarded-for", b"203.0.113.5"),  # written by the client
        (b"x-forwarded-for", b"198.51.100.9"),  # appended by the proxy: the real client
    ]
    assert httpx.post(url, content=body, headers=lines, timeout=5).status_code == 403
    honest = [
        *lines[:1],
        (b"x-forwarded-for", b"198.51.100.9"),
        (b"x-forwarded-for", b"203.0.113.5"),
    ]
    assert httpx.post(url, content=body, headers=honest, timeout=5).status_code == 200
    receipt = httpx.get(
        f"{served}/v1/audit/receipts/1", headers={"authorization": f"Bearer {API_KEY}"}
    ).json()
    assert receipt["headers"]["x-forwarded-for"] == "198.51.100.9, 203.0.113.5"
