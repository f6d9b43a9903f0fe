"""kill -9 the real server under concurrent load, restart it, and lose nothing.

The rounds are bench/crash.py's (the on-demand script repeats them 20 times with random
kill times); here two short ones: a kill right after the first acknowledgements, and
one later under load. Each round checks, after the restart: every acknowledged body is
in the ledger at the seq it was given (sha256 as sent vs. as stored), no receipt twice,
`bounceledger verify` passes, /readyz is 200, and the projection the crashed server left
equals a full rebuild (table dump, `suppressions --json`, `status --json` samples, the
fact index vs. facts derived afresh).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.crashing import crash_round


@pytest.mark.parametrize(
    ("seed", "min_acks", "max_delay"),
    [(20260504, 20, 0.0), (7, 60, 0.8)],
    ids=["early", "later"],
)
def test_nothing_acknowledged_is_lost_after_kill_9(
    tmp_path: Path, seed: int, min_acks: int, max_delay: float
) -> None:
    result = crash_round(
        tmp_path, seed=seed, clients=12, min_acks=min_acks, max_delay=max_delay, after=5
    )
    assert result.problems == []
    assert result.acknowledged >= min_acks + 5
    assert result.missing == 0
    assert result.misplaced == 0
    assert result.duplicated == 0
    assert result.stored >= result.acknowledged
    assert result.chain_intact
    assert result.projection_equal
    assert result.ok
