"""The real 2023 Binance data through the pipeline for real: file import -> raw -> bronze ->
silver -> gold in the embedded warehouse, the year as ONE run (the refinement backfill policy).

Then: gold indicator values read back over Snowflake's protocol match the `ta` package; a day
re-materialized alone (reading its look-back partitions from the lake) is bit-identical to the
same day of the year run; and re-running it replaces rows without duplicating any.
"""

from pathlib import Path

import pandas as pd
import pytest
import snowflake.connector
import ta
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.raw.file_import import import_files
from resources.settings import Settings

pytestmark = pytest.mark.integration
TOKENS = ("BTC", "PEPE", "USDC")
FIRST, LAST, DAY = "2023-01-01", "2023-12-30", "2023-06-01"
# What this test reads: the hourly and daily features, gold's market table and category index
# (the 5m bars, correlations, venue prices and daily gold have tests of their own).
SELECTION = [
    AssetKey(a)
    for a in (
        "bronze_klines",
        "silver_bars_1h",
        "silver_bars_1d",
        "silver_features_1h",
        "silver_features_1d",
        "gold_market_features",
        "gold_category_index",
    )
]


def _gold(settings: Settings, sql: str) -> pd.DataFrame:
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        frame = cursor.fetch_pandas_all()
    frame.columns = [c.lower() for c in frame.columns]
    return frame


def test_a_real_year_in_one_run(local_env: Path, spark, tmp_path, monkeypatch, real_data):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    settings = Settings.from_env()
    files = [real_data / "binance_spot_1h_2023" / f"{t}USDT_1h.csv.gz" for t in TOKENS]
    import_files(files, settings, say=lambda _: None)
    job = build_definitions(settings).resolve_job_def("refinement_job")
    instance = DagsterInstance.ephemeral()
    year = job.execute_in_process(
        instance=instance,
        asset_selection=SELECTION,
        tags={"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST},
    )
    assert year.success
    evaluations = year.get_asset_check_evaluations()
    blocking_failures = [
        (e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed and e.blocking
    ]
    assert blocking_failures == []
    warnings = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed}
    # USDC's real March 2023 depeg is flagged (kept), in USDT terms.
    assert ("silver_features_1h", "stablecoin_peg") in warnings

    gold = _gold(
        settings,
        "SELECT token, bar_time, close, high, low, rsi_14, atr_14, macd, is_gap FROM gold_market_features"
        " WHERE token = 'BTC' ORDER BY bar_time",
    )
    gaps = gold.loc[gold["is_gap"], "bar_time"].astype(str).tolist()
    # The 2023-03-24 outage (no 13:00 bar), and the hours after the recording stopped (2023-12-30 19:00).
    assert len(gold) == 364 * 24 and gaps == [
        "2023-03-24 13:00:00",
        *[f"2023-12-30 {h}:00:00" for h in (20, 21, 22, 23)],
    ]
    bars = gold[~gold["is_gap"]].reset_index(drop=True)
    for ours, reference in (
        (bars["rsi_14"], ta.momentum.RSIIndicator(bars["close"], 14).rsi()),
        (
            bars["atr_14"],
            ta.volatility.AverageTrueRange(bars["high"], bars["low"], bars["close"], 14).average_true_range(),
        ),
    ):
        warm = ours.notna()
        assert warm.sum() > 8000
        assert ((ours[warm] - reference[warm]).abs() / reference[warm].abs()).max() < 1e-9
    macd = ta.trend.MACD(bars["close"]).macd()
    warm = bars["macd"].notna()
    assert ((bars["macd"][warm] - macd[warm]).abs() / bars["close"][warm]).max() < 1e-9

    # One day alone, through Dagster: its look-back read from the lake, the same bits as the year run.
    silver = tmp_path / "lake" / "silver" / "silver_features_1h" / f"dt={DAY}"
    before = spark.read.parquet(str(silver)).orderBy("token", "open_time").toPandas()
    counts = _gold(settings, "SELECT dt, COUNT(*) AS n FROM gold_market_features GROUP BY dt ORDER BY dt")
    day = job.execute_in_process(instance=instance, partition_key=DAY, asset_selection=SELECTION)
    assert day.success
    after = spark.read.parquet(str(silver)).orderBy("token", "open_time").toPandas()
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    assert _gold(
        settings, "SELECT dt, COUNT(*) AS n FROM gold_market_features GROUP BY dt ORDER BY dt"
    ).equals(counts)
    index = _gold(
        settings,
        "SELECT category, COUNT(*) AS n FROM gold_category_index WHERE interval = '1h' GROUP BY 1 ORDER BY 1",
    ).set_index("category")["n"]
    assert set(index.index) == {"Layer 1", "Meme", "Payment"}
    # Layer 1 is BTC alone: every hour with a 1h return, so not the first hour of the year, the
    # outage bar and the hour after it, nor the 4 hours after the recording stopped.
    assert index["Layer 1"] == 364 * 24 - 7
