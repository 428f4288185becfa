"""A 10-day backfill from the Dagster UI, for real: `crypto-analytics dev` (webserver + daemon),
the GraphQL mutation the UI's backfill dialog sends, the daemon's runs against the emulator and
the embedded warehouse. Every layer and the warehouse then hold the 10 days exactly once, and
every run the daemon launched covers the whole range (raw: up to a month per run; refinement:
one run per asset for the range, never a run per day).

To stay fast: three tokens, and klines at the exchange's 1h and 1d grain only (no 1m)."""

from __future__ import annotations

import os
import signal
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import snowflake.connector
import yaml

from crypto_assets.services import free_port
from resources.settings import Settings
from tests.conftest import FRESH_RUN_TOKENS as TOKENS
from tests.conftest import _small_universe, local_server_env, start_dagster_dev, wait_for_asset_nodes

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
FIRST = date(2024, 4, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(10)]
LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
RUNS = """query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId status jobName assetSelection { path } tags { key value } } } } }"""
ASSETS = """{ assetNodes { assetKey { path } groupName } }"""
MODELS = ("ml_candidate_model", "ml_serving_model", "vol_candidate_model", "vol_serving_model")


def _hourly_only(path: Path) -> Path:
    from crypto_assets.pipeline_config import DEFAULT_PIPELINE_PATH

    raw = yaml.safe_load(DEFAULT_PIPELINE_PATH.read_text())
    raw["ingestion"]["intervals"] = ["1h", "1d"]
    path.write_text(yaml.safe_dump(raw))
    return path


def _graphql(url: str, query: str, **variables: object) -> dict:
    body = httpx.post(url, json={"query": query, "variables": variables}, timeout=30).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_a_10_day_ui_backfill_fills_every_layer_once(
    tmp_path: Path, emulator_url: str, warehouse_port: int, monkeypatch: pytest.MonkeyPatch
):
    ui = free_port()
    env = local_server_env(
        tmp_path,
        emulator_url,
        warehouse_port,
        "T_UI_BACKFILL",
        UNIVERSE_FILE=str(_small_universe(tmp_path / "universe.yaml")),
        PIPELINE_CONFIG=str(_hourly_only(tmp_path / "pipeline.yaml")),
    )
    dev = start_dagster_dev(env, ui, tmp_path)
    url = f"http://127.0.0.1:{ui}/graphql"
    try:
        nodes = wait_for_asset_nodes(url, dev, ASSETS)
        # The backfill dialog: every asset of the daily job (raw -> ... -> the model's daily
        # assets), 10 partitions; the live slice's hours are another partitioning.
        selection = [
            {"path": n["assetKey"]["path"]}
            for n in nodes
            if n["groupName"] != "live" and n["assetKey"]["path"][0] not in MODELS
        ]
        launched = _graphql(
            url,
            LAUNCH,
            params={"assetSelection": selection, "partitionNames": DAYS, "title": "10 days from the UI"},
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = launched["backfillId"]
        status = _wait_for_backfill(url, backfill, timeout=900)
        runs = _graphql(url, RUNS, id=backfill)["runsOrError"]["results"]
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=60)
    assert status == "COMPLETED_SUCCESS", [(r["jobName"], r["status"]) for r in runs]
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    # Every run spans the 10 days (one Spark job per asset for the range) and each asset is in
    # exactly one run. How many runs that takes depends on when the daemon ticks: it launches a
    # child as soon as its parents' materializations are in, which can be while the parents' run
    # is still going, so the downstream assets may come in one run or a few.
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        span = (
            tags.get("dagster/asset_partition_range_start"),
            tags.get("dagster/asset_partition_range_end"),
        )
        assert span == (DAYS[0], DAYS[-1]), (run["runId"], tags)
    launched_assets = [tuple(a["path"]) for r in runs for a in r["assetSelection"]]
    assert sorted(launched_assets) == sorted(tuple(s["path"]) for s in selection)
    assert len(runs) < len(selection), [r["assetSelection"] for r in runs]

    lake = tmp_path / "lake"
    per_token_day = {
        "raw_klines": 24 + 1,
        "bronze_klines": 24 + 1,
        "silver_bars_1h": 24,
        "silver_features_1h": 24,
    }
    for asset, rows in per_token_day.items():
        layer = asset.split("_")[0]
        folders = sorted(p.name for p in (lake / layer / asset).glob("dt=*"))
        assert folders == [f"dt={d}" for d in DAYS], asset
        for day in DAYS:
            table = pq.read_table(lake / layer / asset / f"dt={day}")
            assert table.num_rows == len(TOKENS) * rows, (asset, day)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with snowflake.connector.connect(**Settings.from_env().connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT DT, COUNT(*), COUNT(DISTINCT TOKEN || BAR_TIME::VARCHAR) FROM GOLD_MARKET_FEATURES"
            " GROUP BY DT ORDER BY DT"
        )
        gold = [(str(d), n, distinct) for d, n, distinct in cursor.fetchall()]
        cursor.execute("SELECT COUNT(DISTINCT DT), COUNT(*) FROM ML_PREDICTIONS")
        predictions = cursor.fetchone()
    assert gold == [(d, len(TOKENS) * 24, len(TOKENS) * 24) for d in DAYS]
    assert predictions == (len(DAYS), len(DAYS) * len(TOKENS) * 24)


def _wait_for_backfill(url: str, backfill: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "REQUESTED"
    while time.monotonic() < deadline:
        status = _graphql(url, STATUS, id=backfill)["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            return status
        time.sleep(5)
    raise AssertionError(f"backfill {backfill} still {status} after {timeout} s")
