"""The Airflow bridge for real: Airflow 3 in its own virtualenv (`make airflow-venv`) runs
`dag.test()` against a real Dagster webserver + daemon (`dagster dev`) started here on a free port,
serving a small code location (tests/airflow_bridge/dagster_jobs.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crypto_assets.services import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
SIDE = Path(__file__).with_name("airflow_side.py")
RUNS = "{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"

TEST_DAGS = """
from datetime import datetime, timedelta

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_bridge.operator import DagsterJobOperator


# One retry, a second apart: what fails fast must not use it, what is transient must.
def make(dag_id, **options):
    with DAG(dag_id, schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
             start_date=datetime(2024, 1, 1), catchup=False,
             default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}) as dag:
        DagsterJobOperator(task_id="run", poll_interval=0.5, **options)
    return dag


ok = make("bridge_ok", job_name="ok_job")
failing = make("bridge_failing", job_name="failing_job", partitioned=False)
flaky = make("bridge_flaky", job_name="flaky_job", partitioned=False)
bad_key = make("bridge_bad_key", job_name="ok_job", partition_key="1999-01-01")
slow = make("bridge_timeout", job_name="slow_job", partitioned=False, dagster_timeout=6)
"""


@pytest.fixture(scope="module")
def dagster_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge-dagster")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(root), "BRIDGE_TEST_OUT": str(root / "out.txt")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-m",
            "tests.airflow_bridge.dagster_jobs",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=(root / "dagster.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "dagster.log").read_text()[-3000:]
            try:
                body = httpx.post(f"{url}/graphql", json={"query": RUNS}, timeout=5).json()
                if "data" in body:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not answer within 120 s")
        yield url, root / "out.txt"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, dagster_url):
    if not AIRFLOW_PYTHON.exists():
        pytest.fail("Airflow's virtualenv is missing: `make airflow-venv` (part of `make test`) builds it")
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "bridge_test_dags.py").write_text(TEST_DAGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONHOME"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(REPO),
        DAGSTER_URL=dagster_url[0],
    )
    migrate = subprocess.run(
        [str(AIRFLOW_PYTHON), "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env, dags / "bridge_test_dags.py"


def _side(env: dict, *args: str) -> tuple[dict, str]:
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), str(SIDE), *args], env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-4000:]
    return json.loads(lines[-1][len("RESULT ") :]), output


def _runs(url: str) -> list[dict]:
    return httpx.post(f"{url}/graphql", json={"query": RUNS}, timeout=10).json()["data"]["runsOrError"][
        "results"
    ]


@pytest.fixture(scope="module")
def dag_runs(airflow, dagster_url):
    """Every scenario's dag.test() in one Airflow process; Dagster's runs counted around the bad key."""
    env, dags = airflow
    url, _ = dagster_url
    before_bad_key = None
    results: dict[str, dict] = {}
    for group in (["bridge_ok", "bridge_failing", "bridge_flaky"], ["bridge_bad_key"], ["bridge_timeout"]):
        if group == ["bridge_bad_key"]:
            before_bad_key = len(_runs(url))
        found, output = _side(env, "test", str(dags), "2024-03-02", *group)
        for dag_id, result in found.items():
            results[dag_id] = {**result, "output": output + result["log"]}
        if group == ["bridge_bad_key"]:
            results["bridge_bad_key"]["runs_launched"] = len(_runs(url)) - before_bad_key
    return results


def test_the_dag_files_import_in_airflow_3(airflow):
    env, _ = airflow
    result, output = _side(env, "dags", str(REPO / "airflow_bridge" / "dags"))
    assert result["errors"] == {}, output
    # Every DAG starts at the first partition, in default_args too (Airflow then refuses a logical
    # date before it), and documents which partition a run processes.
    first = {
        "start_date": "2017-08-17 00:00:00+00:00",
        "default_start_date": "2017-08-17 00:00:00+00:00",
        "doc": True,
    }
    assert result["dags"] == {
        "crypto_market_data": {"timetable": "CronDataIntervalTimetable", "tasks": ["market_data_job"], "job": "market_data_job", "partitioned": True, **first},
        "crypto_ml_predictions": {"timetable": "CronDataIntervalTimetable", "tasks": ["ml_prediction_job"], "job": "ml_prediction_job", "partitioned": True, **first},
        "crypto_ml_training": {"timetable": "CronDataIntervalTimetable", "tasks": ["ml_training_job"], "job": "ml_training_job", "partitioned": False, **first},
    }  # fmt: skip


def test_the_bridges_first_partition_is_the_dagster_jobs(monkeypatch):
    from airflow_bridge.partitions import BINANCE_FIRST_DAY, first_partition
    from crypto_assets import partitions

    assert BINANCE_FIRST_DAY == partitions.BINANCE_FIRST_DAY
    assert first_partition().date().isoformat() == partitions.first_day()
    monkeypatch.setenv("PARTITIONS_START", "2024-01-01")
    assert first_partition().date().isoformat() == partitions.first_day() == "2024-01-01"


def test_a_run_processes_the_day_of_its_data_interval_and_is_tagged(dag_runs, dagster_url):
    url, out = dagster_url
    result = dag_runs["bridge_ok"]
    assert result["state"] == "success", result["output"][-4000:]
    # Airflow 3 gives this logical date the data interval [2024-03-01, 2024-03-02): the run
    # processes that interval's day, the day that is complete when it runs.
    day = result["data_interval_start"][:10]
    assert day == "2024-03-01"
    assert out.read_text().splitlines()[-1] == f"{day} bridge_ok"
    run = next(r for r in _runs(url) if r["jobName"] == "ok_job")
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "SUCCESS" and tags["dagster/partition"] == day
    assert (
        tags["airflow/dag_id"] == "bridge_ok"
        and tags["airflow/task_id"] == "run"
        and "airflow/run_id" in tags
    )


def test_a_failing_job_fails_the_task_with_dagsters_message_without_a_retry(dag_runs):
    result = dag_runs["bridge_failing"]
    assert result["state"] == "failed" and result["tries"] == 1, result["output"][-3000:]
    assert "quota exceeded (bridge test)" in result["output"] and "step refuse" in result["output"]
    assert "not transient: not retried" in result["output"]


def test_a_transient_failure_is_retried(dag_runs):
    result = dag_runs["bridge_flaky"]
    assert result["state"] == "failed" and result["tries"] == 2, result["output"][-3000:]
    assert "the exchange did not answer (bridge test)" in result["output"]
    assert "transient: Airflow retries it" in result["output"]


def test_an_unknown_partition_fails_fast_and_launches_nothing(dag_runs):
    result = dag_runs["bridge_bad_key"]
    assert result["state"] == "failed" and result["runs_launched"] == 0 and result["tries"] == 1
    assert "has no partition '1999-01-01'" in result["output"]


def test_a_timeout_terminates_the_dagster_run(dag_runs, dagster_url):
    url, _ = dagster_url
    result = dag_runs["bridge_timeout"]
    assert result["state"] == "failed" and result["seconds"] < 120 and result["tries"] == 1
    assert "did not finish within 6 s: terminated it" in result["output"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = next(r for r in _runs(url) if r["jobName"] == "slow_job")
        if run["status"] == "CANCELED":
            break
        time.sleep(1)
    assert run["status"] == "CANCELED"
