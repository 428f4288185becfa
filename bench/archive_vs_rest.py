"""Archive backfill against REST for the same window: the speed-up of the bulk-archive path.

Both fetch every listed pair's 1m klines for the same days from the same emulator, through the
pipeline's own fetch_klines (4 threads): once from the daily archive files (zip + SHA-256
check), once from /api/v3/klines pages. The results are checked equal before timing counts.

    .venv/bin/python bench/archive_vs_rest.py [--days 5]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from _common import Timer, days, emulator, pairs_for

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient
from crypto_assets.raw.fetch import fetch_klines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--first-day", default="2024-03-01")
    args = parser.parse_args()
    windows = days(args.first_day, args.days)
    pairs = pairs_for(windows[0][0], windows[-1][1])
    with (
        emulator("--weight-limit", "1000000000") as url,
        BinanceClient(url) as rest,
        BinanceArchiveClient(url) as archive,
    ):
        # Warm the emulator (bar generation, zip building) for both paths: its cost is not the client's.
        for start, end in windows:
            fetch_klines(rest, None, pairs, start, end, datetime.now(UTC))
            fetch_klines(rest, archive, pairs, start, end, datetime.now(UTC))
        timings = {}
        frames = {}
        for label, source in (("rest", None), ("archive", archive)):
            with Timer() as timer:
                parts = [fetch_klines(rest, source, pairs, s, e, datetime.now(UTC))[0] for s, e in windows]
            timings[label] = timer.seconds
            frames[label] = parts
        rows = sum(len(p) for p in frames["rest"])
        same = all(
            a.drop(columns=["source", "ingested_at"]).equals(b.drop(columns=["source", "ingested_at"]))
            for a, b in zip(frames["rest"], frames["archive"], strict=True)
        )
    print(
        f"workload: {len(pairs)} pairs x {args.days} days x 1m = {rows:,} klines (identical from both: {same})"
    )
    for label, seconds in timings.items():
        print(f"  {label:<8} {seconds:6.2f} s  {rows / seconds:,.0f} klines/s")
    print(f"RATIO archive speed-up over REST = {timings['rest'] / timings['archive']:.2f}x")


if __name__ == "__main__":
    main()
