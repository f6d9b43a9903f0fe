"""Policy mistakes that would silently do nothing are refused; odd bodies decode or are
refused cleanly, never with an unexpected exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections import PolicyInvalid, read_policy
from projections.errors import DecodeFailed
from projections.providers import PROVIDERS, smtp2go


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_a_misspelt_event_in_a_mapping_override_is_refused_by_name(tmp_path: Path) -> None:
    path = _policy(tmp_path, '[providers.smtp2go]\nunsubscirbe = "unsubscribe"\n')
    with pytest.raises(PolicyInvalid, match=r"\[providers.smtp2go\] has no event 'unsubscirbe'"):
        read_policy(path)


def test_an_override_may_use_a_synonym_of_a_known_event(tmp_path: Path) -> None:
    path = _policy(tmp_path, '[providers.smtp2go]\nunsubscribed = "unsubscribe"\n')
    assert read_policy(path).providers == {"smtp2go": {"unsubscribed": "unsubscribe"}}


@pytest.mark.parametrize("window", ["0d", "0s", "0.0h"])
def test_a_zero_soft_bounce_window_is_refused(tmp_path: Path, window: str) -> None:
    with pytest.raises(PolicyInvalid, match="longer than zero"):
        read_policy(_policy(tmp_path, f'soft_bounce_window = "{window}"\n'))


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_deeply_nested_json_is_undecodable_not_a_crash(name: str) -> None:
    with pytest.raises(DecodeFailed):
        PROVIDERS[name].decode(b"[" * 100_000 + b"]" * 100_000, "application/json", {})


def test_a_byte_order_mark_followed_by_blanks_still_decodes() -> None:
    (raw,) = smtp2go.decode(b'\xef\xbb\xbf \n {"event": "bounce", "rcpt": "a@example.org"}')
    assert raw["event"] == "bounce"
