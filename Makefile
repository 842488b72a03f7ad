# The two commands: `make run` and `make test`. Everything they need is set up here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TALLY := $(BIN)/tally
# The stamp changes whenever pyproject.toml changes, so `setup` is a no-op when nothing changed.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: setup run test bench lint pg-binaries bytecode clean

CCUSAGE := .data/tools/node_modules/.bin/ccusage

setup: $(STAMP) bytecode pg-binaries $(CCUSAGE)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "tally needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# tally's own modules, compiled: pip compiles installed packages but not an editable install,
# and where PYTHONDONTWRITEBYTECODE is set every command compiled them again at each start
# (75 ms of a 0.8 s no-change `tally ingest all`). Only stale files are compiled again.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q api assets ingestion pipelines schemas >/dev/null

# PostgreSQL server binaries for the embedded store and the throwaway test server.
# As root, install Debian's postgresql when no server binaries exist; otherwise tally falls
# back to the binaries bundled with the pgserver wheel (see ingestion/postgres/binaries.py).
pg-binaries:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL server binaries (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "no system PostgreSQL binaries; using the pgserver wheel's"; \
	  fi; \
	fi

# ccusage 20.0.24 (the pinned reference tool, see reference/agent-logs.md) for the
# cross-check tests and the benchmarks. Needs npm; without it those tests are skipped.
$(CCUSAGE):
	@if command -v npm >/dev/null; then \
	  mkdir -p .data/tools && cd .data/tools && \
	  { [ -f package.json ] || echo '{"private":true}' > package.json; } && \
	  npm install --silent --no-audit --no-fund ccusage@20.0.24 >/dev/null 2>&1 || \
	  echo "could not install ccusage; its cross-check tests will be skipped"; \
	else echo "npm not found; ccusage cross-check tests will be skipped"; fi

run: setup
	$(TALLY) run

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/ingest.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	-$(TALLY) db stop
	rm -rf .data
