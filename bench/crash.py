"""`python -m bench.crash [ROUNDS]`: kill -9 under load, round after round — nothing
acknowledged may be lost. The rounds are tests/reliability/crashing.py's, which the
suite runs too (tests/reliability/test_crash.py); this runs them on demand, many times."""

from __future__ import annotations

from tests.reliability.crashing import main

if __name__ == "__main__":
    raise SystemExit(main())
