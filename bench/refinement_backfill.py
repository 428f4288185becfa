"""A year of real hourly bars (33 tokens, 2023) through bronze -> silver -> gold: one run for the
whole range (the refinement assets' BackfillPolicy.single_run) against one run per partition.

Both sides run here, in one process, on the same lake and the same embedded warehouse: first
the year as ONE run, then single-day runs of the same job (the way a per-partition backfill or a
daily schedule runs them). A full per-partition year takes hours on 2 cores, so by default a
sample of consecutive days is timed and its mean multiplied by the year's partitions; pass
``--per-partition-days 364`` to time every one.

    .venv/bin/python bench/refinement_backfill.py [--per-partition-days 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "binance_spot_1h_2023"
FIRST, LAST = "2023-01-01", "2023-12-30"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-partition-days", type=int, default=7)
    parser.add_argument("--sample-start", default="2023-06-01", help="first day of the per-partition sample")
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"real data not found at {REAL}")
    with tempfile.TemporaryDirectory(prefix="bench-refine-") as tmp:
        os.environ.update(
            {
                "LAKE_ROOT": f"{tmp}/lake",
                "DAGSTER_HOME": f"{tmp}/dagster",
                "SNOWFLAKE_SCHEMA": "BENCH",
            }
        )
        os.environ.pop("SNOWFLAKE_ACCOUNT", None)
        from crypto_assets.services import free_port

        os.environ["WAREHOUSE_PORT"] = str(free_port())
        from crypto_assets.cli import prepare_dagster_home
        from resources.settings import Settings

        prepare_dagster_home(Settings.from_env())  # no telemetry banner
        run(args)


def run(args: argparse.Namespace) -> None:
    from datetime import date, timedelta

    from dagster import DagsterInstance

    from crypto_assets.definitions import build_definitions
    from crypto_assets.raw.file_import import find_files, import_files
    from crypto_assets.services import local_services
    from resources.settings import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    report = import_files(find_files(REAL), settings, say=lambda _: None)
    print(
        f"imported {report['rows']:,} real hourly klines into raw ({report['partitions']} days) in {time.perf_counter() - started:.1f} s"
    )
    with local_services(settings, emulator=False, say=print):
        job = build_definitions(settings).resolve_job_def("refinement_job")
        instance = DagsterInstance.get()
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        # Warm the JVM and the Python workers once, so neither side pays the start-up.
        job.execute_in_process(instance=instance, run_config=quiet, partition_key=FIRST)

        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            run_config=quiet,
            tags={"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST},
        )
        single = time.perf_counter() - started
        assert result.success, "the single run failed"
        days = (date.fromisoformat(LAST) - date.fromisoformat(FIRST)).days + 1
        print(f"single run: {days} partitions, {single:.1f} s")

        first = date.fromisoformat(args.sample_start)
        seconds = []
        for offset in range(args.per_partition_days):
            key = (first + timedelta(days=offset)).isoformat()
            started = time.perf_counter()
            day = job.execute_in_process(instance=instance, run_config=quiet, partition_key=key)
            seconds.append(time.perf_counter() - started)
            assert day.success, f"the run of {key} failed"
            print(f"  per-partition run {key}: {seconds[-1]:.1f} s")
    mean = statistics.mean(seconds)
    per_partition = mean * days
    measured = "measured" if len(seconds) == days else f"{len(seconds)} runs measured, mean x {days}"
    print(
        f"one run per partition: {per_partition:.0f} s ({measured}; mean {mean:.1f} s, min {min(seconds):.1f} s)"
    )
    print(
        f"single run is {per_partition / single:.1f}x faster; full year in {single / 60:.1f} min (target < 5 min, >= 10x)"
    )


if __name__ == "__main__":
    main()
