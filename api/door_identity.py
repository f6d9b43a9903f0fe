"""Door identities: what names one delivery in the signed part of its body, so that the
same name with other bytes can be refused as a replay — durably, on every instance.

SNS signs the canonical fields of a message but not its bytes: the same signed
`MessageId` with extra whitespace or an altered unsigned field is new bytes. Mailgun
signs only timestamp + token, not `event-data`. Byte-identical redeliveries are the
ledger's duplicates (200, the first copy's seq); the same identity with other bytes is
refused with 403. The store keeps (source, identity) -> (seq, digest) beside the
receipts, written in the receipt's own transaction (ledger/writer.py, ledger/postgres.py).

(This module was `api/replays.py`; "replay" already names folding events,
`projections.fold.replay`, and re-appending a quarantined body.)
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

MAX_IDENTITY = 256  # characters: longer names are not ones SNS or Mailgun give


class _MailgunSignature(msgspec.Struct):
    token: object = None


class _Mailgun(msgspec.Struct):
    signature: _MailgunSignature | None = None


class _Sns(msgspec.Struct):
    MessageId: object = None


_read_mailgun = msgspec.json.Decoder(_Mailgun).decode
_read_sns = msgspec.json.Decoder(_Sns).decode


def _mailgun(body: bytes) -> object:
    document = _read_mailgun(body)
    return document.signature.token if document.signature is not None else None


def _ses(body: bytes) -> object:
    return _read_sns(body).MessageId


_IDENTITIES: dict[str, Callable[[bytes], object]] = {"mailgun": _mailgun, "ses": _ses}


def identity(provider: str, body: bytes) -> str | None:
    """The delivery's identity for `provider` (read after its door authenticated the
    body, so it is the signed one), or None when the provider has none or it is absent."""
    read = _IDENTITIES.get(provider)
    if read is None:
        return None
    try:
        value = read(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTITY:
        return None
    return value
