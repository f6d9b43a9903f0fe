"""The Amazon SES / SNS door under attack (issue 13: items 3, 8, 10 and the certificate
checks): unsigned extras, wrongly typed fields, leaked details, foreign certificate hosts
and subjects, and certificate fetches that unauthenticated requests can trigger.

Nothing here reaches the network: fetchers are fakes, and the stand-in certificate from
tests/providers/signing.py plays Amazon's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient, TestClient
from msgspec.structs import replace

from api.app import create_app
from api.settings import Settings, load_settings
from api.signatures import SignatureInvalid, SignatureUnverifiable
from api.sns_messages import cert_file_name
from tests.conftest import API_KEY, AUTH
from tests.providers.signing import (
    CERT_URL,
    TOPIC,
    dumps,
    fixture_json,
    place_certificate,
    sns_certificate,
    sns_headers,
    sns_notification,
)

HARD = fixture_json("ses", "hard_bounce.json")
GENERIC_503 = "signing certificate unavailable, retry later"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    directory = tmp_path / "sns-certs"
    place_certificate(directory)
    return directory


@pytest.fixture
def ses_settings(db_path: Path, cache: Path) -> Settings:
    return load_settings(
        {
            "BOUNCELEDGER_DB": str(db_path),
            "BOUNCELEDGER_API_KEYS": f"ops:{API_KEY}",
            "SES_SNS_TOPIC_ARNS": TOPIC,
            "SES_SNS_CERT_CACHE": str(cache),
            "SES_SNS_FETCH": "off",
        }
    )


@pytest.fixture
async def door(ses_settings: Settings) -> AsyncIterator[Any]:
    async with AsyncTestClient(app=create_app(ses_settings)) as client:
        yield client


async def post(client: Any, envelope: dict[str, Any], body: bytes | None = None) -> Any:
    content = dumps(envelope) if body is None else body
    return await client.post(
        "/v1/webhooks/ses/events", content=content, headers=sns_headers(envelope)
    )


async def receipts(client: Any) -> int:
    return int((await client.get("/healthz", headers=AUTH)).json()["receipts"])


# Item 3: a signed message must not come back as new bytes with unsigned extras.


async def test_a_signed_message_replayed_with_an_unsigned_field_is_refused(door: Any) -> None:
    envelope = sns_notification(HARD)
    assert (await post(door, envelope)).status_code == 200
    padded = {**envelope, "Padding": "x" * 100_000}
    response = await post(door, padded)
    assert response.status_code == 403, response.text
    assert "Padding" in response.json()["detail"]
    assert await receipts(door) == 1


async def test_a_signed_message_replayed_with_a_repeated_field_is_refused(door: Any) -> None:
    # A JSON reader keeps the last of two equal keys: the first would ride along unsigned.
    envelope = sns_notification(HARD, message_id="dup-1")
    twice = b'{"Message":"' + b"x" * 100_000 + b'",' + dumps(envelope)[1:]
    assert json.loads(twice) == envelope  # the same fields to a JSON reader, 100 kB more
    response = await post(door, envelope, twice)
    assert response.status_code == 403, response.text
    assert "repeats" in response.json()["detail"]
    assert await receipts(door) == 0


async def test_well_formed_message_attributes_are_accepted_and_malformed_ones_are_400(
    door: Any,
) -> None:
    envelope = sns_notification(HARD, message_id="attrs-1")
    with_attributes = {
        **envelope,
        "MessageAttributes": {"team": {"Type": "String", "Value": "mail"}},
    }
    assert (await post(door, with_attributes)).status_code == 200
    bad: Any
    for bad in ([], {"team": "mail"}, {"team": {"Type": "String", "Value": 1}}):
        response = await post(door, {**envelope, "MessageAttributes": bad})
        assert response.status_code == 400, (bad, response.text)
    assert await receipts(door) == 1


def test_the_settings_read_ses_sns_require_v2_off_by_default(ses_settings: Settings) -> None:
    assert ses_settings.ses_require_v2 is False
    on = load_settings({"SES_SNS_TOPIC_ARNS": TOPIC, "SES_SNS_REQUIRE_V2": "on"})
    assert on.ses_require_v2 is True


async def test_require_v2_refuses_sha1_signed_messages(ses_settings: Settings) -> None:
    settings = replace(ses_settings, ses_require_v2=True)
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await post(client, sns_notification(HARD, version="1", message_id="v1"))
        assert response.status_code == 403
        assert "SignatureVersion" in response.json()["detail"]
        assert (await post(client, sns_notification(HARD, message_id="v2"))).status_code == 200
        assert await receipts(client) == 1


async def test_a_sha1_topic_is_accepted_by_default_and_the_operator_is_told_once(
    door: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import authenticators

    monkeypatch.setattr(authenticators, "_WARNED_V1", set())
    with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
        for n in range(2):
            response = await post(door, sns_notification(HARD, version="1", message_id=f"s{n}"))
            assert response.status_code == 200
    warnings = [r for r in caplog.records if "SHA-1" in r.getMessage()]
    assert len(warnings) == 1  # once per topic and process


# Item 10: wrongly typed envelope fields are a 400 with a clear message, never a 500.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TopicArn", []),
        ("TopicArn", {}),
        ("TopicArn", 5),
        ("MessageId", 1),
        ("Message", {"a": 1}),
        ("SigningCertURL", ["https://sns.eu-west-1.amazonaws.com/x.pem"]),
        ("Type", None),
    ],
)
async def test_a_wrongly_typed_envelope_field_is_a_400(
    door: Any, caplog: pytest.LogCaptureFixture, field: str, value: Any
) -> None:
    envelope = {**sns_notification(HARD), field: value}
    headers = sns_headers({**envelope, "Type": "Notification", "MessageId": "m", "TopicArn": TOPIC})
    if field == "Type":
        del headers["x-amz-sns-message-type"]
    with caplog.at_level(logging.INFO, logger="bounceledger.webhooks"):
        response = await door.post(
            "/v1/webhooks/ses/events", content=dumps(envelope), headers=headers
        )
    assert response.status_code == 400, response.text
    assert f"SNS field {field} must be a string" in response.json()["detail"]
    assert any("refused an SES delivery" in r.getMessage() for r in caplog.records)
    assert await receipts(door) == 0


# Item 8: a 503 names no path and no fetch error; the log does.


async def test_a_missing_certificate_503_names_no_server_path(
    ses_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "nowhere" / "certs"
    settings = replace(ses_settings, ses_cert_cache=empty, ses_fetch=None)
    async with AsyncTestClient(app=create_app(settings)) as client:
        with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
            response = await post(client, sns_notification(HARD))
    assert response.status_code == 503
    assert response.json()["detail"] == GENERIC_503
    assert str(tmp_path) not in response.text
    assert str(empty) in caplog.text  # the operator still learns where it looked


async def test_a_failed_fetch_503_does_not_echo_the_exception(
    ses_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(url: str) -> bytes:
        raise OSError("connect to 10.1.2.3:443 via proxy.internal failed")

    settings = replace(ses_settings, ses_cert_cache=tmp_path / "empty", ses_fetch=broken)
    async with AsyncTestClient(app=create_app(settings)) as client:
        with caplog.at_level(logging.WARNING, logger="bounceledger.webhooks"):
            response = await post(client, sns_notification(HARD))
    assert response.status_code == 503
    assert response.json()["detail"] == GENERIC_503
    assert "proxy.internal" not in response.text
    assert "proxy.internal" in caplog.text


# Also check: the certificate host is SNS's own, in the topic's region.


@pytest.mark.parametrize(
    "host",
    [
        "sns.s3-accelerate.amazonaws.com",
        "sns.s3.amazonaws.com",
        "sns.s3-external-1.amazonaws.com",
        "sns.s3-website-us-east-1.amazonaws.com",
        "sns.s3-us-west-2.amazonaws.com",
        "sns.execute-api.amazonaws.com",
        "sns.cn-north-1.amazonaws.com",  # China is amazonaws.com.cn only
        "sns.eu-west-1.amazonaws.com.cn",
    ],
)
def test_a_certificate_host_that_is_not_an_sns_region_is_refused(host: str) -> None:
    with pytest.raises(SignatureInvalid):
        cert_file_name(f"https://{host}/SimpleNotificationService-abc.pem")


@pytest.mark.parametrize(
    "host",
    [
        "sns.us-east-1.amazonaws.com",
        "sns.ap-southeast-5.amazonaws.com",
        "sns.il-central-1.amazonaws.com",
        "sns.us-gov-west-1.amazonaws.com",
        "sns.cn-northwest-1.amazonaws.com.cn",
    ],
)
def test_sns_hosts_of_every_partition_are_accepted(host: str) -> None:
    url = f"https://{host}/SimpleNotificationService-abc.pem"
    assert cert_file_name(url) == "SimpleNotificationService-abc.pem"


async def test_a_certificate_from_another_region_than_the_topic_is_refused(
    door: Any, cache: Path
) -> None:
    other = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test0123456789.pem"
    place_certificate(cache, other)  # same file name: only the region check refuses it
    response = await post(door, sns_notification(HARD, cert_url=other))
    assert response.status_code == 403
    assert "region" in response.json()["detail"]
    assert await receipts(door) == 0


# Also check: the certificate's subject names SNS.


async def test_a_certificate_not_naming_sns_is_not_trusted(door: Any, cache: Path) -> None:
    # Right key, right file, wrong subject: accepted before, now unverifiable.
    (cache / CERT_URL.rsplit("/", 1)[-1]).write_bytes(sns_certificate("impostor.example"))
    response = await post(door, sns_notification(HARD))
    assert response.status_code == 503
    assert response.json()["detail"] == GENERIC_503
    assert await receipts(door) == 0


async def test_a_fetched_certificate_not_naming_sns_is_not_cached(tmp_path: Path) -> None:
    from api.sns_certificates import CertificateSource

    source = CertificateSource(tmp_path, lambda url: sns_certificate("impostor.example"))
    with pytest.raises(SignatureUnverifiable):
        await source.get(CERT_URL)
    assert list(tmp_path.iterdir()) == []


# Also check: fetches triggered without authentication are bounded.


def url_for(n: int) -> str:
    return f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x{n}.pem"


class SlowFetch:
    """A fetch that blocks until released (or 10 s), then fails or answers."""

    def __init__(self, answer: bytes | None = None) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        self.threads: set[str] = set()
        self.answer = answer

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        self.threads.add(threading.current_thread().name)
        self.release.wait(10)
        if self.answer is None:
            raise OSError("unreachable")
        return self.answer


def test_slow_fetches_do_not_starve_verification_of_cached_certificates(
    ses_settings: Settings,
) -> None:
    # Eight unauthenticated requests naming uncached certificates, from eight threads
    # (the test client runs them concurrently only so), then a genuine message whose
    # certificate is cached: it must not wait behind their fetches.
    slow = SlowFetch()
    settings = replace(ses_settings, ses_fetch=slow)

    def send(client: TestClient[Any], envelope: dict[str, Any]) -> Any:
        return client.post(
            "/v1/webhooks/ses/events", content=dumps(envelope), headers=sns_headers(envelope)
        )

    with TestClient(app=create_app(settings)) as client, ThreadPoolExecutor(8) as pool:
        flood = [
            pool.submit(send, client, sns_notification(HARD, cert_url=url_for(n))) for n in range(8)
        ]
        time.sleep(0.5)
        try:
            started = time.monotonic()
            legit = send(client, sns_notification(HARD, message_id="legit"))
            elapsed = time.monotonic() - started
            fetches = len(slow.calls)
        finally:
            slow.release.set()
        answers = [future.result(timeout=30) for future in flood]
    assert legit.status_code == 200, legit.text
    assert elapsed < 3
    assert fetches <= 2  # at most two fetches in flight, one per URL
    assert [a.status_code for a in answers] == [503] * 8
    assert all(a.json()["detail"] == GENERIC_503 for a in answers)


async def test_one_fetch_per_url_however_many_requests_wait_for_it(tmp_path: Path) -> None:
    from api.sns_certificates import CertificateSource

    slow = SlowFetch(sns_certificate("sns.amazonaws.com"))
    source = CertificateSource(tmp_path, slow, wait=5)
    waiting = [asyncio.create_task(source.get(CERT_URL)) for _ in range(5)]
    await asyncio.sleep(0.2)
    slow.release.set()
    certificates = await asyncio.gather(*waiting)
    assert slow.calls == [CERT_URL]
    assert len({c.serial_number for c in certificates}) == 1
    assert (tmp_path / CERT_URL.rsplit("/", 1)[-1]).is_file()  # cached: no fetch next time
    await source.get(CERT_URL)
    assert slow.calls == [CERT_URL]
    assert all(name.startswith("sns-certificate-fetch") for name in slow.threads)


async def test_a_request_waits_briefly_and_the_event_loop_keeps_running(tmp_path: Path) -> None:
    from api.sns_certificates import CertificateSource

    slow = SlowFetch()
    source = CertificateSource(tmp_path, slow, wait=0.3)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        with pytest.raises(SignatureUnverifiable, match=GENERIC_503):
            await source.get(CERT_URL)
    finally:
        ticker.cancel()
        slow.release.set()
    assert time.monotonic() - started < 2
    assert ticks >= 10  # the loop ran while the fetch blocked its thread


async def test_a_failed_fetch_is_not_retried_for_a_while_and_failures_are_bounded(
    tmp_path: Path,
) -> None:
    from api.sns_certificates import CertificateSource

    calls: list[str] = []
    now = [1000.0]

    def broken(url: str) -> bytes:
        calls.append(url)
        raise OSError("unreachable")

    source = CertificateSource(
        tmp_path, broken, failure_ttl=60, max_failures=3, clock=lambda: now[0]
    )
    for _ in range(3):
        with pytest.raises(SignatureUnverifiable):
            await source.get(CERT_URL)
    assert calls == [CERT_URL]  # the next two were answered from the failure
    now[0] += 61
    with pytest.raises(SignatureUnverifiable):
        await source.get(CERT_URL)
    assert calls == [CERT_URL, CERT_URL]
    for n in range(10):  # many distinct URLs: the failure memory stays small
        with pytest.raises(SignatureUnverifiable):
            await source.get(url_for(n))
    assert len(source._failed) <= 3


async def test_fetches_beyond_the_cap_are_refused_without_fetching(tmp_path: Path) -> None:
    from api.sns_certificates import CertificateSource

    slow = SlowFetch()
    source = CertificateSource(tmp_path, slow, max_fetches=2, wait=5)
    waiting = [asyncio.create_task(source.get(url_for(n))) for n in range(2)]
    await asyncio.sleep(0.2)
    try:
        with pytest.raises(SignatureUnverifiable):
            await source.get(url_for(3))
        assert sorted(slow.calls) == [url_for(0), url_for(1)]
    finally:
        slow.release.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, SignatureUnverifiable)


def test_a_trickling_certificate_server_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    from api import sns_certificates

    opened: list[float] = []

    class Trickle:
        def __enter__(self) -> Trickle:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read1(self, n: int = -1) -> bytes:
            time.sleep(0.02)
            return b"-"

        read = read1

    class Opener:
        def open(self, url: str, timeout: float) -> Trickle:
            opened.append(timeout)
            return Trickle()

    monkeypatch.setattr(urllib.request, "build_opener", lambda *handlers: Opener())
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        sns_certificates.fetch_https(CERT_URL, deadline=0.3)
    assert time.monotonic() - started < 2
    assert opened
    assert opened[0] <= 5  # each socket operation is short too
