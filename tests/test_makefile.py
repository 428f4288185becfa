"""The Makefile's documented commands take their ports from one setting each (``make -n``: what
would run, without running it)."""

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _planned(target: str, *settings: str) -> str:
    # The stamps are up to date in a checkout whose venvs exist; -n prints any install step anyway.
    # Under `make test` the suite runs inside make: a nested make would say "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *settings],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_one_airflow_port_moves_the_api_server_and_the_execution_api_its_tasks_use():
    plan = _planned("airflow", "AIRFLOW_PORT=8090", "DAGSTER_PORT=3001")
    assert "AIRFLOW__API__PORT=8090" in plan
    # Airflow 3's tasks report to the execution API, by default at localhost:8080 whatever the port.
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8090/execution/" in plan
    assert "AIRFLOW__API__BASE_URL=http://127.0.0.1:8090" in plan
    assert "DAGSTER_URL=http://127.0.0.1:3001" in plan
    assert not re.search(r"\b8080\b", plan)


def test_dev_and_the_dashboard_take_their_ports():
    assert _planned("dev", "DAGSTER_PORT=3001").strip().endswith("crypto-analytics dev --port 3001")
    assert (
        _planned("dashboard", "DASHBOARD_PORT=8502")
        .strip()
        .endswith("crypto-analytics dashboard --port 8502")
    )
