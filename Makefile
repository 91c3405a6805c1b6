# `make run`: the quickstart on an embedded broker.  `make test`: the whole suite; it writes its
# figures to the ignored .notifyd/results/.  `make bench`: the benchmarks, and the reliability suite
# again to refresh the committed bench/results/reliability.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean postgres-binaries

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/notifyd quickstart

test: $(VENV)/.installed postgres-binaries
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The PostgreSQL tests start a throwaway server (tests/kit/postgres.py): install Debian's
# postgresql when initdb is missing and we may (root, apt), so they run instead of skipping.
postgres-binaries:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	else echo "initdb not found and not root: the PostgreSQL tests will skip" >&2; fi

# The bench extra (matplotlib) only here, so `make test` never waits for it.
bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,test,bench]'
	$(BIN)/python bench/run.py
	NOTIFYD_RESULTS_DIR=$(CURDIR)/bench/results $(BIN)/python -m pytest tests/reliability

clean:
	rm -rf $(VENV) build dist *.egg-info .notifyd/results
