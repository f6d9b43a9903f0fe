"""A secret key as the environment configures it: in a variable, or in a file another
variable names (a key file keeps the key out of the process environment and its logs).
The erasure key (projections/erasure_keys.py) and the endpoint key (api/push/signing.py)
are both read so."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def configured(
    environ: Mapping[str, str] | None, name: str, file_name: str, unreadable: type[Exception]
) -> bytes | None:
    """The bytes of the variable `name`, else of the file `file_name` names (stripped of
    surrounding blanks); None when neither is set. `unreadable` (naming the variable and
    the file, and why) when the file cannot be read."""
    env = os.environ if environ is None else environ
    if env.get(name):
        return env[name].encode()
    if env.get(file_name):
        path = Path(env[file_name])
        try:
            return path.read_bytes().strip()
        except OSError as exc:
            raise unreadable(f"{file_name}={path}: {exc.strerror or exc}") from exc
    return None
