"""Minutes at scale: N months of 1m klines (with the exchange's 1h and 1d) for every listed pair,
from the emulator's monthly archive files through raw -> bronze -> silver -> gold -> warehouse,
in one `crypto-analytics run`, beside a bare pass over the same files.

    .venv/bin/python bench/minutes_at_scale.py --months 1 [--months 3 ...] [--rerun]

- Before the clock: an emulator is started with ``--archive-cache`` and every monthly file of
  the range is requested once, so the exchange's work (building the files) is not measured.
- The pipeline: ``crypto-analytics run --start <first> --end <last> --intervals 1m,1h,1d
  --no-warm-up --source archive --no-train`` into a fresh lake and warehouse (the emulator is
  reused), wall time and peak RSS of the process tree (sampled from /proc every 0.2 s); per
  asset, rows and seconds as the run prints them; files and bytes per lake layer.
- The bare pass: the same zip files read with Arrow's CSV reader and written as Parquet, no
  validation or features: the floor the pipeline is compared with (as a ratio).
- ``--rerun``: the same command again on the full lake (everything found: checking only).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import emulator, pairs_for
from run_footprint import measure

LINE = re.compile(
    r"^\s+\S+\s+(?P<asset>[a-z0-9_]+)\s+(?P<rows>[\d,]+) rows\s+\d+ tokens\s+(?P<seconds>[\d.]+) s$"
)
COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
    "taker_base", "taker_quote", "ignore",
]  # fmt: skip


def months_before(today: date, count: int) -> list[date]:
    """The first days of the ``count`` complete months before ``today``'s month."""
    first = today.replace(day=1)
    out = []
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(first)
    return sorted(out)


def prebuild(base_url: str, months: list[date], folder: Path) -> list[Path]:
    """Every monthly 1m/1h/1d file of the listed pairs, fetched once (the emulator caches them)."""
    import httpx

    start = datetime(months[0].year, months[0].month, 1, tzinfo=UTC)
    last = months[-1]
    end = datetime(last.year + (last.month == 12), last.month % 12 + 1, 1, tzinfo=UTC)
    files = []
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for pair in pairs_for(start, end):
            for month in months:
                for interval in ("1m", "1h", "1d"):
                    name = f"{pair}-{interval}-{month:%Y-%m}.zip"
                    response = client.get(f"/data/spot/monthly/klines/{pair}/{interval}/{name}")
                    if response.status_code == 200:
                        path = folder / name
                        path.write_bytes(response.content)
                        files.append(path)
    return files


def bare_pass(files: list[Path], out: Path) -> tuple[float, int]:
    """Arrow CSV -> Parquet for every file: (seconds, rows)."""
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    started, rows = time.perf_counter(), 0
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(archive.namelist()[0])
        table = csv.read_csv(io.BytesIO(data), read_options=csv.ReadOptions(column_names=COLUMNS))
        pq.write_table(table, out / path.with_suffix(".parquet").name)
        rows += table.num_rows
    return time.perf_counter() - started, rows


def lake_sizes(lake: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for layer in ("raw", "bronze", "silver"):
        files = [p for p in (lake / layer).rglob("*.parquet")] if (lake / layer).exists() else []
        sizes[layer] = (len(files), sum(p.stat().st_size for p in files))
    return sizes


def run_once(months_count: int, rerun: bool) -> None:
    months = months_before(datetime.now(UTC).date(), months_count)
    first = months[0]
    last_month = months[-1]
    last = (last_month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    cli = str(Path(sys.executable).parent / "crypto-analytics")
    with tempfile.TemporaryDirectory(prefix="minutes-") as tmp:
        cache, files_dir = Path(tmp, "archive-cache"), Path(tmp, "files")
        files_dir.mkdir()
        # The exchange is not what is measured: no weight limit, and CoinGecko's free-plan pace
        # (30 calls a minute, ~75 s of waiting for the universe) lifted on both sides.
        limits = ["--weight-limit", "1000000", "--coingecko-calls-per-minute", "100000"]
        with emulator("--archive-cache", str(cache), *limits) as url:
            started = time.perf_counter()
            files = prebuild(url, months, files_dir)
            print(
                f"\n{months_count} month(s) {first} .. {last}: {len(files)} archive files pre-built in"
                f" {time.perf_counter() - started:.0f} s (not measured)"
            )
            bare_seconds, bare_rows = bare_pass(files, Path(tmp, "bare"))
            env = {
                **os.environ,
                "LAKE_ROOT": f"{tmp}/lake",
                "DAGSTER_HOME": f"{tmp}/dagster",
                "BINANCE_REST_URL": url,
                "BINANCE_ARCHIVE_URL": url,
                "SNOWFLAKE_SCHEMA": "MINUTES",
                "COINGECKO_CALLS_PER_MINUTE": "100000",
            }
            env.pop("SNOWFLAKE_ACCOUNT", None)
            command = [
                cli, "run", "--start", first.isoformat(), "--end", last.isoformat(),
                "--intervals", "1m,1h,1d", "--no-warm-up", "--source", "archive", "--no-train",
            ]  # fmt: skip
            wall, peak, output = measure(command, env)
            klines = 0
            print(f"  pipeline: wall {wall:.0f} s, peak RSS of the process tree {peak / 2**30:.2f} GiB")
            print(f"  {'asset':<28} {'rows':>12} {'seconds':>8} {'rows/s':>9}")
            for line in output.splitlines():
                match = LINE.match(line)
                if match:
                    rows, seconds = int(match["rows"].replace(",", "")), float(match["seconds"])
                    # A long 1m range runs a month at a time: raw_klines prints once per run.
                    klines += rows if match["asset"] == "raw_klines" else 0
                    rate = rows / seconds if seconds else 0.0
                    print(f"  {match['asset']:<28} {rows:>12,} {seconds:>8.1f} {rate:>9,.0f}")
            for layer, (count, size) in lake_sizes(Path(tmp, "lake")).items():
                print(f"  lake {layer:<7} {count:>6} files {size / 2**20:>9.1f} MiB")
            print(
                f"  end to end: {klines / wall:,.0f} klines/s; bare pass (Arrow CSV -> Parquet, same files):"
                f" {bare_rows:,} rows in {bare_seconds:.1f} s ({bare_rows / bare_seconds:,.0f} rows/s);"
                f" pipeline / bare = {wall / bare_seconds:.1f}x"
            )
            if rerun:
                again, peak, _ = measure(command, env)
                print(f"  re-run on the full lake: wall {again:.0f} s, peak RSS {peak / 2**30:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, action="append", help="months of 1m (repeatable); default 1")
    parser.add_argument("--rerun", action="store_true", help="run the same range again on the full lake")
    args = parser.parse_args()
    for count in args.months or [1]:
        run_once(count, args.rerun)


if __name__ == "__main__":
    main()
