"""Settings: typed values built from the environment at the edge, then passed in."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from api.network import Network, NetworksInvalid, parse_networks
from api.push.endpoints import Schedule
from api.push.signing import EndpointKey, EndpointKeyMissing
from api.push.signing import load_key as load_endpoint_key
from api.sns_certificates import Fetch, fetch_https
from ledger.backends import as_target
from projections.erasure_keys import ErasureKey, load_key
from projections.errors import ErasureRefused
from projections.providers import PROVIDERS

DEFAULT_DB = Path("data/ledger.db")
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_READ_TIMEOUT = 15.0  # seconds for a request's headers, and again for its body
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_PG_POOL_MIN = 2
DEFAULT_PG_POOL_MAX = 10
DEFAULT_AUTH_FAILURES = 20  # per source address and minute
DEFAULT_QUARANTINE_MAX = 1000  # pending undecodable deliveries per source
# Seconds the oldest unprojected receipt may wait before lookups answer 503 and /readyz
# fails: the projection normally trails the ledger by well under a second.
DEFAULT_MAX_PROJECTION_LAG = 10.0
DEFAULT_CHANGES_KEEP_DAYS = 30.0


class Secret:
    """A secret value: compared in constant time, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.encode()

    def matches(self, candidate: str | bytes | None) -> bool:
        """Constant-time comparison (for a given secret length)."""
        if candidate is None:
            return False
        given = candidate.encode() if isinstance(candidate, str) else candidate
        return hmac.compare_digest(given, self._value)

    def sign(self, message: bytes) -> bytes:
        """HMAC-SHA256 of `message` keyed by the secret (which it never reveals)."""
        return hmac.new(self._value, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "Secret('***')"


class SigningKey:
    """An HMAC key: it signs, it is never printed."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, message: bytes) -> bytes:
        """HMAC-SHA256 of `message` under this key."""
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "SigningKey('***')"


class ApiKey(msgspec.Struct, frozen=True):
    """A named API key from `BOUNCELEDGER_API_KEYS="ops:KEY1,app:KEY2"`.

    Plain keys (no `name:`) are named key1, key2… by position."""

    name: str
    secret: Secret


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service is configured with."""

    # A SQLite file's path, or a `postgresql://` URL (str) shared by several instances.
    db: Path | str = DEFAULT_DB
    # PostgreSQL connections per instance (BOUNCELEDGER_PG_POOL_MIN / _MAX).
    pg_pool_min: int = DEFAULT_PG_POOL_MIN
    pg_pool_max: int = DEFAULT_PG_POOL_MAX
    policy: Path | None = None
    api_keys: tuple[ApiKey, ...] = ()
    smtp2go_secret: Secret | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    # One setting per provider; a provider whose setting is unset has no endpoint (404).
    sendgrid_public_key: ec.EllipticCurvePublicKey | None = None
    mailgun_signing_key: SigningKey | None = None
    resend_secret: SigningKey | None = None
    postmark_secret: Secret | None = None
    mailtura_secret: SigningKey | None = None
    ses_topic_arns: frozenset[str] = frozenset()
    ses_cert_cache: Path = DEFAULT_DB.parent / "sns-certs"
    ses_fetch: Fetch | None = None  # None: outbound fetching disabled
    ses_require_v2: bool = False  # refuse SNS SignatureVersion 1 (SHA-1)
    # Optional source-address allow-lists per provider ({PROVIDER}_ALLOWED_IPS), and the
    # proxies whose X-Forwarded-For is believed (BOUNCELEDGER_TRUSTED_PROXIES).
    allowed_ips: dict[str, tuple[Network, ...]] = {}
    trusted_proxies: tuple[Network, ...] = ()
    # Failed authentications (401/403) a source address may have per minute before it is
    # answered 429 until the minute is over (BOUNCELEDGER_AUTH_FAILURES; 0: no limit).
    auth_failures: int = DEFAULT_AUTH_FAILURES
    # Undecodable deliveries kept aside per source until replayed
    # (BOUNCELEDGER_QUARANTINE_MAX); beyond it they are refused without being kept.
    quarantine_max: int = DEFAULT_QUARANTINE_MAX
    # Slow clients (api/cli/serve.py): a request's headers, and then its body, must arrive
    # within read_timeout seconds (BOUNCELEDGER_READ_TIMEOUT) or it is answered 408; at
    # most max_connections are served at once (BOUNCELEDGER_MAX_CONNECTIONS), beyond that 503.
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # When the oldest receipt not yet folded is older than this many seconds, whoever
    # holds the projector's lease, lookups answer 503 (not a stale "not suppressed") and
    # /readyz fails (BOUNCELEDGER_MAX_PROJECTION_LAG).
    max_projection_lag: float = DEFAULT_MAX_PROJECTION_LAG
    # Console cookies without `Secure` (and without the `__Host-` prefix) on requests that
    # did not arrive over TLS: for plain-HTTP use other than on localhost, which browsers
    # treat as secure (BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on). Off: always Secure.
    console_plain_http: bool = False
    # The key erased addresses are looked up by (projections/erasure_keys.py:
    # BOUNCELEDGER_ERASURE_KEY or BOUNCELEDGER_ERASURE_KEY_FILE); None: erasure refused.
    erasure_key: ErasureKey | None = None
    # The key every outbound webhook endpoint's secret is derived from (api/push/signing.py:
    # BOUNCELEDGER_ENDPOINT_KEY or BOUNCELEDGER_ENDPOINT_KEY_FILE); None: no endpoint can be
    # added, and nothing is delivered.
    endpoint_key: EndpointKey | None = None
    # When a failed delivery is retried (Svix's schedule; tests shorten it).
    push_schedule: Schedule = msgspec.field(default_factory=Schedule)
    # How long the change feed keeps its entries, in seconds (projections/feed.py;
    # BOUNCELEDGER_CHANGES_KEEP_DAYS, 30 days by default): a cursor from before is 410.
    changes_keep: float = DEFAULT_CHANGES_KEEP_DAYS * 86400


class SettingsInvalid(ValueError):
    """When an environment variable holds a value that cannot be used."""


# Keys and shared secrets shorter than this are refused at start-up: short enough to
# guess, or a placeholder left in a config file.
MIN_SECRET_LENGTH = 16
_KEY_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def _long_enough(value: str | bytes, name: str, what: str = "characters") -> None:
    if len(value) < MIN_SECRET_LENGTH:
        raise SettingsInvalid(
            f"{name} is too short: {len(value)} {what}, at least {MIN_SECRET_LENGTH} needed "
            "(a random value: python3 -c 'import secrets; print(secrets.token_urlsafe())')"
        )


def _secret(environ: Mapping[str, str], name: str) -> Secret | None:
    value = environ.get(name, "").strip()
    if value:
        _long_enough(value, name)
    return Secret(value) if value else None


def _hmac_key(environ: Mapping[str, str], name: str) -> SigningKey | None:
    value = environ.get(name, "").strip()
    if value:
        _long_enough(value, name)
    return SigningKey(value.encode()) if value else None


def parse_svix_secret(text: str) -> SigningKey:
    """A Svix secret `whsec_<base64>`: the HMAC key is the base64-decoded part."""
    encoded = text.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise SettingsInvalid("RESEND_WEBHOOK_SECRET must be whsec_ followed by base64") from exc
    if not key:
        raise SettingsInvalid("RESEND_WEBHOOK_SECRET is empty after whsec_")
    _long_enough(key, "RESEND_WEBHOOK_SECRET (after whsec_, decoded)", "bytes")
    return SigningKey(key)


def parse_ec_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: PEM, or the bare base64 DER its console shows."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise SettingsInvalid(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key (base64 DER or PEM)"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SettingsInvalid("SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA P-256 key")
    return key


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsInvalid(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """`name:key,name:key` or plain `key,key` (named key1, key2, … by position).

    The name is recorded as the actor of every operator action in the permanent ledger,
    so nothing ambiguous is taken: a key may not contain `:` or `,`, names and keys must
    be unique, and a key must be at least 16 characters long.
    """
    keys: list[ApiKey] = []
    names: set[str] = set()
    values: set[str] = set()
    for index, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        where = f"BOUNCELEDGER_API_KEYS entry {index + 1}"
        if item.count(":") > 1:
            raise SettingsInvalid(
                f"{where} has more than one ':': write name:key, with no ':' in the key"
            )
        name, sep, key = (part.strip() for part in item.partition(":"))
        if not sep:
            name, key = f"key{index + 1}", item
        if not name or not key:
            raise SettingsInvalid(f"{where} is empty")
        if not _KEY_NAME.fullmatch(name):
            raise SettingsInvalid(
                f"{where}: the name before ':' may hold letters, digits and . _ - @ only "
                "(a key with ':' in it would be read as name:key)"
            )
        _long_enough(key, f"{where} ({name})")
        if name in names or key in values:
            raise SettingsInvalid(f"{where} ({name}) repeats a name or a key of another entry")
        names.add(name)
        values.add(key)
        keys.append(ApiKey(name, Secret(key)))
    return tuple(keys)


def _networks(environ: Mapping[str, str], name: str) -> tuple[Network, ...]:
    try:
        return parse_networks(environ.get(name, ""), name)
    except NetworksInvalid as exc:
        raise SettingsInvalid(str(exc)) from exc


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from an environment mapping (a dict in tests, os.environ in the CLI)."""
    allowed = {
        source: networks
        for source in PROVIDERS
        if (networks := _networks(environ, f"{source.upper()}_ALLOWED_IPS"))
    }
    max_body = environ.get("BOUNCELEDGER_MAX_BODY_BYTES", "").strip()
    if max_body and (not max_body.isdigit() or int(max_body) < 1):
        raise SettingsInvalid(
            f"BOUNCELEDGER_MAX_BODY_BYTES must be a positive integer, not {max_body!r}"
        )
    policy = environ.get("BOUNCELEDGER_POLICY", "").strip()
    db = as_target(environ.get("BOUNCELEDGER_DB", "").strip() or DEFAULT_DB)
    pool_min = int(_positive(environ, "BOUNCELEDGER_PG_POOL_MIN", DEFAULT_PG_POOL_MIN, whole=True))
    pool_max = int(_positive(environ, "BOUNCELEDGER_PG_POOL_MAX", DEFAULT_PG_POOL_MAX, whole=True))
    if pool_min > pool_max:
        raise SettingsInvalid(
            f"BOUNCELEDGER_PG_POOL_MIN ({pool_min}) is larger than BOUNCELEDGER_PG_POOL_MAX "
            f"({pool_max})"
        )
    data_dir = db.parent if isinstance(db, Path) else DEFAULT_DB.parent
    sendgrid_key = environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY", "").strip()
    resend_secret = environ.get("RESEND_WEBHOOK_SECRET", "").strip()
    topics = environ.get("SES_SNS_TOPIC_ARNS", "")
    cert_cache = environ.get("SES_SNS_CERT_CACHE", "").strip()
    fetch: Fetch | None = fetch_https if _flag(environ, "SES_SNS_FETCH", default=True) else None
    return Settings(
        db=db,
        pg_pool_min=pool_min,
        pg_pool_max=pool_max,
        policy=Path(policy) if policy else None,
        api_keys=parse_api_keys(environ.get("BOUNCELEDGER_API_KEYS", "")),
        smtp2go_secret=_secret(environ, "SMTP2GO_WEBHOOK_SECRET"),
        max_body_bytes=int(max_body) if max_body else DEFAULT_MAX_BODY,
        sendgrid_public_key=parse_ec_public_key(sendgrid_key) if sendgrid_key else None,
        mailgun_signing_key=_hmac_key(environ, "MAILGUN_WEBHOOK_SIGNING_KEY"),
        resend_secret=parse_svix_secret(resend_secret) if resend_secret else None,
        postmark_secret=_secret(environ, "POSTMARK_WEBHOOK_SECRET"),
        mailtura_secret=_hmac_key(environ, "MAILTURA_WEBHOOK_SECRET"),
        ses_topic_arns=frozenset(arn.strip() for arn in topics.split(",") if arn.strip()),
        ses_cert_cache=Path(cert_cache) if cert_cache else data_dir / "sns-certs",
        ses_fetch=fetch,
        ses_require_v2=_flag(environ, "SES_SNS_REQUIRE_V2", default=False),
        console_plain_http=_flag(environ, "BOUNCELEDGER_CONSOLE_PLAIN_HTTP", default=False),
        allowed_ips=allowed,
        trusted_proxies=_networks(environ, "BOUNCELEDGER_TRUSTED_PROXIES"),
        auth_failures=_count(environ, "BOUNCELEDGER_AUTH_FAILURES", DEFAULT_AUTH_FAILURES),
        quarantine_max=_count(environ, "BOUNCELEDGER_QUARANTINE_MAX", DEFAULT_QUARANTINE_MAX),
        read_timeout=_positive(environ, "BOUNCELEDGER_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        max_projection_lag=_positive(
            environ, "BOUNCELEDGER_MAX_PROJECTION_LAG", DEFAULT_MAX_PROJECTION_LAG
        ),
        max_connections=int(
            _positive(environ, "BOUNCELEDGER_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, whole=True)
        ),
        erasure_key=_erasure_key(environ),
        endpoint_key=_endpoint_key(environ),
        changes_keep=86400
        * _positive(
            environ, "BOUNCELEDGER_CHANGES_KEEP_DAYS", DEFAULT_CHANGES_KEEP_DAYS, unit="days"
        ),
    )


def _erasure_key(environ: Mapping[str, str]) -> ErasureKey | None:
    try:
        return load_key(environ)
    except ErasureRefused as exc:
        raise SettingsInvalid(str(exc)) from exc


def _endpoint_key(environ: Mapping[str, str]) -> EndpointKey | None:
    try:
        return load_endpoint_key(environ)
    except EndpointKeyMissing as exc:
        raise SettingsInvalid(str(exc)) from exc


def _positive(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    whole: bool = False,
    unit: str = "seconds",
) -> float:
    """A positive number (a whole one if `whole`) from `name`, or `default` when unset."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = 0
    if not number > 0 or number == float("inf"):
        kind = "a positive whole number" if whole else f"a positive number of {unit}"
        raise SettingsInvalid(f"{name} must be {kind}, not {value!r}")
    return number


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise SettingsInvalid(f"{name} must be a whole number (0 for none), not {value!r}")
    return int(value)
