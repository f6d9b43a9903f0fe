"""Keys from the environment or a key file: the erasure key and the endpoint key are read
the same way (projections/keyfiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.push.signing import EndpointKeyMissing
from api.push.signing import load_key as endpoint_key
from projections.erasure_keys import ErasureKeyMissing
from projections.erasure_keys import load_key as erasure_key
from projections.keyfiles import configured


def test_the_variable_comes_first_then_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"  from-the-file\n")
    both = {"K": "from-the-variable", "K_FILE": str(key_file)}
    assert configured(both, "K", "K_FILE", ValueError) == b"from-the-variable"
    assert configured({"K_FILE": str(key_file)}, "K", "K_FILE", ValueError) == b"from-the-file"
    assert configured({"K": ""}, "K", "K_FILE", ValueError) is None
    assert configured({}, "K", "K_FILE", ValueError) is None


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(KeyError, match=rf"K_FILE={missing}: No such file"):
        configured({"K_FILE": str(missing)}, "K", "K_FILE", KeyError)


def test_both_keys_read_a_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k" * 40 + "\n")
    erasing = erasure_key({"BOUNCELEDGER_ERASURE_KEY_FILE": str(key_file)})
    assert erasing is not None
    assert erasing.id == erasure_key({"BOUNCELEDGER_ERASURE_KEY": "k" * 40}).id  # type: ignore[union-attr]
    pushing = endpoint_key({"BOUNCELEDGER_ENDPOINT_KEY_FILE": str(key_file)})
    assert pushing is not None
    assert pushing.secret("ep_1", 1) == endpoint_key(  # type: ignore[union-attr]
        {"BOUNCELEDGER_ENDPOINT_KEY": "k" * 40}
    ).secret("ep_1", 1)
    with pytest.raises(ErasureKeyMissing, match="BOUNCELEDGER_ERASURE_KEY_FILE="):
        erasure_key({"BOUNCELEDGER_ERASURE_KEY_FILE": str(tmp_path / "gone")})
    with pytest.raises(EndpointKeyMissing, match="BOUNCELEDGER_ENDPOINT_KEY_FILE="):
        endpoint_key({"BOUNCELEDGER_ENDPOINT_KEY_FILE": str(tmp_path / "gone")})
