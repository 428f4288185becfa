"""A small Dagster code location for the Airflow bridge's tests: a daily-partitioned asset job
that records the partition it ran, a job that fails with a known message, one that fails as a
network does (transient), and a slow one.
(The bridge only launches, waits and reports: what the job computes does not matter to it.)"""

import os
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    Definitions,
    OpExecutionContext,
    asset,
    define_asset_job,
    job,
    op,
)

partitions = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


@asset(partitions_def=partitions)
def bridge_partition(context: AssetExecutionContext) -> None:
    """Writes the partition key it ran for, where the test reads it."""
    out = Path(os.environ["BRIDGE_TEST_OUT"])
    with out.open("a") as handle:
        handle.write(f"{context.partition_key} {context.run.tags.get('airflow/dag_id')}\n")


@op
def refuse(context: OpExecutionContext) -> None:
    raise RuntimeError("the warehouse refused the load: quota exceeded (bridge test)")


@op
def lose_connection(context: OpExecutionContext) -> None:
    raise ConnectionError("the exchange did not answer (bridge test)")


@op
def linger(context: OpExecutionContext) -> None:
    time.sleep(300)


@job
def failing_job() -> None:
    refuse()


@job
def flaky_job() -> None:
    lose_connection()


@job
def slow_job() -> None:
    linger()


defs = Definitions(
    assets=[bridge_partition],
    jobs=[
        define_asset_job("ok_job", selection=[bridge_partition], partitions_def=partitions),
        failing_job,
        flaky_job,
        slow_job,
    ],
)
