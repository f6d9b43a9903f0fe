"""Baseline `scan`: read every receipt body from SQLite and decode it — the floor under any
rebuild. Bodies read back as the store reads them (body storage: zstd, with the source's
dictionary), JSON bodies with a prebuilt msgspec decoder, form bodies with parse_qsl.

`python -m bench.scan DB` prints {"receipts": n, "events": n, "seconds": s} as JSON;
`seconds` is the loop alone (no interpreter start), `events` counts decoded events.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from urllib.parse import parse_qsl

import msgspec

from ledger.bodies import Dictionary, Stored, unpack


def scan(path: str) -> dict[str, float]:
    decode = msgspec.json.Decoder().decode
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    receipts = events = 0
    started = time.perf_counter()
    known = {
        int(ident): Dictionary(bytes(data))
        for ident, data in conn.execute("SELECT id, data FROM body_dictionaries")
    }
    for codec, ident, data in conn.execute(
        "SELECT codec, dictionary, data FROM bodies ORDER BY seq"
    ):
        body = unpack(Stored(codec, ident, data), known)
        if body[:1] in (b"{", b"["):
            document = decode(body)
            events += len(document) if isinstance(document, list) else 1
        else:
            parse_qsl(body.decode(), keep_blank_values=True)
            events += 1
        receipts += 1
    seconds = time.perf_counter() - started
    conn.close()
    return {"receipts": receipts, "events": events, "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(scan(sys.argv[1])))
