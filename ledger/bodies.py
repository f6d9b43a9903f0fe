"""How a receipt's body is kept: pure functions, no I/O.

The chain commits to each body's digest, not its bytes (ledger/chain.py), so a body may
be stored compressed — and, once an erasure or retention record names it, removed. A
stored body is `(codec, dictionary, data)`:

- `PLAIN`: `data` is the body itself — what a body that does not compress is kept as, so
  nothing is ever stored larger than the raw bytes;
- `ZSTD`: a zstd frame of the body, made with the dictionary `dictionary` names (None:
  without one). The frame keeps the content size and leaves the checksum out: the
  receipt's digest is the check.

Dictionaries are trained per source from that source's own bodies (webhook bodies repeat
the same keys, hosts and diagnostics), stored in the database, and named by their hash:
`dictionary_id(data)` is the first 8 bytes of the data's SHA-256 as a signed 64-bit
integer, so a name means the same bytes in every database, a dictionary is never changed
once used, and a cache keyed by it never goes stale.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import NamedTuple

import zstandard

from ledger.errors import BodyMissing

PLAIN = 0
ZSTD = 1
CODECS = {PLAIN: "plain", ZSTD: "zstd"}

# zstd level 9. Measured on 3,000 of the bench's SMTP2GO bodies with a dictionary trained
# on 2,000 others: level 3 stores them in 0.168x their size at 3.2 us a body, level 9 in
# 0.154x at 10.6 us, level 12 in 0.153x at 11.7 us (without a dictionary: 0.59x).
LEVEL = 9
# A dictionary's size; zstd's guidance is about 100x smaller than the samples.
DICTIONARY_SIZE = 64 * 1024
# Training needs enough samples to find what repeats (zstd refuses too few).
MIN_SAMPLES = 200


class Stored(NamedTuple):
    """A body as it is stored."""

    codec: int
    dictionary: int | None
    data: bytes


def dictionary_id(data: bytes) -> int:
    """A dictionary's name: the first 8 bytes of its SHA-256, a signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big", signed=True)


def dictionary_name(ident: int) -> str:
    """How an operator reads a dictionary's name (in errors and listings)."""
    return f"zdict:{ident & 0xFFFFFFFFFFFFFFFF:016x}"


class Dictionary:
    """A trained dictionary, with the zstd objects that use it (made once)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.id = dictionary_id(data)
        self._dict = zstandard.ZstdCompressionDict(data)
        self._dict.precompute_compress(level=LEVEL)
        self.compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=self._dict, write_checksum=False, write_dict_id=False
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=self._dict)


_PLAIN_COMPRESSOR = zstandard.ZstdCompressor(level=LEVEL, write_checksum=False)
_PLAIN_DECOMPRESSOR = zstandard.ZstdDecompressor()


def pack(body: bytes, dictionary: Dictionary | None = None) -> Stored:
    """Compress a body (with `dictionary` when given); plain when that is not smaller."""
    compressor = dictionary.compressor if dictionary is not None else _PLAIN_COMPRESSOR
    frame = compressor.compress(body)
    if len(frame) >= len(body):
        return Stored(PLAIN, None, body)
    return Stored(ZSTD, dictionary.id if dictionary is not None else None, frame)


def unpack(stored: Stored, dictionaries: dict[int, Dictionary]) -> bytes:
    """A stored body's bytes. BodyMissing names a dictionary not in `dictionaries`, an
    unknown codec, or bytes that do not decompress."""
    codec, ident, data = stored
    if codec == PLAIN:
        return data
    if codec != ZSTD:
        raise BodyMissing(f"unknown body codec {codec}")
    if ident is None:
        decompressor = _PLAIN_DECOMPRESSOR
    else:
        dictionary = dictionaries.get(ident)
        if dictionary is None:
            raise BodyMissing(
                f"the body needs dictionary {dictionary_name(ident)}, which is not in the "
                "database (body_dictionaries)"
            )
        decompressor = dictionary.decompressor
    try:
        return decompressor.decompress(data)
    except zstandard.ZstdError as exc:
        raise BodyMissing(f"the stored body does not decompress: {exc}") from exc


# What looks like an email address in a body, in the forms bodies carry it: plain,
# percent-encoded (`%40`) or JSON-escaped (`\u0040`).
_ADDRESS = re.compile(rb"[^\s\"'<>,;:()\[\]{}=&]+(?:@|%40|\\u0040)[A-Za-z0-9.-]+", re.IGNORECASE)


def scrub(sample: bytes) -> bytes:
    """A body with every address in it replaced by a placeholder of the same length: what a
    dictionary is trained on, so that no dictionary holds anyone's address (a dictionary
    is kept as long as the bodies compressed with it; an erasure cannot edit it)."""
    return _ADDRESS.sub(lambda match: b"x" * len(match[0]), sample)


def train(samples: Sequence[bytes], size: int = DICTIONARY_SIZE) -> bytes | None:
    """A dictionary trained on `samples` (one source's bodies, their addresses scrubbed),
    or None when there are too few of them, or zstd finds nothing worth a dictionary in
    them."""
    usable: list[bytes | bytearray | memoryview] = [scrub(sample) for sample in samples if sample]
    if len(usable) < MIN_SAMPLES:
        return None
    size = min(size, max(1024, sum(map(len, usable)) // 10))
    try:
        trained = zstandard.train_dictionary(size, usable, level=LEVEL)
    except zstandard.ZstdError:
        return None
    return trained.as_bytes()
