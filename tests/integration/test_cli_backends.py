"""Every command gives the same output on both backends (issue 9, item 1).

The same receipts are appended to a SQLite file and to a PostgreSQL schema; then each
read command runs against both and the outputs must be identical — queries, as-of,
explain, the audit views, raw bytes, verify (the same chain), a rebuild's dry run, the
export. Writes (operator actions, a policy change, import, migrate) run on both and are
checked by what they leave.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api.cli import cli
from tests.conftest import fixture_bytes
from tests.test_cli import populate, soft_bounce

pytestmark = pytest.mark.postgres

RECEIPTS = [
    ("application/x-www-form-urlencoded", fixture_bytes("smtp2go", "hard_bounce.form")),
    ("application/json", fixture_bytes("smtp2go", "spam.json")),
    *(("application/json", soft_bounce("soft@example.org", n)) for n in range(3)),
    ("application/json", fixture_bytes("smtp2go", "delivered.json")),
]

# Read commands whose output must be byte-identical on both backends.
READS = [
    ("status", "nobody@example.org", "--json"),
    ("status", "soft@example.org", "--as-of", "2026-05-05T00:00:00Z", "--json"),
    ("suppressions", "--json"),
    ("suppressions",),
    ("explain", "soft@example.org", "--json"),
    ("audit", "recipient", "soft@example.org", "--json"),
    ("audit", "receipt", "2", "--json"),
    ("audit", "receipts", "--source", "smtp2go", "--json"),
    ("audit", "policies", "--json"),
    ("verify", "--json"),
    ("quarantine", "--json"),
    ("export",),
]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env={"USER": "tester"})


@pytest.fixture
def both(tmp_path: Path, pg_url: str) -> dict[str, Path | str]:
    ledgers: dict[str, Path | str] = {"sqlite": tmp_path / "cli.db", "postgresql": pg_url}
    for target in ledgers.values():
        populate(target, RECEIPTS)
    return ledgers


def test_every_read_command_answers_the_same_on_both(both: dict[str, Path | str]) -> None:
    for args in READS:
        outputs = {}
        for name, db in both.items():
            result = invoke(*args, "--db", db)
            assert result.exit_code == 0, (name, args, result.output)
            outputs[name] = result.stdout_bytes
        assert outputs["sqlite"] == outputs["postgresql"], args
    raw = {name: invoke("audit", "receipt", "1", "--raw", "--db", db) for name, db in both.items()}
    assert raw["sqlite"].stdout_bytes == raw["postgresql"].stdout_bytes == RECEIPTS[0][1]


def test_writes_leave_the_same_state_on_both(both: dict[str, Path | str], tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text("soft_bounce_threshold = 5\n")
    for db in both.values():
        assert invoke("suppress", "carol@example.org", "--note", "hold", "--db", db).exit_code == 0
        assert invoke("release", "nobody@example.org", "--note", "fixed", "--db", db).exit_code == 0
        rebuilt = invoke("rebuild", "--policy", strict, "--note", "five", "--db", db, "--json")
        assert rebuilt.exit_code == 0, rebuilt.output
    listings = {
        name: [
            (item["email"], item["reason"])
            for item in json.loads(invoke("suppressions", "--db", db, "--json").stdout)
        ]
        for name, db in both.items()
    }
    assert (
        listings["sqlite"]
        == listings["postgresql"]
        == [
            ("annoyed@example.com", "complaint"),
            ("carol@example.org", "manual"),
        ]
    )
    for db in both.values():
        history = json.loads(invoke("audit", "policies", "--db", db, "--json").stdout)
        [change] = history["changes"]
        assert change["actor"].startswith("tester@")
        assert (change["note"], change["active"]) == ("five", True)


def test_export_import_and_migrate_between_backends(
    both: dict[str, Path | str], tmp_path: Path, pg_fresh_url: Callable[[], str]
) -> None:
    exported = tmp_path / "ledger.jsonl"
    assert invoke("export", "--db", both["sqlite"], "--out", exported).exit_code == 0
    target = pg_fresh_url()
    imported = invoke("import", exported, "--db", target)
    assert imported.exit_code == 0, imported.output
    migrated = tmp_path / "back.db"
    moved = invoke("migrate", "--from", both["postgresql"], "--to", migrated)
    assert moved.exit_code == 0, moved.output
    heads = {
        str(db): json.loads(invoke("verify", "--db", db, "--json").stdout)
        for db in (both["sqlite"], target, migrated)
    }
    assert len({json.dumps(head, sort_keys=True) for head in heads.values()}) == 1, (
        heads,
        imported.output,
        moved.output,
    )
    assert next(iter(heads.values()))["intact"] is True
