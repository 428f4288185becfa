"""REST backfill throughput into raw Parquet, against a bare httpx loop on the same pages.

Both fetch the same 1m klines (every listed pair, several days) from the same emulator, which
runs with an unbounded weight limit so that only the code differs. The pipeline side is the
real ingestion path: BinanceClient (weight budget, retries, validation) through fetch_klines,
then Spark writes the raw partitions as Parquet. The Spark session is started (and reported)
before the clock runs, since a backfill starts it once.

    .venv/bin/python bench/rest_throughput.py [--days 2]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
from _common import Timer, days, emulator, pairs_for

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.raw.fetch import fetch_klines
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA
from resources.parquet_io import write_partitions_atomically
from resources.settings import Settings
from resources.spark import build_spark_resource


def bare_loop(url: str, pairs: list[str], windows: list) -> int:
    """What a script would do: page through /api/v3/klines with httpx, json(), nothing else."""
    klines = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for start, end in windows:
            for pair in pairs:
                cursor, stop = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
                while cursor < stop:
                    page = client.get(
                        "/api/v3/klines",
                        params={
                            "symbol": pair,
                            "interval": "1m",
                            "startTime": cursor,
                            "endTime": stop - 1,
                            "limit": 1000,
                        },
                    ).json()
                    if not page:
                        break
                    klines += len(page)
                    cursor = page[-1][0] + 60_000
                    if len(page) < 1000:
                        break
    return klines


def pipeline(url: str, pairs: list[str], windows: list, spark, lake: Path, threads: int) -> int:
    """What one raw_klines backfill run does: fetch every day, then one Spark job writes the
    range, split into atomic day partitions."""
    frames = []
    with BinanceClient(url) as client:
        for start, end in windows:
            frames.append(
                fetch_klines(client, None, pairs, start, end, datetime.now(UTC), threads=threads)[0]
            )
    frame = pd.concat(frames, ignore_index=True)
    targets = {start.date().isoformat(): lake / f"dt={start.date().isoformat()}" for start, _ in windows}
    write_partitions_atomically(spark.createDataFrame(frame, schema=RAW_KLINES_SCHEMA), "open_time", targets)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--first-day", default="2024-03-01")
    parser.add_argument("--latency-ms", type=float, nargs="*", default=[0.0, 50.0])
    args = parser.parse_args()
    windows = days(args.first_day, args.days)
    pairs = pairs_for(windows[0][0], windows[-1][1])
    with Timer() as spark_start:
        spark = build_spark_resource(Settings.from_env()).spark_session
        spark.createDataFrame(pd.DataFrame({"x": [1]})).count()
    print(f"Spark session start (once per backfill, excluded below): {spark_start.seconds:.1f} s")
    print(f"workload: {len(pairs)} pairs x {args.days} days of 1m klines, into raw Parquet\n")
    for latency in args.latency_ms:
        measure(pairs, windows, spark, latency)


def measure(pairs: list[str], windows: list, spark, latency: float) -> None:
    where = (
        "loopback, no added latency"
        if not latency
        else f"{latency:.0f} ms added per request (a real exchange's RTT)"
    )
    print(f"== emulator: {where}")
    with (
        emulator("--weight-limit", "1000000000", "--latency-ms", str(latency)) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        bare_loop(url, pairs, windows)  # warm the emulator's caches for neither side's benefit
        results = {}
        for label, run in (
            ("bare httpx loop (sequential, no validation, no write)", lambda: bare_loop(url, pairs, windows)),
            ("pipeline, 1 thread (client + validation + Parquet write)", lambda: pipeline(url, pairs, windows, spark, Path(tmp) / "p1", 1)),
            ("pipeline, 4 threads (the raw_klines default)", lambda: pipeline(url, pairs, windows, spark, Path(tmp) / "p4", 4)),
        ):  # fmt: skip
            with Timer() as timer:
                count = run()
            results[label] = count / timer.seconds
            print(
                f"  {label}: {count:,} klines in {timer.seconds:.2f} s = {count / timer.seconds:,.0f} klines/s"
            )
    bare = results["bare httpx loop (sequential, no validation, no write)"]
    print(
        f"  RATIO pipeline(4 threads)/bare = {results['pipeline, 4 threads (the raw_klines default)'] / bare:.2f} (target >= 0.8)\n"
    )


if __name__ == "__main__":
    main()
