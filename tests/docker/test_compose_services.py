"""Every service of docker-compose.yml, started natively with its own command line and
environment (tests/docker/native.py says what stands in for Docker), comes up healthy by its own
health check on the port the file gives, and finds the others by their service names. Then the
main job runs as the README says (`docker compose exec code crypto-analytics run`) on the
`spark` profile's standalone cluster, and writes the rows the same command writes on local[*]."""

import json
import shutil
import subprocess
import textwrap
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

from tests.conftest import (
    MINUTE_RANGE_DAYS,
    MINUTE_RANGE_TOKENS,
    FreshRun,
    _small_universe,
    assert_same_lake_rows,
    minute_range_command,
    minute_range_datasets,
    run_settings,
    warehouse_rows,
    warehouse_tables,
)
from tests.docker.native import NativeStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, minute_range: FreshRun):
    # The cluster test's reference (minute_range) runs first: beside the 12 services it took
    # twice as long on two cores.
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.fail("util-linux's unshare and nsenter are needed to run the services natively")
    stack = NativeStack(tmp_path_factory.mktemp("compose"), profiles=("spark",))
    try:
        default = [name for name, s in stack.services.items() if not s.get("profiles")]
        stack.seconds = stack.up(default)
        yield stack
    finally:
        stack.close()


def _listening(stack: NativeStack, name: str, port: str) -> bool:
    done = stack.exec(name, ["python", "/app/docker/healthcheck.py", f"tcp://{name}:{port}"], timeout=30)
    return done.returncode == 0


def test_every_service_comes_up_healthy_on_the_port_the_file_gives(stack: NativeStack):
    print("seconds to healthy:", json.dumps({k: round(v, 1) for k, v in stack.seconds.items()}))
    for name, service in stack.services.items():
        if service.get("profiles"):
            continue
        if service.get("restart") == "no":
            assert stack.running[name].process.returncode == 0, name  # airflow-init: completed
            continue
        assert stack.running[name].process.poll() is None, name
        assert stack.healthy(name), name
        ports = [p["target"] for p in service.get("ports", [])] + list(service.get("expose", []))
        for port in ports:
            # Reached by its service name, as the other services reach it.
            assert name == "postgres" or _listening(stack, name, str(port)), (name, port)


def _python(stack: NativeStack, name: str, code: str) -> str:
    done = stack.exec(name, ["python", "-c", textwrap.dedent(code)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_services_find_each_other_by_the_names_the_file_gives(stack: NativeStack):
    # The webserver loaded the code location over gRPC at code:4000 (docker/workspace.yaml).
    answer = _python(
        stack,
        "webserver",
        """
        import json, urllib.request
        query = ('{ workspaceOrError { ... on Workspace { locationEntries { name'
                 ' locationOrLoadError { __typename } } } } }')
        request = urllib.request.Request("http://webserver:3000/graphql",
            data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
        print(urllib.request.urlopen(request, timeout=30).read().decode())
        """,
    )
    entries = json.loads(answer)["data"]["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        ("crypto_assets.definitions", "RepositoryLocation")
    ]
    # The code container reaches the warehouse by name (WAREHOUSE_HOST=warehouse).
    done = stack.exec("code", ["crypto-analytics", "sql", "SELECT 41 + 1 AS ANSWER"], timeout=120)
    assert done.returncode == 0 and "42" in done.stdout, done.stdout + done.stderr
    # Airflow's DAG processor parsed the DAGs into Postgres; its tasks reach Dagster by name.
    dags = stack.exec("airflow-scheduler", ["airflow", "dags", "list", "--output", "json"], timeout=120)
    assert dags.returncode == 0, dags.stderr
    assert {"crypto_market_data", "crypto_ml_predictions", "crypto_ml_training"} <= {
        d["dag_id"]
        for d in json.loads(dags.stdout.splitlines()[-1])  # after Airflow's log lines
    }
    info = _python(
        stack,
        "airflow-scheduler",
        """
        import os, urllib.request
        print(urllib.request.urlopen(os.environ["DAGSTER_URL"] + "/server_info", timeout=30).status)
        """,
    )
    assert info.strip() == "200"
    # The stream reached the exchange (ws://emulator:8765) and keeps its heartbeat (its first
    # beat comes before any frame: wait for one that counts frames).
    beat = stack.volume("lake") / "stream" / ".heartbeat.json"
    deadline = time.monotonic() + 60
    while json.loads(beat.read_text())["frames"] == 0 and time.monotonic() < deadline:
        time.sleep(1)
    heartbeat = json.loads(beat.read_text())
    assert heartbeat["frames"] > 0 and heartbeat["reconnects"] == 0
    # The dashboard serves its page on dashboard:8501.
    assert _listening(stack, "dashboard", "8501")


def _run(stack: NativeStack, **env: str) -> subprocess.Popen:
    """`docker compose exec code crypto-analytics run ...` over conftest's minute range, started."""
    universe = _small_universe(stack.volume("lake") / "universe.yaml", MINUTE_RANGE_TOKENS)
    argv = ["crypto-analytics", *minute_range_command(len(MINUTE_RANGE_DAYS))]
    return stack.exec_start("code", argv, UNIVERSE_FILE=f"/data/lake/{universe.name}", **env)


def _finish(run: subprocess.Popen, started: float) -> None:
    out, _ = run.communicate(timeout=900)
    assert run.returncode == 0, out[-5000:]
    print(f"{time.monotonic() - started:.1f} s:\n{out[-2500:]}")


def _plain(value: object) -> object:
    """A warehouse value as both readers agree on it: DuckDB's file (the cluster's warehouse) and
    the Snowflake connector (the reference's) type instants and decimals differently."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return repr(float(value))
    return value


def test_the_main_job_runs_in_the_code_container_on_a_spark_cluster_with_the_rows_of_local_mode(
    stack: NativeStack, spark, minute_range: FreshRun
):
    # Two cores: the services that would compete with the run step aside.
    for name in (
        "stream",
        "daemon",
        "dashboard",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-apiserver",
    ):
        stack.stop(name)
    seconds = stack.up(["spark-master", "spark-worker"])
    print("spark profile, seconds to healthy:", {k: round(v, 1) for k, v in seconds.items()})

    # The reference is conftest's minute range on local[*] (the file's default), run by the same
    # command outside the containers; here it runs on the cluster, into its own lake and schema.
    cluster = {"SPARK_MASTER": "spark://spark-master:7077", "LAKE_ROOT": "/data/lake/cluster"}
    _finish(_run(stack, **cluster, SNOWFLAKE_SCHEMA="CLUSTER"), time.monotonic())
    worker_log = stack.tail("spark-worker", 20000)
    assert "Launching executor" in worker_log or "Asked to launch executor" in worker_log, worker_log[-2000:]

    reference = run_settings(minute_range.env)
    lake = minute_range_datasets(stack.volume("lake") / "cluster")
    assert_same_lake_rows(spark, minute_range_datasets(reference.lake_root), lake)

    stack.stop("warehouse")  # DuckDB's files are the server's while it runs
    database = next((stack.volume("warehouse")).glob("*.db"))
    with duckdb.connect(str(database), read_only=True) as db:
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'CLUSTER'"
        tables = {row[0] for row in db.execute(query).fetchall()}
        assert tables == warehouse_tables(reference) and "GOLD_MARKET_FEATURES" in tables, tables
        for table in sorted(tables):
            names, rows = warehouse_rows(reference, table)
            select = ", ".join(f'"{n}"' for n in names)
            expected = Counter(tuple(_plain(v) for v in row) for row in rows)
            got = db.execute(f'SELECT {select} FROM CLUSTER."{table}"').fetchall()
            assert Counter(tuple(_plain(v) for v in row) for row in got) == expected and rows, table
