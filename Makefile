# casetrack: `make run` runs the demo on embedded defaults, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint schema bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip \
		> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
		>> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -c "import domain, consumers, projections, adapters, simulation, eventsourcing, psycopg"
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@$(BIN)/python scripts/demo.py

test: $(STAMP)
	@$(BIN)/ruff check --quiet .
	@$(BIN)/mypy --no-error-summary
	@$(BIN)/python -m pytest -x --no-header -n 2 --dist loadfile

schema: $(STAMP)
	@$(BIN)/python scripts/export_schema.py

bench: $(STAMP)
	@$(BIN)/python scripts/bench_ingest.py
	@$(BIN)/python scripts/bench_projection.py
	@$(BIN)/python scripts/bench_verify.py
	@$(BIN)/python scripts/bench_proof.py
	@$(BIN)/python scripts/bench_kafka_ingest.py
	@$(BIN)/python scripts/bench_api.py
	@$(BIN)/python scripts/bench_web.py
	@$(BIN)/python scripts/bench_freshness.py

clean:
	-@$(BIN)/casetrack db stop 2>/dev/null
	rm -rf $(VENV) .casetrack
