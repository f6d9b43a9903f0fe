"""The erasure key: what an erased address is known by afterwards, and nothing else.

An erasure removes an address from the ledger, yet the person must never be mailed
again. What is kept is a keyed hash of the normalized address — its *subject*,
`hmac-sha256:<key id>:<HMAC-SHA256(key, address) in hex>` — so a lookup of the address
finds the suppression, while the ledger alone (a stolen copy, a backup) cannot confirm a
guessed address: an unkeyed hash of an address falls to a dictionary attack (ENISA,
"Pseudonymisation techniques", 2019). The key is never stored in the database; the key
id (a hash of the key) tells which key made a subject.

The key comes from `BOUNCELEDGER_ERASURE_KEY` (at least 32 characters) or the file
`BOUNCELEDGER_ERASURE_KEY_FILE` names (its bytes, at least 32). Lose it and erased
addresses can no longer be matched: keep it with the backups' keys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from projections.errors import ErasureRefused
from projections.keyfiles import configured

PREFIX = "hmac-sha256:"
MIN_KEY = 32
ENV = "BOUNCELEDGER_ERASURE_KEY"
ENV_FILE = "BOUNCELEDGER_ERASURE_KEY_FILE"


class ErasureKeyMissing(ErasureRefused):
    """No usable erasure key is configured (the message says how to set one)."""


def is_subject(text: str) -> bool:
    """Whether `text` is an erased address's keyed hash (not an address)."""
    return text.startswith(PREFIX)


class ErasureKey:
    """A secret that turns a normalized address into its subject (never shown)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY:
            raise ErasureKeyMissing(
                f"the erasure key is {len(secret)} bytes; it must be at least {MIN_KEY}"
            )
        self._secret = secret
        self.id = hashlib.sha256(b"bounceledger erasure key\x00" + secret).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"ErasureKey(id={self.id!r})"

    def subject(self, email: str) -> str:
        """The keyed hash of a normalized address."""
        mac = hmac.new(self._secret, email.encode(), hashlib.sha256).hexdigest()
        return f"{PREFIX}{self.id}:{mac}"


def load_key(environ: Mapping[str, str] | None = None) -> ErasureKey | None:
    """The erasure key the environment configures, or None; ErasureKeyMissing when the
    configured one is unusable (too short, the file unreadable)."""
    secret = configured(environ, ENV, ENV_FILE, ErasureKeyMissing)
    return ErasureKey(secret) if secret is not None else None


NO_KEY = (
    f"erasure needs a key: set {ENV} (at least {MIN_KEY} characters, e.g. from "
    f"`openssl rand -hex 32`) or {ENV_FILE}; every instance that answers lookups needs "
    "the same key"
)


def require_key(environ: Mapping[str, str] | None = None) -> ErasureKey:
    """The configured erasure key; ErasureKeyMissing, saying how to set one, when none is."""
    key = load_key(environ)
    if key is None:
        raise ErasureKeyMissing(NO_KEY)
    return key
