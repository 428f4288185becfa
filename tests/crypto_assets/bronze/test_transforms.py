import gzip
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd

from crypto_assets.bronze.transforms import BRONZE_COLUMNS, clean_klines
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA

START = datetime(2023, 5, 6, tzinfo=UTC)
END = datetime(2023, 5, 7, tzinfo=UTC)
PAIRS = {"PEPEUSDT": "PEPE", "BTCUSDT": "BTC"}
CATEGORIES = {"PEPE": "Meme", "BTC": "Layer 1"}


def _raw_row(symbol: str, open_time: datetime, close: str, ingested: datetime) -> dict:
    ms = int(open_time.timestamp() * 1000)
    return {
        "symbol": symbol, "open_time": ms, "open": close, "high": close, "low": close, "close": close,
        "volume": "1", "close_time": ms + 59_999, "quote_volume": None, "trade_count": None,
        "taker_buy_base_volume": None, "taker_buy_quote_volume": None, "interval": "1m",
        "source": "test", "ingested_at": ingested.replace(tzinfo=None),
    }  # fmt: skip


def test_latest_ingestion_wins_and_window_is_enforced(spark):
    t = datetime(2023, 5, 6, 12, tzinfo=UTC)
    rows = [
        _raw_row("BTCUSDT", t, "100.0", datetime(2023, 5, 7, 1)),
        _raw_row("BTCUSDT", t, "101.0", datetime(2023, 5, 7, 2)),  # re-fetch corrects the row
        _raw_row("BTCUSDT", datetime(2023, 5, 7, tzinfo=UTC), "102.0", datetime(2023, 5, 7, 2)),  # next day
        _raw_row("XYZUSDT", t, "1.0", datetime(2023, 5, 7, 2)),  # unknown pair keeps a null token
    ]
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    out = clean_klines(raw, PAIRS, CATEGORIES, START, END)
    assert tuple(out.columns) == BRONZE_COLUMNS
    result = {(r["symbol"], r["close"]) for r in out.collect()}
    assert result == {
        ("BTCUSDT", Decimal("101.000000000000000000")),
        ("XYZUSDT", Decimal("1.000000000000000000")),
    }
    assert out.where("token is null").count() == 1
    assert out.schema["open_time"].dataType.simpleString() == "timestamp"


def test_real_pepe_prices_and_volumes_keep_every_digit(spark, real_data):
    with gzip.open(real_data / "binance_spot_1h_2023" / "PEPEUSDT_1h.csv.gz", "rt") as handle:
        real = pd.read_csv(handle, dtype=str).head(48)
    rows = []
    for record in real.to_dict("records"):
        opened = datetime.fromisoformat(record["date"]).replace(tzinfo=UTC)
        row = _raw_row("PEPEUSDT", opened, record["close"], datetime(2023, 12, 31))
        row.update({k: record[k] for k in ("open", "high", "low", "close", "volume")})
        rows.append(row)
    raw = spark.createDataFrame(pd.DataFrame(rows), schema=RAW_KLINES_SCHEMA)
    first = datetime.fromisoformat(real["date"].iloc[0]).replace(tzinfo=UTC)
    out = clean_klines(raw, PAIRS, CATEGORIES, first, first.replace(year=2024)).orderBy("open_time").collect()
    assert len(out) == len(real)
    for bronze, source in zip(out, real.to_dict("records"), strict=True):
        assert bronze["close"] == Decimal(source["close"])  # 1e-6 prices, exactly
        assert bronze["volume"] == Decimal(source["volume"])  # 1e13 volumes, exactly
        assert bronze["category"] == "Meme" and bronze["token"] == "PEPE"
