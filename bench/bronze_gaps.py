"""Bronze's gap finding on the real 2023 Binance year (../shared/data/real/binance_spot_1h_2023:
33 pairs x 1h, with the real outages, listings and delistings), two ways side by side in one run:

- every slot listed: each series-day's grid exploded, then anti-joined with the delivered bars
  (bronze before issue 28);
- complete days skipped: a day whose bars fill its slots lists none (bronze now).

Both must find the same missing slots; the ratio is the figure. Then bronze's whole transform
(``clean_klines``) on the year, for scale.

    .venv/bin/python bench/bronze_gaps.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.bronze.assets import universe_listings
from crypto_assets.bronze.transforms import (
    BRONZE_KEY,
    clean_klines,
    expected_grid,
    latest_ingestion,
    listing_frame,
    typed_klines,
)
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.file_import import read_file
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from crypto_assets.universe import load_universe
from resources.settings import Settings
from resources.spark import build_spark_resource

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "binance_spot_1h_2023"
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC)


def raw_rows(folder: Path = REAL) -> pd.DataFrame:
    """The real files as raw_klines rows, parsed by the importer (``crypto-analytics import``)."""
    return pd.concat(
        [read_file(path).rows for path in sorted(folder.glob("*USDT_1h.csv.gz"))], ignore_index=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each way (the best is kept)")
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"real data not found at {REAL}")
    universe = load_universe()
    spark = build_spark_resource(Settings.from_env()).spark_session
    rows = raw_rows()
    raw = spark.createDataFrame(rows, schema=RAW_KLINES_SCHEMA).localCheckpoint()
    observed = (
        latest_ingestion(typed_klines(raw, universe.series_tokens()))
        .where("token IS NOT NULL")
        .localCheckpoint()
    )
    listings = universe_listings()
    listed = listing_frame(spark, listings)
    print(
        f"real 2023 year: {len(rows):,} 1h bars of {rows['symbol'].nunique()} pairs; {observed.count():,} typed"
    )

    def missing(list_complete_days: bool) -> tuple[float, set]:
        best, found = float("inf"), set()
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            grid = expected_grid(observed, listed, tuple(INTERVAL_MS), START, list_complete_days)
            gaps = grid.join(observed.select(*BRONZE_KEY), on=list(BRONZE_KEY), how="left_anti")
            found = {(r["symbol"], r["open_time"]) for r in gaps.collect()}
            best = min(best, time.perf_counter() - t0)
        return best, found

    every, every_found = missing(list_complete_days=True)
    skipped, skipped_found = missing(list_complete_days=False)
    assert every_found == skipped_found, "the two ways found different gaps"
    print(f"missing slots found: {len(every_found):,} (both ways)")
    print(f"every slot listed:      {every:6.2f} s")
    print(f"complete days skipped:  {skipped:6.2f} s  ({every / skipped:.1f}x faster)")

    t0 = time.perf_counter()
    tokens = universe.series_tokens()
    bronze = clean_klines(
        raw, tokens, {t.symbol: t.category for t in universe.tokens}, listings, START, END, tuple(INTERVAL_MS)
    )
    count = bronze.count()
    print(f"clean_klines on the year: {count:,} rows in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
