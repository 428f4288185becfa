"""Wall time and peak memory of `crypto-analytics run` (what `make run` does), twice in a row,
and how warm the first run's features are (non-null shares of the gold tables).

Samples the resident memory of the whole process tree (CLI + Spark JVM + emulator + warehouse)
every 0.2 s from /proc. The second run re-materializes the same partitions: it must report the
same rows (idempotency) and shows the cost of a run whose look-back history is already in the
lake. The first run starts from an empty lake: it fetches the features' look-back at the
exchange's 1h/1d grain first (ingestion.history), so its indicators must already be filled.

    .venv/bin/python bench/run_footprint.py [--days 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _tree_rss(root: int) -> int:
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
        stack += _children(pid)
    return total


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.2)
    reader.join()
    if process.returncode != 0:
        sys.exit("".join(output))
    return time.monotonic() - started, peak, "".join(output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "crypto-analytics")
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        env = {**os.environ, "LAKE_ROOT": f"{tmp}/lake", "DAGSTER_HOME": f"{tmp}/dagster"}
        for label in ("first run (cold lake, cold warehouse)", "second run (same partitions)"):
            wall, peak, output = measure([cli, "run", "--days", str(args.days)], env)
            totals = [
                line.strip()
                for line in output.splitlines()
                if line.startswith("  ") and " rows" in line and "  20" not in line
            ]
            print(f"{label}: wall {wall:.1f} s, peak RSS of the process tree {peak / 2**30:.2f} GiB")
            for line in totals:
                print(f"    {line}")
            if label.startswith("first"):
                os.environ.update(env)
                warm_shares()


def warm_shares() -> None:
    """Per gold table, the lowest non-null share over tokens of each warm-up-bound feature."""
    import snowflake.connector

    from crypto_assets.history import WARM_HOURLY_FEATURES, non_null_shares_sql, warm_daily_features
    from crypto_assets.services import local_services
    from resources.settings import Settings

    settings = Settings.from_env()
    tables = {
        "GOLD_MARKET_FEATURES": list(WARM_HOURLY_FEATURES),
        "GOLD_DAILY_MARKET_FEATURES": warm_daily_features(),
    }
    with local_services(settings, emulator=False, say=lambda _: None):
        with snowflake.connector.connect(**settings.connector_args()) as connection:
            cursor = connection.cursor()
            for table, columns in tables.items():
                cursor.execute(non_null_shares_sql(table, columns))
                rows = cursor.fetchall()
                print(f"    {table}: {len(rows)} tokens, non-null share of non-gap rows (lowest token):")
                for index, column in enumerate(columns, start=1):
                    token, share = min(((r[0], float(r[index])) for r in rows), key=lambda x: x[1])
                    print(f"      {column:<22} {share:7.1%}  ({token})")


if __name__ == "__main__":
    main()
