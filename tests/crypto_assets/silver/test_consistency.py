"""The cross-interval check for real: emulator (1m, 1h and 1d klines over HTTP) -> raw -> bronze
-> silver bars, with minutes dropped from the 1m stream on demand."""

from collections.abc import Iterator

import httpx
import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.universe import load_universe
from resources.settings import Settings

pytestmark = pytest.mark.integration
CLEAN, FAULTY = "2024-03-04", "2024-03-05"
ASSETS = ["raw_klines", "bronze_klines", "silver_bars_1h", "silver_bars_1d"]


@pytest.fixture
def drop_minutes(emulator_url: str) -> Iterator:
    def drop(pair: str, start: str, minutes: int) -> None:
        body = {"pair": pair, "start": start, "minutes": minutes}
        httpx.post(f"{emulator_url}/_emulator/missing-minutes", json=body).raise_for_status()

    yield drop
    httpx.delete(f"{emulator_url}/_emulator/missing-minutes")


def _checks(result) -> dict[str, object]:
    return {
        e.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "cross_interval_consistency"
    }


def test_resampled_minutes_must_equal_the_exchanges_bars(local_env, spark, drop_minutes):
    job = build_definitions(Settings.from_env()).resolve_job_def("history_job")
    instance = DagsterInstance.ephemeral()
    selection = [AssetKey(a) for a in ASSETS]
    pairs = len(load_universe().active_pairs(*_day(CLEAN)))

    clean = job.execute_in_process(partition_key=CLEAN, instance=instance, asset_selection=selection)
    assert clean.success
    checks = _checks(clean)
    assert checks["silver_bars_1h"].passed and checks["silver_bars_1d"].passed
    assert checks["silver_bars_1h"].metadata["slots_compared"].value == pairs * 24
    assert checks["silver_bars_1d"].metadata["slots_compared"].value == pairs

    # 30 minutes of BTC lost from the 1m stream only: the exchange's 1h and 1d bars still hold them.
    drop_minutes("BTCUSDT", f"{FAULTY}T10:05:00", 30)
    faulty = job.execute_in_process(partition_key=FAULTY, instance=instance, asset_selection=selection)
    assert faulty.success  # a warning: the data lands, with the exchange's bar
    checks = _checks(faulty)
    hourly, daily = checks["silver_bars_1h"], checks["silver_bars_1d"]
    assert not hourly.passed and not daily.passed and hourly.severity.value == "WARN"
    assert hourly.metadata["slots_mismatched"].value == 1
    (slot,) = hourly.metadata["mismatches"].value
    assert (
        slot["token"] == "BTC" and slot["slot"] == f"{FAULTY} 10:00:00" and slot["bars_observed"] == "30/60"
    )
    assert "volume" in slot["fields"] and "trade_count" in slot["fields"]
    assert daily.metadata["mismatches"].value[0]["slot"] == f"{FAULTY} 00:00:00"

    bars = spark.read.parquet(str(local_env / "silver" / "silver_bars_1h" / f"dt={FAULTY}"))
    btc = bars.where("token = 'BTC' AND hour(open_time) = 10").first()
    assert btc is not None and btc["bar_source"] == "native_1h" and btc["is_complete"]


def _day(day: str):
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def test_5m_bars_without_minute_data_say_so_once(local_env, spark):
    """A range with only 1h klines: 5m bars cannot exist, and coverage says why, once, instead of
    calling every token missing (nor passing: nothing was evaluated)."""
    job = build_definitions(Settings.from_env()).resolve_job_def("history_job")
    selection = [AssetKey(a) for a in ("raw_klines", "bronze_klines", "silver_bars_5m")]
    result = job.execute_in_process(
        partition_key="2024-03-06",
        instance=DagsterInstance.ephemeral(),
        asset_selection=selection,
        run_config={"ops": {"raw_klines": {"config": {"intervals": ["1h"]}}}},
    )
    assert result.success
    (coverage,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == AssetKey("silver_bars_5m") and e.check_name == "token_coverage"
    ]
    assert not coverage.passed and coverage.severity.value == "WARN"
    assert coverage.metadata["missing_tokens"].value == []
    assert (
        coverage.description
        == "nothing to evaluate: no 1m/5m klines in range: 5m bars are resampled from them"
    )
