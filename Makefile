# Every target sets up what it needs: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORTFOLIO ?= .riskstream/sample
STORE ?= .riskstream/store
DURATION ?= 15

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@test -f $(PORTFOLIO)/positions.parquet || $(BIN)/riskstream sample-portfolio --positions 10000 --out $(PORTFOLIO)
	$(BIN)/riskstream var --portfolio $(PORTFOLIO) --method hs --confidence 0.99 --horizon-days 1 --by desk
	@test -f $(STORE)/catalog.db || $(BIN)/riskstream store demo --store $(STORE) --portfolio $(PORTFOLIO)
	$(BIN)/riskstream query examples/reports/desk_book_risk.yaml --store $(STORE) --user trader_rates
	$(BIN)/riskstream query examples/reports/day_over_day.yaml --store $(STORE) --user head_trading
	$(BIN)/riskstream demo --headless --duration $(DURATION) --portfolio $(PORTFOLIO)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --timeout 900 -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/riskstream

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .riskstream .pytest_cache
