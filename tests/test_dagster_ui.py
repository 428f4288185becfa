"""`make dev` for real: the CLI starts the services and `dagster dev`; the UI's GraphQL API shows
the lineage raw -> bronze -> silver -> gold with daily partitions and the asset checks."""

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

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
QUERY = """{ assetNodes { assetKey { path } groupName dependencyKeys { path } isPartitioned description
  partitionKeys assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


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
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dev", "--port", str(ui)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        nodes = _wait_for_assets(f"http://127.0.0.1:{ui}/graphql", process)
        assert port_open("127.0.0.1", emulator) and port_open("127.0.0.1", warehouse)
        # The dashboard's data-health page reads the same API.
        status = dagster_status(f"http://127.0.0.1:{ui}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    assert status.reachable, status.error
    assert len(status.assets) == len(nodes) and status.assets["last_materialized"].isna().all()
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
        "ml_candidate_model": ["gold_market_features"],
        "ml_serving_model": ["ml_candidate_model"],
        "ml_predictions": ["gold_market_features"],
        "ml_performance": ["gold_market_features", "ml_predictions"],
    }
    unpartitioned = {"ml_candidate_model", "ml_serving_model"}  # a model is trained on a window, not a day
    for name, node in by_name.items():
        if name in unpartitioned:
            assert not node["isPartitioned"], name
        else:
            assert node["isPartitioned"] and node["partitionKeys"][0] == "2017-08-17", name
        assert node["groupName"] == name.split("_")[0]
        assert node["description"]
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


def _wait_for_assets(url: str, process: subprocess.Popen, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "crypto-analytics dev exited early"
        try:
            body = httpx.post(url, json={"query": QUERY}, timeout=10).json()
            nodes = body.get("data", {}).get("assetNodes") or []
            if len(nodes) == 17:  # every asset of the code location
                return nodes
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"the Dagster UI did not serve the assets within {timeout} s")
