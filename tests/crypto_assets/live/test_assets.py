"""The live slice for real: stream files in a lake (the emulator's ground truth, as the stream
writes them), ``live_slice_sensor`` evaluated against a real Dagster instance, the runs it asks
for executed, and GOLD_LIVE_MARKET read back from the embedded warehouse over Snowflake's
protocol."""

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import snowflake.connector
from dagster import DagsterRunStatus, SensorResult, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test, instance_for_test

from crypto_assets.definitions import build_definitions
from crypto_assets.emulator.market import MINUTE_MS, Market
from crypto_assets.gold.schema import LIVE_COLUMNS
from crypto_assets.live.assets import HOUR_FORMAT, STREAM_FRESH
from crypto_assets.services import free_port, start_service
from crypto_assets.streaming.frames import StreamKline, StreamTrade
from crypto_assets.streaming.sink import StreamSink
from crypto_assets.universe import load_universe
from dashboard import browser
from resources.parquet_io import LakeResource
from resources.settings import Settings
from resources.spark import build_spark_resource
from sensors.live import live_slice_sensor

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[3] / ".test-artifacts" / "dashboard"


def _stream_minutes(lake: Path, market: Market, pair: str, opens: list[int], now_ms: int) -> int:
    """What `crypto-analytics stream` writes for these closed minutes: klines and every trade."""
    sink = StreamSink(lake)
    trades = 0
    for minute in opens:
        row = market.klines(pair, "1m", start_ms=minute, end_ms=minute, limit=1, now_ms=now_ms)[0]
        tape = market.trade_tape(pair, minute, now_ms)
        sink.add_kline(
            StreamKline(
                pair, "1m", row[0], row[6], row[1], row[2], row[3], row[4], row[5], row[7], int(row[8]),
                row[9], row[10], row[6] + 1, tape[0]["id"] if tape else -1, tape[-1]["id"] if tape else -1,
            )
        )  # fmt: skip
        for t in tape:
            sink.add_trade(
                StreamTrade(
                    pair, t["id"], t["price"], t["quantity"], t["time"], t["buyer_is_maker"], t["time"]
                )
            )
        trades += len(tape)
    sink.flush()
    return trades


def _rows(settings: Settings, sql: str) -> list[dict]:
    with snowflake.connector.connect(**settings.connector_args()) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        names = [c[0].lower() for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _tick(instance, lake: LakeResource, cursor: str | None) -> SensorResult | SkipReason:
    with build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake}) as context:
        return live_slice_sensor(context)


def test_the_sensor_runs_new_minutes_through_every_layer_into_the_warehouse(
    local_env: Path, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LIVE_FRESHNESS_SLA", "180")
    settings = Settings.from_env()
    lake = LakeResource(root=str(settings.lake_root), pyspark=build_spark_resource(settings))
    market = Market(load_universe())
    now_ms = int(time.time() * 1000)
    last = now_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS  # the newest closed minute
    btc = [last - i * MINUTE_MS for i in range(9, -1, -1)]
    doge = btc[:4]  # DOGE's stream fell silent 6 minutes ago
    btc_trades = _stream_minutes(local_env, market, "BTCUSDT", btc, now_ms)
    _stream_minutes(local_env, market, "DOGEUSDT", doge, now_ms)
    hours = sorted({datetime.fromtimestamp(m / 1000, UTC).strftime(HOUR_FORMAT) for m in btc})

    defs = build_definitions(settings)
    job = defs.resolve_job_def("live_job")
    with instance_for_test() as instance:
        tick = _tick(instance, lake, None)
        assert isinstance(tick, SensorResult), tick
        assert sorted(r.partition_key for r in tick.run_requests) == hours
        for request in tick.run_requests:
            result = job.execute_in_process(partition_key=request.partition_key, instance=instance)
            assert result.success
        # Nothing new: no run. A run in flight: the next tick waits for it.
        assert isinstance(_tick(instance, lake, tick.cursor), SkipReason)
        _stream_minutes(local_env, market, "DOGEUSDT", [last], now_ms)
        busy = create_run_for_test(instance, job_name="live_job", status=DagsterRunStatus.STARTED)
        assert "in flight" in str(_tick(instance, lake, tick.cursor).skip_message)
        instance.report_run_canceled(busy)
        after = _tick(instance, lake, tick.cursor)
        assert isinstance(after, SensorResult) and [r.partition_key for r in after.run_requests] == [
            hours[-1]
        ]
        assert json.loads(after.cursor)["seen_ns"] > json.loads(tick.cursor)["seen_ns"]

        # DOGE's last minute before the silence is older than the SLA: the check names it.
        freshness = next(e for e in result.get_asset_check_evaluations() if e.check_name == STREAM_FRESH)
        assert not freshness.passed and "DOGEUSDT" in freshness.description
        assert "BTCUSDT" not in freshness.description

        rerun = job.execute_in_process(partition_key=hours[-1], instance=instance)
        assert rerun.success

    gold = _rows(settings, "SELECT * FROM gold_live_market ORDER BY token, bar_time")
    assert list(gold[0]) == [name for name, _, _ in LIVE_COLUMNS]  # as the data dictionary says
    by_token = {t: [r for r in gold if r["token"] == t] for t in ("BTC", "DOGE")}
    # Every streamed minute once (the re-run replaced its hour); DOGE's silent minutes are gap rows.
    assert [int(r["bar_time"].replace(tzinfo=UTC).timestamp() * 1000) for r in by_token["BTC"]] == btc
    assert len(by_token["DOGE"]) == len(doge) + 1 + (last - doge[-1]) // MINUTE_MS - 1
    truth = {m: market.klines("BTCUSDT", "1m", start_ms=m, end_ms=m, limit=1, now_ms=now_ms)[0] for m in btc}
    assert sum(r["trades"] for r in by_token["BTC"]) == btc_trades
    for row in by_token["BTC"]:
        kline = truth[int(row["bar_time"].replace(tzinfo=UTC).timestamp() * 1000)]
        assert row["close"] == float(kline[4]) and row["trade_count"] == row["trades"] == int(kline[8])
        tape = market.trade_tape("BTCUSDT", kline[0], now_ms)
        notional = sum(Decimal(t["price"]) * Decimal(t["quantity"]) for t in tape)
        assert row["vwap"] == pytest.approx(float(notional / sum(Decimal(t["quantity"]) for t in tape)))
        assert -1 <= row["trade_imbalance"] <= 1 and not row["is_gap"]
        assert row["loaded_at"] >= row["close_time"]
    # The 15m windows are warm only from the 12th observed minute (80 % of 15).
    assert by_token["BTC"][-1]["realized_volatility_15m"] is None
    assert all(r["return_1m"] is not None for r in by_token["BTC"][1:])

    # What a reader sees: the dashboard's Live page on this warehouse, in headless Chromium.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(
        "dashboard", ["dashboard", "--port", str(port)], lambda: browser.dashboard_ready(url), tmp_path
    )
    try:
        with browser.browser() as chrome:
            page = chrome.new_page(viewport={"width": 1400, "height": 1000})
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            load = browser.load_page(page, url, "live", charts=1, screenshot=ARTIFACTS / "live.png")
            assert load.charts == 1 and load.tables >= 1, load
            main = page.get_by_test_id("stMain").inner_text()
            assert "Live: newest bar closed" in main and "2 tokens" in main, main[:500]
            assert "Live: newest bar" in page.get_by_test_id("stSidebar").inner_text()
    finally:
        service.stop(timeout=30)
