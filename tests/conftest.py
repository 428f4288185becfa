"""Shared fixtures: one Spark session, real local servers on free ports, the real market data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
