"""A fresh lake's first run is warm: `crypto-analytics run` fetches the look-back history at the
exchange's 1h and 1d grain first, so indicators are filled from day one (a small universe and
a single day keep it fast; the history is the full default look-back)."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import snowflake.connector
import yaml

from crypto_assets.silver.config import feature_plans
from crypto_assets.universe import DEFAULT_UNIVERSE_PATH
from resources.settings import Settings

pytestmark = pytest.mark.integration
DAY = "2024-06-03"
TOKENS = {"BTC", "ETH", "DOGE", "LINK"}
HOURLY = ("rsi_14", "macd_signal", "bb_pct_b_20", "realized_vol_7d", "beta_btc_7d")


def _small_universe(path: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_UNIVERSE_PATH.read_text())
    raw["tokens"] = [t for t in raw["tokens"] if t["symbol"] in TOKENS]
    path.write_text(yaml.safe_dump(raw))
    return path


def _shares(settings: Settings, table: str, columns: list[str]) -> dict[str, dict[str, float]]:
    counts = ", ".join(f"COUNT({c}) / COUNT(*)" for c in columns)
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT TOKEN, {counts} FROM {table} WHERE NOT IS_GAP GROUP BY TOKEN ORDER BY TOKEN")
        return {row[0]: dict(zip(columns, map(float, row[1:]), strict=True)) for row in cursor.fetchall()}


def test_a_fresh_lake_gives_warm_features_on_the_first_run(local_env, tmp_path, monkeypatch):
    universe = _small_universe(tmp_path / "universe.yaml")
    monkeypatch.setenv("UNIVERSE_FILE", str(universe))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    run = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "run", "--start", DAY, "--end", DAY],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "warm-up: 605 day(s)" in run.stdout and "1h: 30 day(s)" in run.stdout

    settings = Settings.from_env()
    hourly = _shares(settings, "GOLD_MARKET_FEATURES", list(HOURLY))
    daily_columns = [c.name for c in feature_plans()["1d"].columns if not c.by_source] + ["beta_btc_90d"]
    daily = _shares(settings, "GOLD_DAILY_MARKET_FEATURES", daily_columns)
    assert set(hourly) == set(daily) == TOKENS
    cold = {
        (token, column, share)
        for shares in (hourly, daily)
        for token, row in shares.items()
        for column, share in row.items()
        if share < 0.95
    }
    assert cold == set()

    # The next run finds the history in the lake: nothing left to warm up.
    from crypto_assets.cli import plan_warm_up

    assert plan_warm_up(settings, date.fromisoformat(DAY)) is None
