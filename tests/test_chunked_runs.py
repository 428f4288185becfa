"""A range of minutes cut into runs (as `crypto-analytics run` cuts a long 1m range, a month at a
time) ends with the same rows as the range in one run: in every lake dataset and every warehouse
table, row for row. Each day stays its own partition with its own metadata and its checks.

The runs' boundary is the risk: a run's last day reads the next run's first (gold's targets look
a day ahead), so it must be computed again once that day exists (the command's catch-up pass),
or every run of a long range ends with null targets.
"""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.freshness import FRESHNESS_CHECKS
from tests.conftest import (
    MINUTE_RANGE_ASSETS,
    MINUTE_RANGE_DAYS,
    FreshRun,
    assert_same_lake_rows,
    local_server_env,
    minute_range_command,
    minute_range_datasets,
    run_settings,
    warehouse_query,
    warehouse_rows,
    warehouse_tables,
)

pytestmark = pytest.mark.integration


def _instance(env: dict[str, str]) -> DagsterInstance:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        return DagsterInstance.get()


def test_a_range_cut_into_runs_equals_the_range_in_one_run(
    minute_range: FreshRun, tmp_path: Path, emulator_url: str, warehouse_port: int, spark
):
    env = local_server_env(
        tmp_path,
        emulator_url,
        warehouse_port,
        "T_MINUTE_RANGE_CUT",
        UNIVERSE_FILE=minute_range.env["UNIVERSE_FILE"],
    )
    # Two runs of two days: CoinGecko answers a range of more than a day hourly, as it answers the
    # one run's four (a single day would get 5-minute points: another source, not another path).
    command = [sys.executable, "-m", "crypto_assets.cli", *minute_range_command(2)]
    cut = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]

    one, cut_settings = run_settings(minute_range.env), run_settings(env)
    ours, theirs = minute_range_datasets(one.lake_root), minute_range_datasets(cut_settings.lake_root)
    assert {"silver/silver_bars_5m", "silver/silver_features_1h"} <= set(ours)
    assert_same_lake_rows(spark, ours, theirs)

    tables = warehouse_tables(one)
    assert tables == warehouse_tables(cut_settings) and "GOLD_MARKET_FEATURES" in tables
    for table in sorted(tables):
        names, rows = warehouse_rows(one, table)
        cut_names, cut_rows = warehouse_rows(cut_settings, table)
        assert cut_names == names and Counter(cut_rows) == Counter(rows) and rows, table
    # Not vacuous: the first run's last day has its look-ahead targets.
    counts = warehouse_query(
        cut_settings, "SELECT COUNT(TARGET_RETURN_24H) FROM GOLD_MARKET_FEATURES WHERE DT = '2024-03-02'"
    )
    assert counts[0][0] > 0

    # The second run made the first run's last day out of date: the catch-up ran it again.
    caught_up = f"{MINUTE_RANGE_DAYS[0]}..2024-03-02" in cut.stdout and "up to date; running" in cut.stdout
    assert caught_up, cut.stdout

    # Each day its own partition, with its own row count; every check ran in each run.
    graph = build_definitions(cut_settings).resolve_asset_graph()
    keys = [AssetKey(a) for a in MINUTE_RANGE_ASSETS]
    days = {
        r.partition_key for r in _instance(minute_range.env).fetch_materializations(keys[0], limit=99).records
    }
    assert len(days) == 4
    for instance in (_instance(minute_range.env), _instance(env)):
        for key in keys:
            assert instance.get_materialized_partitions(key) == days, key
            for day in days:
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
                ).records
                assert records and "dagster/row_count" in records[0].asset_materialization.metadata, (
                    key,
                    day,
                )
    freshness = {key for checks in FRESHNESS_CHECKS for key in checks.check_keys}  # the sensor's
    check_keys = graph.get_check_keys_for_assets(set(keys) - {AssetKey("raw_coingecko_markets")}) - freshness
    assert len(check_keys) >= 3 * (len(keys) - 1)
    for check in check_keys:
        history = _instance(env).event_log_storage.get_asset_check_execution_history(check, limit=50)
        assert len([r for r in history if r.status.value in ("SUCCEEDED", "FAILED")]) >= 2, check
