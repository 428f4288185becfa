"""Every service of docker-compose.yml, started natively with its own command line and
environment (tests/docker/native.py says what stands in for Docker), comes up healthy by its own
health check on the port the file gives, and finds the others by their service names. Then the
main job runs as the README says (`docker compose exec code crypto-analytics run`), on Spark
local[*] and on the `spark` profile's standalone cluster, and both write the same rows."""

import json
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import _small_universe
from tests.docker.native import NativeStack

pytestmark = pytest.mark.integration

DAYS = ("2024-03-01", "2024-03-02")
TOKENS = {"BTC", "ETH", "USDC"}
# One path through every layer to the warehouse, both raw sources and the per-token Python
# recursions (the features) that a cluster runs on its executors: 7 of the job's 18 assets,
# which more than halves the test's time; the others run the same code paths.
ASSETS = (
    "raw_klines", "raw_coingecko_markets", "bronze_klines", "silver_token_markets", "silver_bars_1h",
    "silver_features_1h", "gold_market_features",
)  # fmt: skip
# Written at run time, so never equal between two runs.
VOLATILE = {"ingested_at", "loaded_at", "created_at"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
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
    """`docker compose exec code crypto-analytics run ...` for the two days, started."""
    universe = _small_universe(stack.volume("lake") / "universe.yaml", TOKENS)
    argv = ["crypto-analytics", "run", "--start", DAYS[0], "--end", DAYS[1], "--no-warm-up", "--no-train"]
    argv += ["--assets", ",".join(ASSETS)]
    return stack.exec_start("code", argv, UNIVERSE_FILE=f"/data/lake/{universe.name}", **env)


def _finish(run: subprocess.Popen, started: float) -> None:
    out, _ = run.communicate(timeout=900)
    assert run.returncode == 0, out[-5000:]
    print(f"{time.monotonic() - started:.1f} s:\n{out[-2500:]}")


def _frames(root: Path) -> dict[str, Path]:
    """The lake folders of the runs' assets, by layer/asset."""
    return {
        f"{layer.name}/{asset.name}": asset
        for layer in sorted(root.iterdir())
        if layer.name in ("raw", "bronze", "silver", "gold")
        for asset in sorted(layer.iterdir())
        if asset.is_dir() and asset.name in ASSETS
    }


def test_the_main_job_runs_in_the_code_container_and_on_a_spark_cluster_with_the_same_rows(
    stack: NativeStack, spark
):
    # Two cores: the services that would compete with the runs step aside.
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

    # The file's default, local[*], then the cluster, each into its own lake and warehouse
    # schema. (Side by side they take longer than one after the other on two cores.)
    _finish(_run(stack), time.monotonic())
    cluster = {"SPARK_MASTER": "spark://spark-master:7077", "LAKE_ROOT": "/data/lake/cluster"}
    _finish(_run(stack, **cluster, SNOWFLAKE_SCHEMA="CLUSTER"), time.monotonic())
    worker_log = stack.tail("spark-worker", 20000)
    assert "Launching executor" in worker_log or "Asked to launch executor" in worker_log, worker_log[-2000:]

    lake = stack.volume("lake")
    # The runs' assets only: the daemon's live slice may have written its own beside them.
    ours, theirs = _frames(lake), _frames(lake / "cluster")
    assert set(ours) == set(theirs) and {"raw/raw_klines", "bronze/bronze_klines"} <= set(ours)
    for name, path in ours.items():
        left, right = spark.read.parquet(str(path)), spark.read.parquet(str(theirs[name]))
        columns = [c for c in left.columns if c not in VOLATILE]
        assert sorted(columns) == sorted(c for c in right.columns if c not in VOLATILE), name
        left, right = left.select(columns), right.select(columns)
        assert left.count() == right.count() > 0, name
        assert left.exceptAll(right).count() == 0 and right.exceptAll(left).count() == 0, name

    stack.stop("warehouse")  # DuckDB's files are the server's while it runs
    database = next((stack.volume("warehouse")).glob("*.db"))
    with duckdb.connect(str(database), read_only=True) as db:

        def tables(schema: str) -> set[str]:
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
            return {row[0] for row in db.execute(query, [schema]).fetchall()}

        # The live slice's table is the stream's, in the first schema only.
        both = tables("ANALYTICS") & tables("CLUSTER")
        assert tables("CLUSTER") <= tables("ANALYTICS") and "GOLD_MARKET_FEATURES" in both, both
        for table in sorted(both):
            columns = [
                row[0]
                for row in db.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'ANALYTICS' AND table_name = ?",
                    [table],
                ).fetchall()
                if row[0].lower() not in VOLATILE
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            for a, b in (("ANALYTICS", "CLUSTER"), ("CLUSTER", "ANALYTICS")):
                missing = db.execute(
                    f'SELECT COUNT(*) FROM (SELECT {select} FROM {a}."{table}" EXCEPT ALL'
                    f' SELECT {select} FROM {b}."{table}")'
                ).fetchone()
                assert missing == (0,), (table, a, b)
            count = db.execute(f'SELECT COUNT(*) FROM ANALYTICS."{table}"').fetchone()
            assert count is not None and count[0] > 0, table
