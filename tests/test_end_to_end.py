"""Every layer for real: emulator (HTTP) -> lake (Spark) -> embedded warehouse (Snowflake protocol)."""

from pathlib import Path

import pytest
import snowflake.connector
from dagster import DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.universe import load_universe
from resources.settings import Settings

pytestmark = pytest.mark.integration
DAYS = ["2024-03-01", "2024-03-02"]


def _gold_counts(settings: Settings) -> list[tuple]:
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT DT, COUNT(*), COUNT(DISTINCT TOKEN), COUNT(DISTINCT TOKEN || BAR_TIME::VARCHAR)"
            " FROM GOLD_MARKET_FEATURES GROUP BY DT ORDER BY DT"
        )
        return [tuple(str(v) if i == 0 else v for i, v in enumerate(row)) for row in cursor.fetchall()]


def test_two_days_through_every_layer_and_a_rerun(local_env: Path, spark):
    settings = Settings.from_env()
    job = build_definitions(settings).resolve_job_def("market_data_job")
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        result = job.execute_in_process(partition_key=day, instance=instance)
        assert result.success
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        assert failed == []

    # 37 tokens minus USDT (quote asset), DAI (no pair), BUSD (delisted 2023-12) and TAO (listed 2024-04).
    expected = 33
    assert len(load_universe().active_pairs(*_window(DAYS[0]))) == expected
    assert _gold_counts(settings) == [
        (DAYS[0], expected * 24, expected, expected * 24),
        (DAYS[1], expected * 24, expected, expected * 24),
    ]

    for layer, asset in (("raw", "raw_klines"), ("bronze", "bronze_klines"), ("silver", "silver_features")):
        for day in DAYS:
            frame = spark.read.parquet(str(local_env / layer / asset / f"dt={day}"))
            assert frame.count() == expected * 1440, (layer, day)
    # Day 2 had day 1 as look-back: its first hour has a full 60-minute volatility.
    day2 = spark.read.parquet(str(local_env / "silver" / "silver_features" / f"dt={DAYS[1]}"))
    assert day2.where("volatility_60m IS NULL").count() == 0

    before = _gold_counts(settings)
    rerun = job.execute_in_process(partition_key=DAYS[1], instance=instance)
    assert rerun.success
    assert _gold_counts(settings) == before  # same rows, no duplicates
    bronze = spark.read.parquet(str(local_env / "bronze" / "bronze_klines" / f"dt={DAYS[1]}"))
    assert bronze.count() == expected * 1440

    # Both days again as ONE run (the backfill policy's range): same partitions, same rows.
    ranged = job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]},
    )
    assert ranged.success
    assert _gold_counts(settings) == before
    for day in DAYS:
        raw = spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={day}"))
        assert raw.count() == expected * 1440 and raw.select("source").distinct().count() == 1


def _window(day: str):
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)
