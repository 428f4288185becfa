"""Bronze never publishes a day that fails a blocking check: the previous day stays, the error
names the rows. For real: the lake, Spark and a Dagster run of the bronze asset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.raw.file_import import import_files
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from resources.parquet_io import write_partitions_atomically
from resources.settings import Settings

pytestmark = pytest.mark.integration
DAY = "2023-01-01"


def test_a_failing_day_keeps_its_previous_bronze(local_env: Path, spark, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    settings = Settings.from_env()
    mine = tmp_path / "BTCUSDT_1h.csv"
    mine.write_text(
        "date,open,high,low,close,volume\n"
        + "".join(f"{DAY} {h:02d}:00:00,1,2,0.5,1.5,10\n" for h in range(24))
    )
    import_files([mine], settings, say=lambda _: None)
    job = build_definitions(settings).resolve_job_def("history_job")
    instance = DagsterInstance.ephemeral()
    bronze = [AssetKey("bronze_klines")]
    assert job.execute_in_process(partition_key=DAY, instance=instance, asset_selection=bronze).success
    published = local_env / "bronze" / "bronze_klines" / f"dt={DAY}"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in published.glob("*.parquet"))
    assert spark.read.parquet(str(published)).count() == 24

    # A row of a pair the universe does not map lands in raw behind the importer's back (a
    # hand-copied file): bronze must refuse the day, naming the row, and keep what it had.
    raw_day = local_env / "raw" / "raw_klines" / f"dt={DAY}"
    stray = pd.DataFrame([{
        "venue": "binance", "market": "spot", "symbol": "XYZUSDT", "open_time": 1672531200000, "open": "1",
        "high": "1", "low": "1", "close": "1", "volume": "1", "close_time": 1672534799999, "quote_volume": None,
        "trade_count": None, "taker_buy_base_volume": None, "taker_buy_quote_volume": None, "interval": "1h",
        "source": "file:stray.csv", "ingested_at": pd.Timestamp("2023-01-02"),
    }])  # fmt: skip
    bad = spark.read.parquet(str(raw_day)).unionByName(spark.createDataFrame(stray, RAW_KLINES_SCHEMA))
    write_partitions_atomically(bad.localCheckpoint(), "open_time", {DAY: raw_day})

    result = job.execute_in_process(
        partition_key=DAY, instance=instance, asset_selection=bronze, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "bronze_klines 2023-01-01..2023-01-01 not published, the previous version stays" in message
    assert (
        "problem=null key" in message and "symbol=XYZUSDT" in message and "source=file:stray.csv" in message
    )
    assert sorted((p.name, p.stat().st_mtime_ns) for p in published.glob("*.parquet")) == before
