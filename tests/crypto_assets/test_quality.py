from datetime import datetime

import pandas as pd

from crypto_assets.quality import summarize


def test_one_pass_summary_counts_every_problem(spark):
    t = datetime(2026, 1, 1)
    rows = [
        {"token": "BTC", "open_time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5},
        {"token": "BTC", "open_time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5},  # duplicate
        {"token": None, "open_time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5},  # null key
        {"token": "ETH", "open_time": t, "open": 3.0, "high": 2.0, "low": 0.5, "close": 1.5},  # open > high
        {"token": "SOL", "open_time": t, "open": 1.0, "high": 2.0, "low": 1.2, "close": 1.5},  # low > open
    ]
    summary = summarize(
        spark.createDataFrame(pd.DataFrame(rows)), keys=("token", "open_time"), time_column="open_time"
    )
    assert summary.rows == 5
    assert summary.duplicate_keys == 1
    assert summary.null_keys == 1
    assert summary.ohlc_violations == 2
    assert summary.tokens == ("BTC", "ETH", "SOL")


def test_clean_real_candles_pass(spark, real_data):
    frame = pd.read_csv(real_data / "binance_spot_archive_1h" / "BTCUSDT-1h-2023-01.csv")
    frame["token"] = "BTC"
    frame["open_time"] = pd.to_datetime(frame["open_time"], unit="ms")
    cols = ["token", "open_time", "open", "high", "low", "close"]
    summary = summarize(
        spark.createDataFrame(frame[cols]), keys=("token", "open_time"), time_column="open_time"
    )
    assert summary.rows == len(frame) and summary.duplicate_keys == 0
    assert summary.null_keys == 0 and summary.ohlc_violations == 0
