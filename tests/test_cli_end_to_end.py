"""The documented commands as a user types them: `crypto-analytics run`, then `sql`."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_then_sql(local_env, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    # The look-back warm-up has its own test (test_warm_first_run): this one is about the commands.
    run = _cli("run", "--start", "2024-05-05", "--end", "2024-05-05", "--no-warm-up", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "exchange emulator: reusing" in out and "embedded warehouse: reusing" in out
    for asset in (
        "raw_klines",
        "raw_coingecko_markets",
        "bronze_klines",
        "silver_features_1h",
        "gold_market_features",
        "gold_correlations",
    ):
        assert asset in out
    assert "Done: 1 partition(s)" in out and "crypto-analytics sql" in out

    sql = _cli(
        "sql", "select count(distinct token) as tokens, count(*) as n from gold_market_features", env=env
    )
    assert sql.returncode == 0, sql.stderr
    header, _, row, footer = sql.stdout.strip().splitlines()
    assert header.split() == ["TOKENS", "|", "N"] and footer == "(1 row)"
    # 2024-05-05: 37 tokens minus USDT, DAI (no pair) and BUSD (delisted); TAO is listed by then.
    assert row.split() == ["34", "|", str(34 * 24)]

    bad = _cli("sql", "select * from no_such_table", env=env)
    assert bad.returncode == 2 and "query failed" in bad.stderr
