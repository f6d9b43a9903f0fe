"""Console sessions: an API key exchanged for a signed cookie, and the forms' tokens.

The session cookie holds the key's name, an expiry and a random nonce, signed with
HMAC-SHA256 keyed by the API key itself — never the key. So every instance configured with
the same keys accepts it (no session store, no extra secret), and removing a key from
BOUNCELEDGER_API_KEYS ends its sessions at once; signing out ends one session on every
instance (api/console/signouts.py).

Every console form carries a token bound to the session it was shown to: an HMAC of the
session's nonce under the session's key. A token minted for another session, before
sign-in or by anyone without the key is refused (api/console/forms.py). The sign-in form
itself carries a token bound to a pre-session cookie of its own (`login`), whose nonce is
discarded at sign-in.

Cookies are `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/` and named with the
`__Host-` prefix (no other origin, not even a sibling subdomain or another port of the
host over plain HTTP, can set or overwrite them) — unless the request arrived over plain
HTTP and the deployment opted out for local use (`BOUNCELEDGER_CONSOLE_PLAIN_HTTP=on`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

import msgspec

from api.settings import ApiKey

COOKIE = "bl_console"
LOGIN_COOKIE = "bl_login"
HOST_PREFIX = "__Host-"
LIFETIME = 8 * 3600  # seconds a session lasts
LOGIN_LIFETIME = 3600  # seconds a sign-in form stays usable
_CONTEXT = b"bounceledger console session\0"
_CSRF = b"bounceledger console form\0"
_LOGIN = b"bounceledger console sign-in form\0"


class Session(msgspec.Struct, frozen=True):
    """A verified session: whose key, until when, and its nonce (what its forms' tokens
    and its sign-out are bound to)."""

    name: str
    expires: int
    nonce: str
    key: ApiKey


def cookie_name(base: str, secure: bool) -> str:
    """A cookie's name: `__Host-` prefixed when it is Secure (the browser then refuses it
    from any other origin, and refuses a Domain or a Path other than `/`)."""
    return HOST_PREFIX + base if secure else base


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: ApiKey, payload: bytes) -> bytes:
    return key.secret.sign(_CONTEXT + payload)


def issue(key: ApiKey, now: float | None = None) -> str:
    """A session cookie value for `key`, valid for LIFETIME seconds, with a fresh nonce."""
    expires = int((now if now is not None else time.time()) + LIFETIME)
    payload = f"{key.name}|{expires}|{secrets.token_hex(16)}".encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def verify(
    keys: tuple[ApiKey, ...], cookie: str | None, now: float | None = None
) -> Session | None:
    """The session a valid, unexpired cookie holds; else None."""
    if not cookie or cookie.count(".") != 1:
        return None
    try:
        payload, mac = (_unpad(part) for part in cookie.split("."))
        name, expires, nonce = payload.decode().split("|")
        deadline = int(expires)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if deadline < (now if now is not None else time.time()):
        return None
    found = None
    for key in keys:  # every key is tried, so timing does not tell which one matched
        if key.name == name and hmac.compare_digest(_mac(key, payload), mac):
            found = Session(name, deadline, nonce, key)
    return found


def form_token(session: Session) -> str:
    """The token every form shown to `session` carries (and no other session's does)."""
    return _b64(session.key.secret.sign(_CSRF + session.nonce.encode()))


def _login_secret(keys: tuple[ApiKey, ...]) -> bytes:
    """The sign-in form's secret: the same on every instance with the same keys."""
    digest = hashlib.sha256(_LOGIN)
    for key in sorted(keys, key=lambda k: k.name):
        digest.update(key.secret.sign(_LOGIN))
    return digest.digest()


def login_nonce() -> str:
    """A fresh nonce for a sign-in form's cookie."""
    return secrets.token_hex(16)


def login_token(keys: tuple[ApiKey, ...], nonce: str) -> str:
    """The token of a sign-in form shown with the pre-session cookie holding `nonce`."""
    mac = hmac.new(_login_secret(keys), nonce.encode(), hashlib.sha256).digest()
    return _b64(mac)


def tokens_match(given: object, expected: str) -> bool:
    """Whether a form's token is the expected one (constant time)."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
