# The documented commands. Every install step lives here and in pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

AIRFLOW_VENV  := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/.dagster
export LAKE_ROOT ?= $(CURDIR)/lake

# Ports of the local servers: `make dev DAGSTER_PORT=3001`, `make airflow AIRFLOW_PORT=8090`, ...
DAGSTER_PORT   ?= 3000
DASHBOARD_PORT ?= 8501
AIRFLOW_PORT   ?= 8080
# Where Airflow's DAGs find Dagster (the webserver of `make dev`).
DAGSTER_URL    ?= http://127.0.0.1:$(DAGSTER_PORT)

.PHONY: install run test dev live stream dashboard browser native-services airflow airflow-venv docker-constraints lint format bench clean

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

## make test: lint + the whole test suite (the dashboard's browser test needs chromium; the
## compose services' native run needs Postgres and a private network namespace)
test: $(STAMP) browser native-services $(AIRFLOW_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make dev: Dagster UI + daemon on http://127.0.0.1:3000 (DAGSTER_PORT) with the embedded services
dev: $(STAMP)
	$(BIN)/crypto-analytics dev --port $(DAGSTER_PORT)

## make live: make dev with the live stream beside it (live_slice_sensor loads its minutes into
## GOLD_LIVE_MARKET within about a minute of each candle's close)
live: $(STAMP)
	$(BIN)/crypto-analytics dev --stream --port $(DAGSTER_PORT)

## make stream: live closed 1m klines and trades into lake/stream/ until Ctrl-C (starts the
## emulator when BINANCE_WS_URL points at it; gaps repaired from REST)
stream: $(STAMP)
	$(BIN)/crypto-analytics stream

## make dashboard: the Streamlit dashboard on http://127.0.0.1:8501 (DASHBOARD_PORT; starts the
## embedded warehouse)
dashboard: $(STAMP)
	$(BIN)/crypto-analytics dashboard --port $(DASHBOARD_PORT)

# Debian's chromium for the dashboard's real-browser test (Playwright drives it; it never
# downloads a browser of its own).
browser:
	@command -v chromium >/dev/null || { \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's Postgres binaries (the compose file's database, run natively by the tests; no server
# is left running) and the tools that give those tests a private network namespace.
native-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v ip >/dev/null \
		&& command -v unshare >/dev/null && command -v nsenter >/dev/null || { \
		echo "installing postgresql, iproute2 and util-linux for the compose services' native test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql iproute2 util-linux >/dev/null; }

## make airflow-venv: Airflow 3 in its own virtualenv (shares nothing with Dagster's)
airflow-venv: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): airflow_bridge/requirements.txt
	test -d $(AIRFLOW_VENV) || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r airflow_bridge/requirements.txt
	touch $(AIRFLOW_STAMP)

## make airflow: Airflow standalone (scheduler, API server, UI on http://127.0.0.1:8080, AIRFLOW_PORT)
## with the DAGs that trigger the Dagster jobs of `make dev` (DAGSTER_URL, default
## http://127.0.0.1:$(DAGSTER_PORT)). The port moves the API server and the execution API its
## tasks report to together: the second alone stays at localhost:8080 and every task fails.
airflow: $(AIRFLOW_STAMP)
	AIRFLOW_HOME=$(CURDIR)/.airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/airflow_bridge/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	DAGSTER_URL=$(DAGSTER_URL) \
	PYTHONPATH=$(CURDIR) PATH=$(CURDIR)/$(AIRFLOW_VENV)/bin:$$PATH \
	$(AIRFLOW_VENV)/bin/airflow standalone

## make docker-constraints: pin the images' packages to what the virtualenvs `make test` ran with
docker-constraints: $(STAMP) $(AIRFLOW_STAMP)
	{ echo "# Written by make docker-constraints from the tested virtualenv: the images install these versions."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(crypto-analytics|py-spy)=='; } > docker/constraints.txt
	{ echo "# Written by make docker-constraints from the tested Airflow virtualenv."; \
	  $(AIRFLOW_VENV)/bin/python -m pip freeze; } > docker/airflow-constraints.txt

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .airflow .test-artifacts .dagster .pytest_cache .ruff_cache lake/raw lake/bronze lake/silver lake/warehouse lake/logs lake/.fetched
