"""Console sessions: an API key exchanged for a signed cookie.

The cookie holds the key's name, an expiry and a random nonce, signed with HMAC-SHA256
keyed by the API key itself — never the key. So every instance configured with the same
keys accepts it (no session store, no extra secret), and removing a key from
BOUNCELEDGER_API_KEYS ends its sessions at once. The same keys, hashed together, are the
secret of the console's CSRF tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from api.settings import ApiKey

COOKIE = "bl_console"
LIFETIME = 8 * 3600  # seconds a session lasts
_CONTEXT = b"bounceledger console session\0"


def _mac(key: ApiKey, payload: bytes) -> bytes:
    return key.secret.sign(_CONTEXT + payload)


def issue(key: ApiKey, now: float | None = None) -> str:
    """A session cookie value for `key`, valid for LIFETIME seconds."""
    expires = int((now if now is not None else time.time()) + LIFETIME)
    payload = f"{key.name}|{expires}|{secrets.token_hex(8)}".encode()
    mac = _mac(key, payload)
    return ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in (payload, mac))


def _unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(keys: tuple[ApiKey, ...], cookie: str | None, now: float | None = None) -> str | None:
    """The name of the key a valid, unexpired session cookie was issued for; else None."""
    if not cookie or cookie.count(".") != 1:
        return None
    try:
        payload, mac = (_unpad(part) for part in cookie.split("."))
        name, expires, _ = payload.decode().split("|")
        deadline = int(expires)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if deadline < (now if now is not None else time.time()):
        return None
    for key in keys:  # every key is tried, so timing does not tell which one matched
        if key.name == name and hmac.compare_digest(_mac(key, payload), mac):
            return name
    return None


def csrf_secret(keys: tuple[ApiKey, ...]) -> str:
    """The CSRF token secret: the same on every instance with the same keys."""
    digest = hashlib.sha256(b"bounceledger console csrf\0")
    for key in sorted(keys, key=lambda k: k.name):
        digest.update(key.secret.sign(b"csrf"))
    return digest.hexdigest()
