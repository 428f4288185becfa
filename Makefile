# The documented commands. Every install step lives here and in pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/.dagster
export LAKE_ROOT ?= $(CURDIR)/lake

.PHONY: install run test dev dashboard browser lint format bench clean

install: $(STAMP)

# Re-installs when pyproject.toml changes; a fresh machine needs only Python 3.11 and Java 17.
$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required for Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make run: the main job, end to end on the embedded defaults (last 2 complete UTC days)
run: $(STAMP)
	$(BIN)/crypto-analytics run $(ARGS)

## make test: lint + the whole test suite (the dashboard's browser test needs chromium)
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make dev: Dagster UI + daemon on http://127.0.0.1:3000 with the embedded services
dev: $(STAMP)
	$(BIN)/crypto-analytics dev

## make dashboard: the Streamlit dashboard on http://127.0.0.1:8501 (starts the embedded warehouse)
dashboard: $(STAMP)
	$(BIN)/crypto-analytics dashboard

# Debian's chromium for the dashboard's real-browser test (Playwright drives it; it never
# downloads a browser of its own).
browser:
	@command -v chromium >/dev/null || { \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .dagster .pytest_cache .ruff_cache lake/raw lake/bronze lake/silver lake/warehouse lake/logs
