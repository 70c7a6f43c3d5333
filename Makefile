# Every target sets up what it needs: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORTFOLIO ?= .riskstream/sample
STORE ?= .riskstream/store
PORT ?= 8000
# seconds before `make run` stops (empty: until Ctrl-C)
DURATION ?=

.PHONY: run test lint bench install clean web

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The dashboard's browser libraries (Perspective viewer, Chart.js) from npm, copied into the static folder.
VENDOR := src/riskstream/web/static/vendor
WEB_STAMP := $(VENDOR)/.installed

$(WEB_STAMP): web/package.json web/package-lock.json web/vendor.mjs
	npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
	node web/vendor.mjs
	touch $(WEB_STAMP)

web: $(WEB_STAMP)

run: $(STAMP) web
	@test -f $(PORTFOLIO)/positions.parquet || $(BIN)/riskstream sample-portfolio --positions 10000 --out $(PORTFOLIO)
	@test -f $(STORE)/catalog.db || $(BIN)/riskstream store demo --store $(STORE) --portfolio $(PORTFOLIO)
	$(BIN)/riskstream demo --portfolio $(PORTFOLIO) --store $(STORE) --port $(PORT) $(if $(DURATION),--duration $(DURATION))

test: $(STAMP) web
	$(BIN)/python -m pytest -n 2 --timeout 900 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/riskstream

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .riskstream .pytest_cache
