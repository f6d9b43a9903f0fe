"""Keep a local copy of bounceledger's suppression list in step with its change feed."""

import json
import pathlib
import urllib.request
from typing import Any


def sync(base: str, key: str, state: pathlib.Path) -> dict[str, Any]:
    """Apply every change since the stored cursor; returns the copy (address -> verdict)."""
    if not base.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP(S) address: {base}")
    kept: dict[str, Any] = (
        json.loads(state.read_text()) if state.exists() else {"cursor": "0", "list": {}}
    )
    while True:
        url = f"{base}/v1/changes?after={kept['cursor']}&limit=1000"
        asked = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
        with urllib.request.urlopen(asked, timeout=30) as answer:  # noqa: S310 (410: README)
            page = json.load(answer)
        for entry in page["data"]:
            if entry["type"] != "suppression.changed":
                continue  # a rebuild's markers
            erased = set(entry["erases"])  # an erasure: drop the copies it names
            kept["list"] = {a: v for a, v in kept["list"].items() if v["id"] not in erased}
            address = entry["email"] or entry["subject"]
            if entry["after"]["suppressed"]:
                kept["list"][address] = {"id": entry["id"], "reasons": entry["after"]["reasons"]}
            else:
                kept["list"].pop(address, None)
        kept["cursor"] = page["next"]
        state.write_text(json.dumps(kept))  # stored once processed: every change at least once
        if not page["has_more"]:
            return dict(kept["list"])
