"""Recording a range run's per-day materializations: Dagster's SQLite event log as shipped
against the local instance's ``PooledSqliteEventLogStorage`` (crypto_assets/instance_storage.py).

Each round runs one asset with 5 partitioned checks over N daily partitions (as the warm-up's
runs do, with per-day metadata; Dagster plans each check once per day) in a fresh DAGSTER_HOME per storage, alternating the two so that both see the same
machine load. Prints seconds per run, milliseconds per recorded materialization and the ratio.

    .venv/bin/python bench/event_log_storage.py [--days 300] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterInstance,
    DailyPartitionsDefinition,
    InMemoryIOManager,
    Output,
    asset,
    materialize,
)
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from crypto_assets.cli import INSTANCE_CONFIG

DAYS = DailyPartitionsDefinition(start_date="2020-01-01")
DAGSTER_DEFAULT = "telemetry:\n  enabled: false\n"


CHECKS = [f"check_{i}" for i in range(5)]


@asset(
    partitions_def=DAYS,
    check_specs=[AssetCheckSpec(name, asset="history_day", partitions_def=DAYS) for name in CHECKS],
)
def history_day(context: AssetExecutionContext) -> Iterator[Output[int] | AssetCheckResult]:
    for day in context.partition_keys:
        context.add_asset_metadata({"rows": 32, "tokens": 32, "first": f"{day} 00:00"}, partition_key=day)
    yield Output(1)
    for name in CHECKS:
        yield AssetCheckResult(check_name=name, passed=True)


def one_run(config: str, days: int) -> float:
    with tempfile.TemporaryDirectory(prefix="event-log-") as home:
        Path(home, "dagster.yaml").write_text(config)
        os.environ["DAGSTER_HOME"] = home
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(home))
        last = DAYS.get_partition_keys()[days - 1]
        started = time.monotonic()
        result = materialize(
            [history_day],
            instance=instance,
            resources={"io_manager": InMemoryIOManager()},
            tags={ASSET_PARTITION_RANGE_START_TAG: "2020-01-01", ASSET_PARTITION_RANGE_END_TAG: last},
            raise_on_error=True,
        )
        seconds = time.monotonic() - started
        assert result.success
        instance.dispose()
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    timings: dict[str, list[float]] = {
        "dagster's SqliteEventLogStorage": [],
        "PooledSqliteEventLogStorage": [],
    }
    for _ in range(args.rounds):
        timings["dagster's SqliteEventLogStorage"].append(one_run(DAGSTER_DEFAULT, args.days))
        timings["PooledSqliteEventLogStorage"].append(one_run(INSTANCE_CONFIG.read_text(), args.days))
    print(
        f"one asset and {len(CHECKS)} checks over {args.days} daily partitions (a materialization and"
        f" {len(CHECKS)} planned check rows per day), {args.rounds} rounds:"
    )
    medians = {}
    for name, values in timings.items():
        medians[name] = statistics.median(values)
        per_event = medians[name] / args.days * 1000
        print(f"  {name:<34} median {medians[name]:6.2f} s per run, {per_event:5.1f} ms per day")
    default, pooled = medians.values()
    print(f"  ratio: {default / pooled:.1f}x less time per run with the pooled storage")


if __name__ == "__main__":
    main()
