"""Silver's hourly features, twice on the same Parquet files: by the pipeline (Spark, the
``silver_features_1h`` transform) and by an independent DuckDB SQL implementation, the
single-machine reference. Prints both times, Spark's as a ratio of DuckDB's, and how far the two
results are apart (they implement the same definitions independently).

Reads ``silver_bars_1h`` from a lake (default: a fresh import of the real 2023 data, refined
through silver by one run); ``--lake`` points at an existing one.

    .venv/bin/python bench/duckdb_reference.py [--lake PATH]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "binance_spot_1h_2023"


def _window(hours_back: int, hours_to: int = 0) -> str:
    end = "CURRENT ROW" if hours_to == 0 else f"INTERVAL {hours_to} HOURS PRECEDING"
    return f"(PARTITION BY token ORDER BY open_time RANGE BETWEEN INTERVAL {hours_back} HOURS PRECEDING AND {end})"


def duckdb_sql(files: str) -> str:
    """The 1h feature set of config/pipeline.yaml, written from its definitions in DuckDB SQL."""
    from crypto_assets.pipeline_config import load_pipeline_config
    from crypto_assets.silver.utils import ema_bars, min_count, span_bars

    config = load_pipeline_config()
    tol, allowance, fraction = config.ema_tolerance, config.gap_allowance, config.min_fraction
    rsi_n = ema_bars(1 / 14, tol)
    fast_n, slow_n, sig_n = ema_bars(2 / 13, tol), ema_bars(2 / 27, tol), ema_bars(2 / 10, tol)
    rsi_span, slow_span, sig_span = (
        span_bars(rsi_n + 1, allowance),
        span_bars(slow_n, allowance),
        span_bars(sig_n, allowance),
    )
    bb_span = span_bars(20, allowance)
    stable = ", ".join(f"'{t}'" for t in config.stablecoins)

    def ema(values: str, alpha: float) -> str:
        return f"list_reduce({values}, lambda acc, x: acc * {1 - alpha!r} + x * {alpha!r})"

    def observed(column: str, span: int) -> str:
        return f"list({column} ORDER BY open_time) FILTER (WHERE close IS NOT NULL) OVER {_window(span - 1)}"

    returns = []
    for hours in (1, 4, 24):
        before = f"first(close) OVER {_window(hours, hours)}"
        returns += [
            f"close / {before} - 1 AS return_{hours}h",
            f"ln(close / {before}) AS log_return_{hours}h",
        ]
    vols = [
        f"CASE WHEN count(lr) OVER {_window(n - 1)} >= {min_count(n, fraction)} AND close IS NOT NULL"
        f" THEN stddev_samp(lr) OVER {_window(n - 1)} * {math.sqrt(365 * 24)!r} END AS realized_vol_{name}"
        for n, name in ((24, "24h"), (168, "7d"))
    ]
    enough24 = f"count(close) OVER {_window(23)} >= {min_count(24, fraction)}"
    both = "lr IS NOT NULL AND btc IS NOT NULL"
    x, y = f"CASE WHEN {both} THEN lr END", f"CASE WHEN {both} THEN btc END"
    enough168 = f"count({x}) OVER {_window(167)} >= {min_count(168, fraction)}"
    return f"""
WITH bars AS (
  SELECT token, category, symbol, open_time, CAST(open AS DOUBLE) AS open, CAST(high AS DOUBLE) AS high,
         CAST(low AS DOUBLE) AS low, CAST(close AS DOUBLE) AS close, CAST(volume AS DOUBLE) AS volume,
         CAST(taker_buy_base_volume AS DOUBLE) AS taker
  FROM read_parquet('{files}')
), base AS (
  SELECT *, ln(close / first(close) OVER {_window(1, 1)}) AS lr FROM bars
), joined AS (
  SELECT *, max(CASE WHEN token = 'BTC' THEN lr END) OVER (PARTITION BY open_time) AS btc FROM base
), windows AS (
  SELECT token, open_time, close, {", ".join(returns)}, {", ".join(vols)},
    {observed("close", rsi_span)} AS c_rsi,
    {observed("struct_pack(h := high, l := low, c := close)", rsi_span)} AS hlc,
    {observed("close", slow_span)} AS c_macd,
    {observed("close", bb_span)} AS c_bb,
    CASE WHEN {enough24} AND sum(volume) OVER {_window(23)} > 0 AND close IS NOT NULL
      THEN sum((high + low + close) / 3 * volume) OVER {_window(23)} / sum(volume) OVER {_window(23)} END AS vwap_24h,
    CASE WHEN count(volume) OVER {_window(23)} >= {min_count(24, fraction)} AND stddev_samp(volume) OVER {_window(23)} > 0
      AND close IS NOT NULL
      THEN (volume - avg(volume) OVER {_window(23)}) / stddev_samp(volume) OVER {_window(23)} END AS volume_zscore_24h,
    CASE WHEN volume > 0 THEN 2 * taker / volume - 1 END AS taker_buy_imbalance,
    CASE WHEN {enough168} AND close IS NOT NULL THEN corr({x}, {y}) OVER {_window(167)} END AS corr_btc_7d,
    CASE WHEN {enough168} AND close IS NOT NULL
      THEN covar_samp({x}, {y}) OVER {_window(167)} / var_samp({y}) OVER {_window(167)} END AS beta_btc_7d,
    CASE WHEN token IN ({stable}) THEN close - 1 END AS peg_deviation
  FROM joined
), indicators AS (
  SELECT *,
    CASE WHEN len(c_rsi) >= {rsi_n + 1} AND close IS NOT NULL THEN list_transform(
      list_zip(c_rsi[-{rsi_n}:], c_rsi[-{rsi_n + 1}:-2]), lambda p: p[1] - p[2]) END AS moves,
    CASE WHEN len(hlc) >= {rsi_n + 1} AND close IS NOT NULL THEN list_transform(
      list_zip(hlc[-{rsi_n}:], hlc[-{rsi_n + 1}:-2]),
      lambda p: greatest(p[1].h - p[1].l, abs(p[1].h - p[2].c), abs(p[1].l - p[2].c))) END AS true_ranges,
    CASE WHEN len(c_macd) >= {slow_n} AND close IS NOT NULL
      THEN {ema(f"c_macd[-{fast_n}:]", 2 / 13)} - {ema(f"c_macd[-{slow_n}:]", 2 / 27)} END AS macd,
    CASE WHEN len(c_bb) >= 20 AND close IS NOT NULL THEN c_bb[-20:] END AS last20
  FROM windows
), bands AS (
  SELECT *, list_avg(last20) AS bb_middle_20,
    sqrt(list_sum(list_transform(last20, lambda v: (v - list_avg(last20)) ^ 2)) / 20) AS spread,
    list(macd ORDER BY open_time) FILTER (WHERE macd IS NOT NULL) OVER {_window(sig_span - 1)} AS m_hist
  FROM indicators
)
SELECT token, open_time, return_1h, log_return_1h, return_4h, log_return_4h, return_24h, log_return_24h,
  realized_vol_24h, realized_vol_7d,
  CASE WHEN {ema("list_transform(moves, lambda d: greatest(-d, 0.0))", 1 / 14)} = 0 THEN 100.0
    ELSE 100 - 100 / (1 + {ema("list_transform(moves, lambda d: greatest(d, 0.0))", 1 / 14)}
      / {ema("list_transform(moves, lambda d: greatest(-d, 0.0))", 1 / 14)}) END AS rsi_14,
  macd,
  CASE WHEN len(m_hist) >= {sig_n} AND macd IS NOT NULL THEN {ema(f"m_hist[-{sig_n}:]", 2 / 10)} END AS macd_signal,
  bb_middle_20, bb_middle_20 + 2 * spread AS bb_upper_20, bb_middle_20 - 2 * spread AS bb_lower_20,
  CASE WHEN spread > 0 THEN (close - (bb_middle_20 - 2 * spread)) / (4 * spread) END AS bb_pct_b_20,
  4 * spread / bb_middle_20 AS bb_width_20,
  {ema("true_ranges", 1 / 14)} AS atr_14,
  vwap_24h, close / vwap_24h - 1 AS vwap_deviation_24h, volume_zscore_24h, taker_buy_imbalance,
  corr_btc_7d, beta_btc_7d, peg_deviation
FROM bands
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", help="a lake with silver_bars_1h (default: build one from the real data)")
    args = parser.parse_args()
    if args.lake:
        compare(Path(args.lake))
        return
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as tmp:
        os.environ.update({"LAKE_ROOT": f"{tmp}/lake", "DAGSTER_HOME": f"{tmp}/dagster"})
        from crypto_assets.cli import prepare_dagster_home
        from resources.settings import Settings

        prepare_dagster_home(Settings.from_env())  # no telemetry banner
        build_bars(Path(f"{tmp}/lake"))
        compare(Path(f"{tmp}/lake"))


def build_bars(lake: Path) -> None:
    from dagster import AssetSelection, DagsterInstance, define_asset_job

    from crypto_assets.definitions import build_definitions
    from crypto_assets.raw.file_import import find_files, import_files
    from resources.settings import Settings

    settings = Settings.from_env()
    import_files(find_files(REAL), settings, say=lambda _: None)
    defs = build_definitions(settings)
    job = define_asset_job("bars", selection=AssetSelection.assets("bronze_klines", "silver_bars_1h"))
    from dagster import Definitions

    bars_defs = Definitions(assets=defs.assets, jobs=[job], resources=defs.resources, executor=defs.executor)
    result = bars_defs.resolve_job_def("bars").execute_in_process(
        instance=DagsterInstance.get(),
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        tags={
            "dagster/asset_partition_range_start": "2023-01-01",
            "dagster/asset_partition_range_end": "2023-12-30",
        },
    )
    assert result.success


def compare(lake: Path) -> None:
    import duckdb
    import pandas as pd

    from crypto_assets.silver.config import feature_input, feature_plans
    from resources.settings import Settings
    from resources.spark import build_spark_resource

    files = str(lake / "silver" / "silver_bars_1h" / "dt=*" / "*.parquet")
    plan = feature_plans()["1h"]
    spark = build_spark_resource(Settings.from_env()).spark_session
    spark.range(1).collect()  # JVM started before timing
    with tempfile.TemporaryDirectory(prefix="bench-out-") as out:
        started = time.perf_counter()
        bars = feature_input(spark.read.parquet(str(lake / "silver" / "silver_bars_1h")))
        plan.apply(bars).write.parquet(f"{out}/spark")
        spark_seconds = time.perf_counter() - started

        connection = duckdb.connect()
        connection.execute("SET threads = 2")  # the same two cores Spark has
        started = time.perf_counter()
        connection.execute(f"COPY ({duckdb_sql(files)}) TO '{out}/duckdb.parquet' (FORMAT PARQUET)")
        duck_seconds = time.perf_counter() - started

        ours = pd.read_parquet(f"{out}/spark").set_index(["token", "open_time"]).sort_index()
        reference = pd.read_parquet(f"{out}/duckdb.parquet").set_index(["token", "open_time"]).sort_index()
    rows = len(ours)
    print(f"{rows:,} token-hours, {reference.shape[1]} features")
    print(f"Spark (local[*], silver_features_1h transform): {spark_seconds:.1f} s")
    print(f"DuckDB SQL (2 threads):                        {duck_seconds:.1f} s")
    print(f"Spark / DuckDB = {spark_seconds / duck_seconds:.2f}x")
    worst = {}
    for column in reference.columns:
        a, b = ours[column].astype(float), reference[column].astype(float)
        assert (a.isna() == b.isna()).all(), f"{column}: null where the other has a value"
        scale = ours["close"].abs() if column.startswith(("macd", "bb_", "atr")) else b.abs().clip(lower=1.0)
        worst[column] = float(((a - b).abs() / scale).max())
    print(f"largest difference (relative): {max(worst.values()):.1e} ({max(worst, key=worst.get)})")


if __name__ == "__main__":
    main()
