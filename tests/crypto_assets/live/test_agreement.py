"""The day-close agreement: streamed minutes against the exchange's, on hand-made rows and for
real (stream files of a closed day, then raw_klines of that day from the emulator)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from pyspark.sql import SparkSession

from crypto_assets.definitions import build_definitions
from crypto_assets.emulator.market import MINUTE_MS, Market
from crypto_assets.live.agreement import STREAM_AGREEMENT, disagreements
from crypto_assets.streaming.frames import StreamKline
from crypto_assets.streaming.sink import StreamSink
from crypto_assets.universe import load_universe
from resources.settings import Settings

FIELDS = "venue string, market string, symbol string, interval string, open_time long, open string," \
    " high string, low string, close string, volume string, quote_volume string, trade_count long," \
    " taker_buy_base_volume string, taker_buy_quote_volume string, source string, ingested_at timestamp"  # fmt: skip


def _row(minute: int, close: str, source: str) -> tuple:
    return ("binance", "spot", "BTCUSDT", "1m", minute * MINUTE_MS, "1", "2", "0.5", close, "10", "15", 7,
            "4", "6", source, datetime(2024, 1, 1))  # fmt: skip


def test_slots_that_differ_or_that_one_side_lacks_are_listed(spark: SparkSession):
    stream = spark.createDataFrame(
        [_row(1, "1.5", "binance_ws"), _row(2, "1.60000000", "binance_ws"), _row(4, "1.7", "binance_ws")],
        FIELDS,
    )
    exchange = spark.createDataFrame(
        [
            _row(0, "1.4", "binance_archive"),  # before the stream started: not compared
            _row(1, "1.50000000", "binance_archive"),  # equal as numbers
            _row(2, "1.61", "binance_archive"),
            _row(3, "1.65", "binance_archive"),  # the stream lacks it
            _row(4, "1.7", "imported_csv"),  # not the exchange's: the stream's slot 4 is unmatched
            _row(5, "1.8", "binance_rest"),  # after the stream stopped
        ],
        FIELDS,
    )
    found = {r["open_time"] // MINUTE_MS: r["what"] for r in disagreements(stream, exchange).collect()}
    assert found == {2: "close", 3: "not in the stream", 4: "not from the exchange"}


@pytest.mark.integration
def test_raw_klines_of_a_streamed_day_lists_every_slot_that_differs(local_env: Path, spark):
    day = "2024-03-06"
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000) + 10 * 60 * MINUTE_MS
    market = Market(load_universe())
    sink = StreamSink(local_env)
    for i in range(10):
        minute = start + i * MINUTE_MS
        if i == 6:
            continue  # a minute the stream lost and never repaired
        r = market.klines(
            "BTCUSDT", "1m", start_ms=minute, end_ms=minute, limit=1, now_ms=start + 86_400_000
        )[0]
        close = str(float(r[4]) + 1) if i == 3 else r[4]  # a wrong close
        sink.add_kline(
            StreamKline(
                "BTCUSDT", "1m", r[0], r[6], r[1], r[2], r[3], close, r[5], r[7], int(r[8]), r[9], r[10], r[6]
            )
        )
    sink.flush()
    job = build_definitions(Settings.from_env()).resolve_job_def("market_data_job")
    result = job.execute_in_process(
        partition_key=day,
        instance=DagsterInstance.ephemeral(),
        asset_selection=[AssetKey("raw_klines")],
        run_config={"ops": {"raw_klines": {"config": {"intervals": ["1m"]}}}},
    )
    assert result.success
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == STREAM_AGREEMENT]
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["stream_minutes"].value == 9
    assert check.metadata["slots_differing"].value == 2
    assert [(s["open_time"], s["what"]) for s in check.metadata["slots"].value] == [
        (f"{day} 10:03", "close"),
        (f"{day} 10:06", "not in the stream"),
    ]
