# The two commands a newcomer runs are `make demo` and `make test`; both build .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): one per core by default; TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= auto

.PHONY: demo test lint bench clean docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

$(VENV): $(STAMP)

demo: $(STAMP)
	$(BIN)/carryover demo

# The browser tier runs in a pytest process of its own: Playwright's sync API keeps an
# asyncio loop running in the main thread of the process that uses it, and every later
# asyncio.run() there (the webhook delivery tests) would fail.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --ignore=tests/browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests/browser

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/rating.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/nchf_load.py

docs: $(STAMP)
	$(BIN)/python -m carryover.docs_cli > docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
