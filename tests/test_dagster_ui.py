"""`make dev` for real: the CLI starts the services and `dagster dev`; the UI's GraphQL API shows
the lineage raw -> bronze -> silver -> gold with daily partitions and the asset checks, and a run
of `crypto-analytics run` as a run of the job, with each day's own metadata."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crypto_assets.services import free_port, port_open
from dashboard.health import dagster_status
from tests.conftest import start_dagster_dev, wait_for_asset_nodes

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
QUERY = """{ assetNodes { assetKey { path } groupName dependencyKeys { path } isPartitioned description
  partitionKeys assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""
JOB_RUNS = """{ pipelineOrError(params: {repositoryLocationName: "crypto_assets.definitions",
  repositoryName: "__repository__", pipelineName: "refinement_job"}) {
  ... on Pipeline { runs(limit: 5) { runId status tags { key value } } } } }"""
DAYS = """{ assetOrError(assetKey: {path: ["bronze_klines"]}) { ... on Asset {
  assetMaterializations(partitions: ["2024-03-01", "2024-03-02"]) { partition runId
    metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }"""
FAILURE = """{ logsForRun(runId: "%s") { ... on EventConnection { events { __typename
  ... on ExecutionStepFailureEvent { error { message cause { message } } } } } } }"""
SENSORS = """{ sensorsOrError(repositorySelector: {repositoryLocationName: "crypto_assets.definitions",
  repositoryName: "__repository__"}) { ... on Sensors { results { name sensorType sensorState { status } } } } }"""


def test_dev_serves_lineage_partitions_and_checks(tmp_path: Path):
    ui, emulator, warehouse = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "LAKE_ROOT": str(tmp_path / "lake"),
        "BINANCE_REST_URL": f"http://127.0.0.1:{emulator}",
        "BINANCE_WS_URL": f"ws://127.0.0.1:{emulator}",
        "WAREHOUSE_PORT": str(warehouse),
    }
    env.pop("SNOWFLAKE_ACCOUNT", None)
    # Two runs of the CLI first (bronze of two days, no services): the first finds no raw data
    # and fails, saying so; after one raw day lands it succeeds.
    first = _cli_bronze_run(tmp_path, env)
    assert first.returncode == 2 and "none of partitions" in first.stdout + first.stderr
    _write_raw_day(tmp_path / "lake", "2024-03-01")
    second = _cli_bronze_run(tmp_path, env)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    process = start_dagster_dev(env, ui, REPO)
    try:
        nodes = wait_for_asset_nodes(f"http://127.0.0.1:{ui}/graphql", process, QUERY)
        assert port_open("127.0.0.1", emulator) and port_open("127.0.0.1", warehouse)
        # The dashboard's data-health page reads the same API.
        status = dagster_status(f"http://127.0.0.1:{ui}")
        graphql = f"http://127.0.0.1:{ui}/graphql"
        runs = httpx.post(graphql, json={"query": JOB_RUNS}, timeout=30).json()["data"]["pipelineOrError"]
        failed_id = next(r["runId"] for r in runs["runs"] if r["status"] == "FAILURE")
        failure = httpx.post(graphql, json={"query": FAILURE % failed_id}, timeout=30).json()["data"]
        days = httpx.post(graphql, json={"query": DAYS}, timeout=30).json()["data"]["assetOrError"]
        sensors = httpx.post(graphql, json={"query": SENSORS}, timeout=30).json()["data"]["sensorsOrError"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    assert status.reachable, status.error
    # The CLI's runs are runs of the job in the code location: on the job's page, re-executable.
    assert [r["status"] for r in runs["runs"]] == ["SUCCESS", "FAILURE"]  # newest first
    run = runs["runs"][0]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/code_location"] == "crypto_assets.definitions"
    assert tags["dagster/asset_partition_range_start"] == "2024-03-01"
    # The failed run's reason is readable in the UI: the missing upstream partitions.
    messages = [
        e["error"]["cause"]["message"]
        for e in failure["logsForRun"]["events"]
        if e["__typename"] == "ExecutionStepFailureEvent"
    ]
    assert messages and "raw_klines: none of partitions" in messages[0]
    # Each day has its own materialization with its own counts: 24 bars, then none.
    entries = {
        m["partition"]: {e["label"]: e.get("intValue", e.get("text")) for e in m["metadataEntries"]}
        for m in days["assetMaterializations"]
        if m["runId"] == run["runId"]
    }
    assert {day: e["dagster/row_count"] for day, e in entries.items()} == {"2024-03-01": 24, "2024-03-02": 0}
    assert entries["2024-03-01"]["last_time"] == "2024-03-01 23:00:00 UTC"
    assert entries["2024-03-02"]["first_time"] == "no rows"
    # Automation, freshness and failures are watched by sensors that run by default.
    states = {s["name"]: s["sensorState"]["status"] for s in sensors["results"]}
    assert states == {
        "layers_follow_upstream": "RUNNING",
        "layer_freshness_sensor": "RUNNING",
        "run_failure_recorder": "RUNNING",
        "live_slice_sensor": "RUNNING",
    }
    assert len(status.assets) == len(nodes)
    materialized = status.assets.dropna(subset=["last_materialized"])
    assert materialized["asset"].tolist() == ["bronze_klines"]
    gate = status.checks[status.checks["check"] == "promotion_gate"].iloc[0]
    assert gate["asset"] == "ml_candidate_model" and gate["blocking"] and gate["status"] == "NOT_RUN"
    assert gate["link"] == f"http://127.0.0.1:{ui}/assets/ml_candidate_model"
    by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
    assert {n: sorted(d["path"][-1] for d in node["dependencyKeys"]) for n, node in by_name.items()} == {
        "raw_klines": [],
        "raw_coingecko_markets": [],
        "bronze_klines": ["raw_klines"],
        "silver_bars_5m": ["bronze_klines"],
        "silver_bars_1h": ["bronze_klines"],
        "silver_bars_1d": ["bronze_klines"],
        "silver_features_1h": ["silver_bars_1h"],
        "silver_features_1d": ["silver_bars_1d"],
        "silver_token_markets": ["raw_coingecko_markets"],
        "gold_market_features": ["silver_features_1h", "silver_token_markets"],
        "gold_daily_market_features": ["silver_features_1d", "silver_token_markets"],
        "gold_category_index": ["silver_features_1d", "silver_features_1h", "silver_token_markets"],
        "gold_correlations": ["silver_bars_1h"],
        "gold_venue_prices": ["bronze_klines", "silver_token_markets"],
        "gold_bars_5m": ["silver_bars_5m"],
        "ml_candidate_model": ["gold_market_features"],
        "ml_serving_model": ["ml_candidate_model"],
        "ml_predictions": ["gold_market_features", "ml_serving_model"],  # the model it serves with
        "ml_performance": ["gold_market_features", "ml_predictions"],
        # The volatility forecast learns from the lake's hourly bars (warm-up history included).
        "vol_candidate_model": ["silver_bars_1h"],
        "vol_serving_model": ["vol_candidate_model"],
        "vol_forecasts": ["silver_bars_1h", "vol_serving_model"],
        # The live slice: the stream's own tables, then an hour per partition.
        "stream_klines": [],
        "stream_trades": [],
        "raw_live_klines": ["stream_klines"],
        "bronze_live_klines": ["raw_live_klines", "stream_trades"],
        "silver_live_features": ["bronze_live_klines"],
        "gold_live_market": ["silver_live_features"],
    }
    unpartitioned = {
        "ml_candidate_model",
        "ml_serving_model",
        "vol_candidate_model",
        "vol_serving_model",
    }  # a model is trained on a window, not a day
    live = {"raw_live_klines", "bronze_live_klines", "silver_live_features", "gold_live_market"}
    for name, node in by_name.items():
        if name in unpartitioned or name.startswith("stream_"):
            assert not node["isPartitioned"], name
        elif name in live:
            assert node["isPartitioned"] and node["partitionKeys"][0] == "2026-12-01T00", name
        else:
            assert node["isPartitioned"] and node["partitionKeys"][0] == "2017-08-17", name
        layer = name.split("_")[0]
        group = "live" if name in live or name.startswith("stream_") else "ml" if layer == "vol" else layer
        assert node["groupName"] == group, name
        assert node["description"]
    live_checks = [c["name"] for c in by_name["raw_live_klines"]["assetChecksOrError"]["checks"]]
    assert live_checks == ["stream_fresh"]
    gold_checks = {
        c["name"]: c["blocking"] for c in by_name["gold_market_features"]["assetChecksOrError"]["checks"]
    }
    assert gold_checks == {
        "no_duplicate_keys": True,
        "no_null_keys": True,
        "ohlc_consistent": True,
        "token_coverage": False,
        "schema": True,
        "value_ranges": True,
        "freshness_check": False,
    }
    silver_checks = {
        c["name"]: c["blocking"] for c in by_name["silver_features_1h"]["assetChecksOrError"]["checks"]
    }
    assert silver_checks == {
        **gold_checks,
        "null_rates": False,
        "feature_warm_up": True,
        "stablecoin_peg": False,
    }
    model_checks = {
        c["name"]: c["blocking"] for c in by_name["ml_candidate_model"]["assetChecksOrError"]["checks"]
    }
    assert model_checks == {"promotion_gate": True}
    bars_checks = {
        c["name"]: c["blocking"] for c in by_name["silver_bars_1h"]["assetChecksOrError"]["checks"]
    }
    assert bars_checks["cross_interval_consistency"] is False  # a warning that lists the slots
    # Stopping `make dev` stops the services it started.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (port_open("127.0.0.1", emulator) or port_open("127.0.0.1", ui)):
        time.sleep(0.5)
    assert not port_open("127.0.0.1", emulator) and not port_open("127.0.0.1", ui)


def _cli_bronze_run(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "crypto_assets.cli", "run", "--no-ingest", "--no-services"]
    command += ["--start", "2024-03-01", "--end", "2024-03-02", "--assets", "bronze_klines"]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _write_raw_day(lake: Path, day: str) -> None:
    """24 hourly BTC klines as raw_klines holds them (written without Spark)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    from crypto_assets.raw.schema import RAW_KLINES_SCHEMA

    start = int(pd.Timestamp(day, tz="UTC").timestamp() * 1000)
    rows = pd.DataFrame(
        {
            "venue": "binance", "market": "spot", "symbol": "BTCUSDT",
            "open_time": [start + h * 3_600_000 for h in range(24)],
            "open": "1", "high": "2", "low": "0.5", "close": "1.5", "volume": "10",
            "close_time": [start + (h + 1) * 3_600_000 - 1 for h in range(24)],
            "quote_volume": None, "trade_count": None, "taker_buy_base_volume": None,
            "taker_buy_quote_volume": None, "interval": "1h", "source": "file:test.csv",
            "ingested_at": pd.Timestamp(day),
        }
    )  # fmt: skip
    schema = to_arrow_schema(RAW_KLINES_SCHEMA, timezone="UTC")
    folder = lake / "raw" / "raw_klines" / f"dt={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(rows, schema=schema, preserve_index=False), folder / "part-0.parquet")
