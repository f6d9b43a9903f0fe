"""SNS signing certificates: a cache directory first, else a bounded HTTPS fetch.

A certificate is kept in the cache directory under its URL's last path segment: one
already there is used without fetching, so verification works offline. A certificate
that cannot be had is `SignatureUnverifiable` (503, SNS retries) with a generic detail:
the specifics (paths, fetch errors) go to the log, not to the sender.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from api.signatures import SignatureUnverifiable
from api.sns_messages import cert_file_name, check_subject

log = logging.getLogger("bounceledger.webhooks")

# An outbound HTTPS GET (URL -> body bytes). Certificate and subscription fetches go
# through it, so tests and offline deployments replace or disable it.
Fetch = Callable[[str], bytes]

MAX_FETCH_BYTES = 64 * 1024
FETCH_SOCKET_TIMEOUT = 3.0  # seconds per connect / read
FETCH_DEADLINE = 6.0  # seconds for a whole fetch, however slowly the bytes trickle
FETCH_WAIT = 5.0  # seconds a request waits for a fetch before answering 503
MAX_FETCHES = 2  # certificate fetches in flight at once (one per URL)
FAILURE_TTL = 60.0  # seconds a failed fetch is not retried
MAX_FAILURES = 1024  # failed URLs remembered (oldest forgotten first)

UNAVAILABLE = "signing certificate unavailable, retry later"


def _unavailable(reason: str, *args: Any) -> SignatureUnverifiable:
    """The generic 503 for the sender; the specifics for the operator's log."""
    log.warning("SNS signing certificate unavailable: " + reason, *args)
    return SignatureUnverifiable(UNAVAILABLE)


def cached_certificate(url: str, cache_dir: Path) -> x509.Certificate | None:
    """The certificate for `url` from the cache directory, or None when it is not there."""
    path = cache_dir / cert_file_name(url)
    if not path.is_file():
        return None
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        check_subject(certificate, url)
    except ValueError as exc:
        raise _unavailable("cached certificate %s is unusable (%s)", path, exc) from exc
    return certificate


def fetch_certificate(url: str, cache_dir: Path, fetch: Fetch) -> x509.Certificate:
    """GET the certificate, check it names SNS, then keep it in the cache directory.
    Raises whatever went wrong (the caller reports it)."""
    pem = fetch(url)
    certificate = x509.load_pem_x509_certificate(pem)
    check_subject(certificate, url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".fetch-", delete=False) as handle:
        handle.write(pem)
    os.replace(handle.name, cache_dir / cert_file_name(url))
    return certificate


class CertificateSource:
    """Signing certificates for requests that are not authenticated yet, so every fetch
    they trigger is bounded: the cache directory first; else at most one fetch per URL
    and `max_fetches` in all, on threads of their own (never the shared pool, never the
    event loop); a request waits at most `wait` seconds; a failed URL is not fetched
    again for `failure_ttl` seconds (at most `max_failures` remembered)."""

    def __init__(
        self,
        cache_dir: Path,
        fetch: Fetch | None,
        *,
        max_fetches: int = MAX_FETCHES,
        wait: float = FETCH_WAIT,
        failure_ttl: float = FAILURE_TTL,
        max_failures: int = MAX_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_dir, self.fetch = cache_dir, fetch
        self._max_fetches, self._wait = max_fetches, wait
        self._failure_ttl, self._max_failures, self._clock = failure_ttl, max_failures, clock
        self._inflight: dict[str, asyncio.Future[x509.Certificate]] = {}
        self._failed: dict[str, float] = {}  # url -> when it may be fetched again
        self._executor: ThreadPoolExecutor | None = None

    async def get(self, url: str) -> x509.Certificate:
        certificate = cached_certificate(url, self.cache_dir)
        if certificate is not None:
            return certificate
        if self.fetch is None:
            raise _unavailable(
                "%s is not in %s and outbound fetching is off (SES_SNS_FETCH)",
                url,
                self.cache_dir,
            )
        future = self._inflight.get(url) or self._start(url, self.fetch)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._wait)
        except TimeoutError as exc:
            raise _unavailable("fetching %s took longer than %.0f s", url, self._wait) from exc
        except Exception as exc:
            raise _unavailable("fetching %s failed: %s: %s", url, type(exc).__name__, exc) from exc

    def _start(self, url: str, fetch: Fetch) -> asyncio.Future[x509.Certificate]:
        retry_at = self._failed.get(url)
        if retry_at is not None and self._clock() < retry_at:
            raise _unavailable("%s failed recently; not fetched again yet", url)
        if len(self._inflight) >= self._max_fetches:
            raise _unavailable("%d certificate fetches already in flight", len(self._inflight))
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max_fetches, "sns-certificate-fetch")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, fetch_certificate, url, self.cache_dir, fetch
        )
        self._inflight[url] = future
        future.add_done_callback(lambda done: self._finished(url, done))
        return future

    def _finished(self, url: str, future: asyncio.Future[x509.Certificate]) -> None:
        """When the fetch's thread is done (even if every waiter gave up before)."""
        self._inflight.pop(url, None)
        if future.cancelled() or future.exception() is not None:
            self._failed.pop(url, None)
            while len(self._failed) >= self._max_failures:
                del self._failed[next(iter(self._failed))]  # the oldest
            self._failed[url] = self._clock() + self._failure_ttl
        else:
            self._failed.pop(url, None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an error: only the validated URL is fetched


def fetch_https(
    url: str, *, timeout: float = FETCH_SOCKET_TIMEOUT, deadline: float = FETCH_DEADLINE
) -> bytes:
    """GET an https URL: no redirects, `timeout` seconds per socket operation, `deadline`
    seconds in all (checked between reads), at most 64 KiB."""
    if urlsplit(url).scheme != "https":
        raise ValueError("only https URLs are fetched")
    started = time.monotonic()
    opener = urllib.request.build_opener(_NoRedirect)
    chunks: list[bytes] = []
    size = 0
    with opener.open(url, timeout=timeout) as response:  # scheme checked above
        while chunk := response.read1(8192):
            size += len(chunk)
            if size > MAX_FETCH_BYTES:
                raise ValueError("response larger than 64 KiB")
            if time.monotonic() - started > deadline:
                raise TimeoutError(f"response took longer than {deadline:.0f} s")
            chunks.append(chunk)
    return b"".join(chunks)
