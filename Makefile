# `make run`: the quickstart on an embedded broker.  `make test`: the whole suite; it writes its
# figures to the ignored .notifyd/results/.  `make bench`: the benchmarks, and the reliability suite
# again to refresh the committed bench/results/reliability.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/notifyd quickstart

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# The bench extra (matplotlib) only here, so `make test` never waits for it.
bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,test,bench]'
	$(BIN)/python bench/run.py
	NOTIFYD_RESULTS_DIR=$(CURDIR)/bench/results $(BIN)/python -m pytest tests/reliability

clean:
	rm -rf $(VENV) build dist *.egg-info .notifyd/results
