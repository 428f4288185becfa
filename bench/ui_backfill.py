"""A backfill from the Dagster UI against the same days through the CLI, side by side.

Both sides start from an empty lake and warehouse schema, on one emulator and one embedded
warehouse, with the whole universe at the default intervals (1m, 1h, 1d) and no warm-up (a UI
backfill fetches exactly the days picked). The UI side is `crypto-analytics dev` (webserver +
daemon) and the GraphQL mutation the backfill dialog sends, for every partitioned asset of the
daily job; it prints each run the daemon launched (its assets and duration) and the wall time
from launch to the backfill's completion. The CLI side is `crypto-analytics run --no-warm-up`
over the same days. Issue 29, item 16.

    .venv/bin/python bench/ui_backfill.py [--days 2] [--first 2026-11-20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emulator
from crypto_assets.services import free_port

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
RUNS = """query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId status startTime endTime assetSelection { path } } } } }"""
ASSETS = """{ assetNodes { assetKey { path } isPartitioned groupName } }"""
UNPARTITIONED = ("ml_candidate_model", "ml_serving_model")


def _graphql(url: str, query: str, **variables: object) -> dict:
    body = httpx.post(url, json={"query": query, "variables": variables}, timeout=30).json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


def _env(
    root: Path, rest_url: str, warehouse_port: int, schema: str, coingecko_rate: str | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SNOWFLAKE_ACCOUNT", "SPARK_CONF")}
    env.update(
        LAKE_ROOT=str(root / "lake"),
        DAGSTER_HOME=str(root / "dagster"),
        BINANCE_REST_URL=rest_url,
        BINANCE_WS_URL=rest_url.replace("http", "ws"),
        WAREHOUSE_PORT=str(warehouse_port),
        WAREHOUSE_DATA_DIR=str(root.parent / "warehouse"),
        SNOWFLAKE_SCHEMA=schema,
        DAGSTER_URL="http://127.0.0.1:9",
    )
    if coingecko_rate:
        env["COINGECKO_CALLS_PER_MINUTE"] = coingecko_rate
    return env


def ui_backfill(root: Path, env: dict[str, str], days: list[str]) -> tuple[float, list[dict]]:
    port = free_port()
    dev = subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 180
        nodes: list[dict] = []
        while time.monotonic() < deadline and not nodes:
            try:
                nodes = _graphql(url, ASSETS)["assetNodes"]
            except (httpx.HTTPError, ValueError, RuntimeError):
                time.sleep(1)
        selection = [
            {"path": n["assetKey"]["path"]} for n in nodes if n["isPartitioned"] and n["groupName"] != "live"
        ]
        started = time.monotonic()
        launched = _graphql(
            url, LAUNCH, params={"assetSelection": selection, "partitionNames": days, "title": "bench"}
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(launched)
        backfill = launched["backfillId"]
        status = "REQUESTED"
        while status in ("REQUESTED", "CANCELING", "FAILING"):
            time.sleep(2)
            status = _graphql(url, STATUS, id=backfill)["partitionBackfillOrError"]["status"]
        wall = time.monotonic() - started
        runs = _graphql(url, RUNS, id=backfill)["runsOrError"]["results"]
        print(f"UI backfill of {len(selection)} assets x {len(days)} day(s): {status}")
        return wall, sorted(runs, key=lambda r: r["startTime"] or 0)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=120)


def cli_run(env: dict[str, str], days: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crypto_assets.cli",
            "run",
            "--start",
            days[0],
            "--end",
            days[-1],
            "--no-warm-up",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--first", default=(date.today() - timedelta(days=10)).isoformat())
    parser.add_argument(
        "--coingecko-calls-per-minute",
        help="the emulated CoinGecko plan's rate (default: the product's, the free plan's 30 a minute)",
    )
    args = parser.parse_args()
    first = date.fromisoformat(args.first)
    days = [(first + timedelta(days=i)).isoformat() for i in range(args.days)]
    rate = args.coingecko_calls_per_minute
    with tempfile.TemporaryDirectory(prefix="bench-ui-backfill-") as tmp, emulator() as rest_url:
        root = Path(tmp)
        warehouse_port = free_port()
        wall, runs = ui_backfill(
            root / "ui", _env(root / "ui", rest_url, warehouse_port, "BENCH_UI", rate), days
        )
        for run in runs:
            assets = [a["path"][-1] for a in run["assetSelection"]]
            seconds = (run["endTime"] or 0) - (run["startTime"] or 0)
            print(
                f"  run {run['runId'][:8]} {run['status']:<8} {seconds:6.1f} s  {len(assets):2d} asset(s): {', '.join(assets)}"
            )
        cli = cli_run(_env(root / "cli", rest_url, warehouse_port, "BENCH_CLI", rate), days)
    print(f"UI backfill: {len(runs)} run(s), {wall:.1f} s from launch to completion")
    print(f"CLI run --no-warm-up, same days: {cli:.1f} s")
    print(f"UI backfill / CLI: {wall / cli:.2f}x")


if __name__ == "__main__":
    main()
