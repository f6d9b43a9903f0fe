"""The README documents every command, and every command explains itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_exists_and_is_not_a_stub() -> None:
    assert README.is_file()
    assert len(README.read_text(encoding="utf-8").splitlines()) > 20


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_in_the_readme(name: str) -> None:
    text = README.read_text(encoding="utf-8")
    assert re.search(rf"bounceledger {re.escape(name)}\b", text), f"`bounceledger {name}` missing"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(name: str) -> None:
    command = cli.commands[name]
    assert (command.help or "").strip(), f"{name} has no help"
    assert (command.get_short_help_str() or "").strip()
