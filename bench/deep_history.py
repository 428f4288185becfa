"""Years of history at coarse grain through gold: `crypto-analytics run --intervals 1h,1d`.

Backfills the whole universe (listing dates respected) for the last N years from the emulator
(monthly archive files for whole months, REST ranges for the edges) into a fresh lake and
warehouse: one run for the range, one Spark job per asset, no model training (``--no-train``). Prints the wall time and, per asset,
rows, seconds and rows per second (raw/bronze rows are klines).

    .venv/bin/python bench/deep_history.py [--years 5] [--source archive|rest]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

LINE = re.compile(
    r"^\s+\S+\s+(?P<asset>[a-z0-9_]+)\s+(?P<rows>[\d,]+) rows\s+\d+ tokens\s+(?P<seconds>[\d.]+) s$"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--source", choices=("archive", "rest"), default="archive")
    args = parser.parse_args()
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=round(365.25 * args.years) - 1)
    cli = str(Path(sys.executable).parent / "crypto-analytics")
    with tempfile.TemporaryDirectory(prefix="deep-history-") as tmp:
        env = {**os.environ, "LAKE_ROOT": f"{tmp}/lake", "DAGSTER_HOME": f"{tmp}/dagster"}
        command = [
            cli, "run", "--start", start.isoformat(), "--end", end.isoformat(),
            "--intervals", "1h,1d", "--no-warm-up", "--source", args.source,
            # Through gold (and the baseline's predictions): the model's first training on the
            # years is ml_training_job's business, measured by bench/ml_real_2023.py.
            "--no-train",
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(done.stdout[-4000:] + done.stderr[-4000:])
    days = (end - start).days + 1
    print(f"deep history: {days} days ({start} .. {end}) x the universe at 1h and 1d, source {args.source}")
    print(f"  wall time {wall:.0f} s ({wall / 60:.1f} min), target for 5 years: <= 300 s (issue 28)")
    print(f"  {'asset':<28} {'rows':>12} {'seconds':>8} {'rows/s':>9}")
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if match:
            rows, seconds = int(match["rows"].replace(",", "")), float(match["seconds"])
            rate = rows / seconds if seconds else 0.0
            print(f"  {match['asset']:<28} {rows:>12,} {seconds:>8.1f} {rate:>9,.0f}")


if __name__ == "__main__":
    main()
