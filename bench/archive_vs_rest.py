"""Archive backfill against REST for the same window: the speed-up of the bulk-archive path.

Every listed pair's 1m klines for one calendar month, from the same emulator, through the
pipeline's own fetch_klines (4 threads): from REST pages (1,000 klines each), from daily
archive files, and from the monthly archive file (what raw_klines uses for a whole month). The
results are checked equal. Measured on loopback and with 50 ms added per request, as a real
exchange is; the emulator's own work (bar generation, zipping) is warmed up first for all paths.

    .venv/bin/python bench/archive_vs_rest.py [--month 2024-02]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pandas as pd
from _common import Timer, emulator, pairs_for

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient
from crypto_assets.raw.fetch import fetch_klines, fetch_plan


def run(
    rest: BinanceClient, archive: BinanceArchiveClient | None, periods: list, pairs: list[str]
) -> pd.DataFrame:
    frames = [
        fetch_klines(rest, archive, pairs, s, e, datetime.now(UTC), monthly=m)[0] for s, e, m in periods
    ]
    frame = pd.concat(frames, ignore_index=True).drop(columns=["source", "ingested_at"])
    return frame.sort_values(["symbol", "open_time"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--month", default="2024-02")
    parser.add_argument("--latency-ms", type=float, nargs="*", default=[0.0, 50.0])
    args = parser.parse_args()
    start = datetime.fromisoformat(args.month + "-01").replace(tzinfo=UTC)
    end = (start.replace(day=28) + pd.Timedelta(days=4)).replace(day=1)
    pairs = pairs_for(start, end)
    daily = fetch_plan(start, end, use_archive=False)
    monthly = fetch_plan(start, end, use_archive=True)
    for latency in args.latency_ms:
        with emulator("--weight-limit", "1000000000", "--latency-ms", str(latency)) as url:
            with BinanceClient(url) as rest, BinanceArchiveClient(url) as archive:
                paths = {
                    "rest (pages of 1,000)": (None, daily),
                    "archive, daily files": (archive, daily),
                    "archive, monthly files": (archive, monthly),
                }
                for source, periods in paths.values():  # warm-up: the emulator builds its data once
                    run(rest, source, periods, pairs)
                timings, frames = {}, {}
                for label, (source, periods) in paths.items():
                    with Timer() as timer:
                        frames[label] = run(rest, source, periods, pairs)
                    timings[label] = timer.seconds
        rows = len(frames["rest (pages of 1,000)"])
        same = all(f.equals(frames["rest (pages of 1,000)"]) for f in frames.values())
        where = "loopback" if not latency else f"{latency:.0f} ms per request"
        print(
            f"== {where}: {len(pairs)} pairs x {args.month} x 1m = {rows:,} klines (identical from all paths: {same})"
        )
        rest_seconds = timings["rest (pages of 1,000)"]
        for label, seconds in timings.items():
            print(
                f"  {label:<24} {seconds:6.2f} s  {rows / seconds:>9,.0f} klines/s  {rest_seconds / seconds:5.2f}x REST"
            )
        print(
            f"  RATIO monthly archive speed-up over REST = {rest_seconds / timings['archive, monthly files']:.2f}x\n"
        )


if __name__ == "__main__":
    main()
