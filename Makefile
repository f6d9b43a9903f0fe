# Two commands set everything up on a machine with only Python 3.11 and make:
#   make run    creates .venv if needed, installs, serves on 127.0.0.1:8000 (SQLite at ./data/ledger.db)
#   make test   creates .venv if needed, installs, runs the whole suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint fmt bench mutate mutate-check clean pg

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bounceledger serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Mutation testing of the core (pyproject [tool.mutmut]; .ci/mutation/): every module, or
# FILES="projections/fold.py ledger/chain.py"; prints each module's score and survivors.
mutate: $(STAMP)
	$(BIN)/python .ci/mutation/mutation.py run $(FILES)

# What CI runs: the core modules changed since .ci/mutation/scores.json, and a sample of
# the recorded kills, must not score below the record.
mutate-check: $(STAMP)
	$(BIN)/python .ci/mutation/mutation.py check

# A throwaway PostgreSQL for the tests, for machines without one: a cluster from the
# installed binaries (Debian's live in /usr/lib/postgresql/*/bin) under /tmp, on port
# 5433 (PG_PORT=… to change), trust authentication. initdb refuses root, so as root it
# runs as the `postgres` user. Prints the URL to export and the command that stops it.
pg:
	@set -e; port=$${PG_PORT:-5433}; dir=/tmp/bounceledger-pg-$$port; \
	bin=$$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); bin=$${bin:+$$bin/}; \
	as=; mkdir -p $$dir; \
	if [ "$$(id -u)" = 0 ]; then as="runuser -u postgres --"; chown postgres: $$dir; fi; \
	cd /tmp; \
	if [ ! -f $$dir/data/PG_VERSION ]; then \
	  $$as $${bin}initdb -D $$dir/data -U postgres --auth=trust > $$dir/initdb.log 2>&1 \
	    || { cat $$dir/initdb.log; exit 1; }; \
	fi; \
	if ! $$as $${bin}pg_ctl -D $$dir/data status > /dev/null 2>&1; then \
	  $$as $${bin}pg_ctl -D $$dir/data -l $$dir/server.log -w -t 30 \
	    -o "-p $$port -k $$dir -c listen_addresses=127.0.0.1" start > /dev/null \
	    || { cat $$dir/server.log; exit 1; }; \
	fi; \
	echo "PostgreSQL for the tests is up on 127.0.0.1:$$port (cluster in $$dir/data). Run:"; \
	echo "  export BOUNCELEDGER_TEST_PG=postgresql://postgres@127.0.0.1:$$port/postgres"; \
	echo "Stop it with: $$as $${bin}pg_ctl -D $$dir/data stop"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
