"""Shared fixtures: one Spark session, real local servers on free ports, the real market data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from resources.settings import Settings

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"

# Loopback only, before anything starts a JVM.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real market data not found at {REAL_DATA} (shared/data/real is not beside the repo)")
    return REAL_DATA


@pytest.fixture(scope="session")
def spark():
    from dagster_pyspark import LazyPySparkResource

    from resources.settings import Settings
    from resources.spark import spark_config

    conf = spark_config(Settings.from_env())
    conf.update({"spark.sql.shuffle.partitions": "2", "spark.app.name": "crypto-analytics-tests"})
    session = LazyPySparkResource(spark_config=conf).spark_session
    yield session
    session.stop()


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real exchange emulator, as its own process on a free port."""
    from crypto_assets.services import _emulator_ready, free_port, start_service

    port = free_port()
    service = start_service(
        "emulator",
        # A generous CoinGecko plan keeps the suite fast; the free plan's limit has its own test.
        ["emulator", "--port", str(port), "--coingecko-calls-per-minute", "1000"],
        lambda: _emulator_ready("127.0.0.1", port),
        tmp_path_factory.mktemp("emulator-logs"),
    )
    yield f"http://127.0.0.1:{port}"
    service.stop()


@pytest.fixture(scope="session")
def warehouse_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The real embedded warehouse (fakesnow server), persisted in a temporary folder."""
    from crypto_assets.services import _warehouse_ready, free_port, start_service

    port = free_port()
    data_dir = tmp_path_factory.mktemp("warehouse")
    service = start_service(
        "warehouse",
        ["warehouse", "--port", str(port), "--data-dir", str(data_dir)],
        lambda: _warehouse_ready("127.0.0.1", port),
        tmp_path_factory.mktemp("warehouse-logs"),
    )
    yield port
    service.stop()


@pytest.fixture
def local_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator_url: str, warehouse_port: int
) -> Path:
    """Environment variables pointing every setting at this test's lake and the test servers."""
    for name in ("SNOWFLAKE_ACCOUNT", "SPARK_CONF", "WAREHOUSE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("BINANCE_REST_URL", emulator_url)
    monkeypatch.setenv("BINANCE_WS_URL", emulator_url.replace("http", "ws"))
    monkeypatch.setenv("WAREHOUSE_PORT", str(warehouse_port))
    monkeypatch.setenv("COINGECKO_CALLS_PER_MINUTE", "1000")
    monkeypatch.setenv("SNOWFLAKE_SCHEMA", f"T_{tmp_path.name.upper().replace('-', '_')[-20:]}")
    return tmp_path / "lake"


@pytest.fixture
def faults(emulator_url: str) -> Iterator:
    """Arm faults on the running emulator; all are cleared after the test."""
    import httpx

    def arm(route: str, kind: str, count: int = 1, **options: object) -> None:
        response = httpx.post(
            f"{emulator_url}/_emulator/faults", json={"route": route, "kind": kind, "count": count, **options}
        )
        response.raise_for_status()

    yield arm
    httpx.delete(f"{emulator_url}/_emulator/faults")


# The documented first run, once per session, on a small universe: the CLI test reads its output
# and warehouse, the dashboard's browser test serves that warehouse.
FRESH_RUN_DAY = "2024-06-03"
FRESH_RUN_TOKENS = {"BTC", "ETH", "DOGE"}


@dataclass(frozen=True)
class FreshRun:
    env: dict[str, str]
    run: subprocess.CompletedProcess
    root: Path


def _small_universe(path: Path, tokens: set[str] = FRESH_RUN_TOKENS) -> Path:
    from crypto_assets.universe import DEFAULT_UNIVERSE_PATH

    raw = yaml.safe_load(DEFAULT_UNIVERSE_PATH.read_text())
    raw["tokens"] = [t for t in raw["tokens"] if t["symbol"] in tokens]
    path.write_text(yaml.safe_dump(raw))
    return path


def _short_look_back(path: Path) -> Path:
    # An EMA tolerance of 1e-2 instead of 1e-12 shortens the look-back the features need (and so
    # the warm-up) from 605 to 102 days; the warm-up logic is the same.
    from crypto_assets.pipeline_config import DEFAULT_PIPELINE_PATH

    raw = yaml.safe_load(DEFAULT_PIPELINE_PATH.read_text())
    raw["silver"]["ema_tolerance"] = 1.0e-2
    path.write_text(yaml.safe_dump(raw))
    return path


def local_server_env(
    root: Path, emulator_url: str, warehouse_port: int, schema: str, **extra: str
) -> dict[str, str]:
    """This process's environment pointed at a lake and Dagster home under ``root``, the test
    emulator and warehouse, and a warehouse schema of its own (for a child process)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SNOWFLAKE_ACCOUNT", "SPARK_CONF", "WAREHOUSE_DATA_DIR")
    }
    env.update(
        LAKE_ROOT=str(root / "lake"),
        DAGSTER_HOME=str(root / "dagster"),
        BINANCE_REST_URL=emulator_url,
        BINANCE_WS_URL=emulator_url.replace("http", "ws"),
        WAREHOUSE_PORT=str(warehouse_port),
        COINGECKO_CALLS_PER_MINUTE="1000",
        SNOWFLAKE_SCHEMA=schema,
        **extra,
    )
    return env


def start_dagster_dev(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen:
    """`crypto-analytics dev` (services, webserver, daemon) on ``port``, in its own session."""
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dev", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for_asset_nodes(url: str, process: subprocess.Popen, query: str, timeout: float = 120) -> list[dict]:
    """The ``assetNodes`` of ``query`` once the UI serves all 28 assets of the code location (the stream's two included)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "crypto-analytics dev exited early"
        try:
            body = httpx.post(url, json={"query": query}, timeout=10).json()
            nodes = body.get("data", {}).get("assetNodes") or []
            if len(nodes) == 28:
                return nodes
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"the Dagster UI did not serve the assets within {timeout} s")


@pytest.fixture(scope="session")
def fresh_run(tmp_path_factory: pytest.TempPathFactory, emulator_url: str, warehouse_port: int) -> FreshRun:
    """`crypto-analytics run --start D --end D` on a fresh lake, as a user types it."""
    root = tmp_path_factory.mktemp("fresh-run")
    env = local_server_env(
        root,
        emulator_url,
        warehouse_port,
        "T_FRESH_RUN",
        UNIVERSE_FILE=str(_small_universe(root / "universe.yaml")),
        PIPELINE_CONFIG=str(_short_look_back(root / "pipeline.yaml")),
        # Nothing serves Dagster here: the dashboard's health page must say so.
        DAGSTER_URL="http://127.0.0.1:9",
    )
    run = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "run", "--start", FRESH_RUN_DAY, "--end", FRESH_RUN_DAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return FreshRun(env=env, run=run, root=root)


# A short range of minutes through one path of every layer to the warehouse, as one run, once per
# session: the reference that the same range cut into runs (tests/test_chunked_runs.py) and run on
# a Spark cluster (tests/docker) must equal row for row.
MINUTE_RANGE_DAYS = ("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04")
MINUTE_RANGE_TOKENS = {"BTC", "ETH", "USDC"}
# Both raw sources, bronze, the 1m-derived 5m and 1h bars, the per-token Python recursions (the
# features), and gold's look-ahead targets (which cross a run's last day): 8 of the job's 18
# assets; the others run the same code paths.
MINUTE_RANGE_ASSETS = (
    "raw_klines", "raw_coingecko_markets", "bronze_klines", "silver_token_markets", "silver_bars_5m",
    "silver_bars_1h", "silver_features_1h", "gold_market_features",
)  # fmt: skip
# Written at run time, so never equal between two runs.
RUN_TIME_COLUMNS = {"ingested_at", "loaded_at", "created_at"}


def minute_range_command(days_per_run: int) -> list[str]:
    """`crypto-analytics run` over the minute range in runs of ``days_per_run`` days (``run``
    cuts a range of minutes into runs of a month by default)."""
    return [
        "run", "--start", MINUTE_RANGE_DAYS[0], "--end", MINUTE_RANGE_DAYS[-1], "--intervals", "1m,1h,1d",
        "--no-warm-up", "--no-train", "--assets", ",".join(MINUTE_RANGE_ASSETS),
        "--days-per-run", str(days_per_run),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def minute_range(
    tmp_path_factory: pytest.TempPathFactory, emulator_url: str, warehouse_port: int
) -> FreshRun:
    """The minute range as one run, on a fresh lake and its own warehouse schema."""
    root = tmp_path_factory.mktemp("minute-range")
    env = local_server_env(
        root,
        emulator_url,
        warehouse_port,
        "T_MINUTE_RANGE",
        UNIVERSE_FILE=str(_small_universe(root / "universe.yaml", MINUTE_RANGE_TOKENS)),
    )
    run = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", *minute_range_command(len(MINUTE_RANGE_DAYS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return FreshRun(env=env, run=run, root=root)


def run_settings(env: dict[str, str]) -> Settings:
    """The settings a command run with ``env`` used (its lake, Dagster home and warehouse schema)."""
    from resources.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for name in ("LAKE_ROOT", "DAGSTER_HOME", "SNOWFLAKE_SCHEMA", "WAREHOUSE_PORT"):
            patch.setenv(name, env[name])
        return Settings.from_env()


def warehouse_query(settings: Settings, sql: str) -> list[tuple]:
    """The rows of ``sql`` in the settings' warehouse schema."""
    import snowflake.connector

    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def warehouse_tables(settings: Settings) -> set[str]:
    """The tables of the settings' warehouse schema."""
    schema = settings.snowflake_schema
    sql = f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
    return {row[0] for row in warehouse_query(settings, sql)}


def warehouse_rows(settings: Settings, table: str) -> tuple[list[str], list[tuple]]:
    """A table's column names and rows, without the columns written at run time."""
    import snowflake.connector

    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        keep = [i for i, name in enumerate(names) if name.lower() not in RUN_TIME_COLUMNS]
        return [names[i] for i in keep], [tuple(row[i] for i in keep) for row in cursor.fetchall()]


def minute_range_datasets(lake: Path) -> dict[str, Path]:
    """The lake folders of the minute range's assets, by layer/asset."""
    return {
        f"{layer.name}/{asset.name}": asset
        for layer in sorted(lake.iterdir())
        if layer.name in ("raw", "bronze", "silver", "gold")
        for asset in sorted(layer.iterdir())
        if asset.is_dir() and asset.name in MINUTE_RANGE_ASSETS
    }


def assert_same_lake_rows(spark: SparkSession, ours: dict[str, Path], theirs: dict[str, Path]) -> None:
    """The same datasets, each with the same rows (as many times), apart from run-time columns."""
    assert set(ours) == set(theirs) and {"raw/raw_klines", "bronze/bronze_klines"} <= set(ours)
    for name, path in ours.items():
        left, right = spark.read.parquet(str(path)), spark.read.parquet(str(theirs[name]))
        columns = sorted(c for c in left.columns if c not in RUN_TIME_COLUMNS)
        assert columns == sorted(c for c in right.columns if c not in RUN_TIME_COLUMNS), name
        left, right = left.select(columns), right.select(columns)
        assert left.count() == right.count() > 0, name
        assert left.exceptAll(right).isEmpty() and right.exceptAll(left).isEmpty(), name
