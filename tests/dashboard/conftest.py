"""A small synthetic warehouse for the dashboard's tests, served in-process by fakesnow (the same
SQL translation as the embedded server), and a backend that records every statement it runs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard import data

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(3)]
TOKENS = {
    "BTC": ("Layer 1", 60_000.0, 1.2e12),
    "ETH": ("Layer 1", 3_000.0, 3.6e11),
    "DOGE": ("Meme", 0.15, 2.1e10),
    "UNI": ("DeFi", 10.0, 6e9),
    "LINK": ("Infrastructure", 18.0, 1.1e10),
    "USDC": ("Payment", 1.0, 3e10),
}
GAP_HOURS = {("DOGE", 30), ("DOGE", 31)}  # an outage: two hours with no bar


def hourly_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    hours = pd.date_range(pd.Timestamp(DAYS[0]), periods=24 * len(DAYS), freq="h")
    for token, (category, price, cap) in TOKENS.items():
        walk = price * np.exp(np.cumsum(rng.normal(0, 0.002 if token == "USDC" else 0.01, len(hours))))
        if token == "USDC":
            walk[40] = 0.97  # a peg breach
        for i, time in enumerate(hours):
            gap = (token, i) in GAP_HOURS
            close = float(walk[i])
            prev = float(walk[i - 1]) if i else np.nan
            day_ago = float(walk[i - 24]) if i >= 24 else np.nan
            rows.append(
                {
                    "DT": time.date(),
                    "BAR_TIME": time.to_pydatetime(),
                    "TOKEN": token,
                    "CATEGORY": category,
                    "OPEN": None if gap else prev if i else close,
                    "HIGH": None if gap else close * 1.003,
                    "LOW": None if gap else close * 0.997,
                    "CLOSE": None if gap else close,
                    "VOLUME": None if gap else float(rng.uniform(10, 100)),
                    "QUOTE_VOLUME": None if gap else float(rng.uniform(10, 100) * close),
                    "IS_GAP": gap,
                    "RETURN_1H": None if gap or not i else close / prev - 1,
                    "LOG_RETURN_1H": None if gap or not i else float(np.log(close / prev)),
                    "RETURN_24H": None if gap or i < 24 else close / day_ago - 1,
                    "MARKET_CAP_USD": cap * close / price,
                    "BB_UPPER_20": close * 1.02,
                    "BB_MIDDLE_20": close,
                    "BB_LOWER_20": close * 0.98,
                    "VWAP_24H": close * 0.999,
                    "MACD": 0.1,
                    "MACD_SIGNAL": 0.05,
                    "MACD_HIST": 0.05,
                    "RSI_14": float(rng.uniform(30, 70)),
                    "ATR_14": close * 0.01,
                    "BETA_BTC_7D": 1.0 if token == "BTC" else float(rng.uniform(0.2, 1.5)),
                    "PEG_DEVIATION": close - 1 if token == "USDC" else None,
                }
            )
    return pd.DataFrame(rows)


def daily_frame(hourly: pd.DataFrame) -> pd.DataFrame:
    last = hourly.sort_values("BAR_TIME").groupby(["TOKEN", "DT"]).tail(1)
    return pd.DataFrame(
        {
            "DT": last["DT"],
            "BAR_TIME": [pd.Timestamp(d).to_pydatetime() for d in last["DT"]],
            "TOKEN": last["TOKEN"],
            "CATEGORY": last["CATEGORY"],
            "OPEN": last["CLOSE"],
            "HIGH": last["CLOSE"] * 1.02,
            "LOW": last["CLOSE"] * 0.98,
            "CLOSE": last["CLOSE"],
            "VOLUME": 1000.0,
            "IS_GAP": False,
            "RETURN_1D": 0.01,
            "RETURN_7D": 0.05,
            "RETURN_30D": 0.1,
            "MARKET_CAP_USD": last["MARKET_CAP_USD"],
            "BB_UPPER_20": last["CLOSE"] * 1.05,
            "BB_MIDDLE_20": last["CLOSE"],
            "BB_LOWER_20": last["CLOSE"] * 0.95,
            "VWAP_30D": last["CLOSE"],
            "MACD": 1.0,
            "MACD_SIGNAL": 0.5,
            "MACD_HIST": 0.5,
            "RSI_14": 55.0,
            "ATR_14": last["CLOSE"] * 0.03,
            "BETA_BTC_90D": 1.1,
        }
    )


def category_frame(hourly: pd.DataFrame) -> pd.DataFrame:
    grouped = hourly.dropna(subset=["RETURN_1H"]).groupby(["CATEGORY", "BAR_TIME"])
    frame = grouped.agg(
        CONSTITUENTS=("TOKEN", "count"),
        EQUAL_WEIGHTED_RETURN=("RETURN_1H", "mean"),
        TOTAL_MARKET_CAP_USD=("MARKET_CAP_USD", "sum"),
    ).reset_index()
    frame["CAP_WEIGHTED_RETURN"] = frame["EQUAL_WEIGHTED_RETURN"] * 0.9
    frame["CAP_WEIGHTED_CONSTITUENTS"] = frame["CONSTITUENTS"]
    frame["INTERVAL"] = "1h"
    frame["DT"] = [t.date() for t in frame["BAR_TIME"]]
    return frame


def correlation_frame(hourly: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for day in DAYS:
        window = hourly[hourly["DT"] <= day].pivot_table(
            index="BAR_TIME", columns="TOKEN", values="LOG_RETURN_1H"
        )
        corr = window.corr(min_periods=2)
        for a in corr.index:
            for b in corr.columns:
                rows.append(
                    {
                        "DT": day,
                        "TOKEN_A": a,
                        "TOKEN_B": b,
                        "CORRELATION": float(corr.loc[a, b]),
                        "OBSERVATIONS": len(window),
                        "WINDOW_DAYS": 30,
                    }
                )
    return pd.DataFrame(rows)


def prediction_frames(hourly: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    predictions = hourly[["DT", "BAR_TIME", "TOKEN", "CATEGORY"]].copy()
    predictions["P_UP"] = 0.5 + (hourly["RSI_14"] - 50) / 200
    predictions["PREDICTED_RETURN"] = 0.001
    predictions["MODEL_VERSION"] = "hgb-20240301"
    predictions["HORIZON"] = "24h"
    perf = []
    for day in DAYS[:2]:
        for scope in ["all", *sorted({c for c, *_ in TOKENS.values()})]:
            for predictor, accuracy in (("served", 0.55), ("always_up", 0.5), ("yesterdays_sign", 0.48)):
                perf.append(
                    {
                        "DT": day,
                        "SCOPE": scope,
                        "PREDICTOR": predictor,
                        "MODEL_VERSION": "hgb-20240301",
                        "OUTCOMES": 24,
                        "ACCURACY": accuracy,
                        "BRIER": 0.25,
                        "IC": 0.02,
                    }
                )
    return predictions, pd.DataFrame(perf)


def volatility_frames(hourly: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """VOL_FORECASTS (served by a model; realised known but on the last day), VOL_BACKTEST,
    ML_MODEL_RUNS (a refused direction candidate, a served volatility one) and ML_MODEL_METRICS."""
    rows = hourly[(hourly["TOKEN"] != "USDC") & ~hourly["IS_GAP"]].reset_index(drop=True)
    rng = np.random.default_rng(11)
    realized = 0.5 + 0.2 * rng.random(len(rows))
    forecasts = rows[["DT", "BAR_TIME", "TOKEN", "CATEGORY"]].assign(
        FORECAST_VOL_24H=realized * 0.95,
        MODEL_VOL_24H=realized * 0.95,
        HAR_VOL_24H=realized * 0.9,
        EWMA_VOL_24H=realized * 1.1,
        LAST_24H_VOL=realized * 1.2,
        REALIZED_VOL_24H=np.where(rows["DT"] < DAYS[-1], realized, np.nan),
        MODEL_VERSION="harx-20240303",
    )
    backtest = forecasts[["BAR_TIME", "TOKEN", "CATEGORY"]].assign(
        MODEL_VERSION="harx-20240303",
        FOLD=0,
        REALIZED_VOL_24H=realized,
        MODEL_VOL_24H=realized * 0.95,
        HAR_VOL_24H=realized * 0.9,
        EWMA_VOL_24H=realized * 1.1,
        LAST_24H_VOL=realized * 1.2,
    )
    runs = pd.DataFrame(
        [
            ("hgb-20240303", "direction", "2024-03-03 03:00:00", False,
             "Brier 0.25010 is not below the best baseline's (base_rate: 0.24900)", 4000, "2024-03-01", "2024-03-02"),
            ("harx-20240303", "volatility", "2024-03-03 03:00:00", True,
             "QLIKE 0.2100 beats the best baseline (har_rv: 0.2300)", 3000, "2024-03-01", "2024-03-02"),
        ],
        columns=["MODEL_VERSION", "KIND", "TRAINED_AT", "PASSED", "VERDICT", "TRAINING_ROWS",
                 "TRAINING_START", "TRAINING_END"],
    )  # fmt: skip
    metrics = pd.DataFrame(
        [
            ("harx-20240303", scope, metric, predictor, value)
            for scope in ("all", "Layer 1", "Meme")
            for metric, base in (("qlike", 0.2), ("rmse_log_var", 0.6))
            for predictor, value in (
                ("model", base), ("har_rv", base * 1.1), ("ewma", base * 1.2), ("last_24h", base * 1.5)
            )
        ],
        columns=["MODEL_VERSION", "SCOPE", "METRIC", "PREDICTOR", "VALUE"],
    )  # fmt: skip
    return {
        "VOL_FORECASTS": forecasts,
        "VOL_BACKTEST": backtest,
        "ML_MODEL_RUNS": runs,
        "ML_MODEL_METRICS": metrics,
    }


def venue_frame(hourly: pd.DataFrame) -> pd.DataFrame:
    """Every token's canonical USDT pair, and BTC on Binance.US in USD and in USDC, with USDC
    de-pegged to 0.88 for three hours (hours 40-42)."""
    canonical = pd.DataFrame(
        {
            "DT": hourly["DT"], "BAR_TIME": hourly["BAR_TIME"], "TOKEN": hourly["TOKEN"],
            "CATEGORY": hourly["CATEGORY"], "VENUE": "binance", "MARKET": "spot",
            "SYMBOL": hourly["TOKEN"] + "USDT", "QUOTE_ASSET": "USDT", "IS_CANONICAL": True,
            "CLOSE": hourly["CLOSE"], "VOLUME": hourly["VOLUME"], "IS_GAP": hourly["IS_GAP"],
            "QUOTE_USD": 1.0, "QUOTE_USD_LOW": 1.0, "QUOTE_USD_HIGH": 1.0, "QUOTE_USD_SOURCE": "coingecko",
        }
    )  # fmt: skip
    btc = canonical[canonical["TOKEN"] == "BTC"].reset_index(drop=True)
    usdc = pd.Series(1.0, index=btc.index).where(~btc.index.isin([40, 41, 42]), 0.88)
    us_usd = btc.assign(VENUE="binance_us", SYMBOL="BTCUSD", QUOTE_ASSET="USD", IS_CANONICAL=False,
                        CLOSE=btc["CLOSE"] * 1.0005, QUOTE_USD_SOURCE="par")  # fmt: skip
    us_usdc = btc.assign(
        VENUE="binance_us", SYMBOL="BTCUSDC", QUOTE_ASSET="USDC", IS_CANONICAL=False,
        CLOSE=btc["CLOSE"] * 1.0005 / usdc, QUOTE_USD=usdc, QUOTE_USD_LOW=usdc, QUOTE_USD_HIGH=usdc,
        QUOTE_USD_SOURCE="cross:binance_us/spot BTC USD/USDC 1m",
    )  # fmt: skip
    frame = pd.concat([canonical, us_usd, us_usdc], ignore_index=True)
    frame["CLOSE_USD"] = frame["CLOSE"] * frame["QUOTE_USD"]
    reference = canonical.set_index(["TOKEN", "BAR_TIME"])["CLOSE"]
    keys = pd.MultiIndex.from_frame(frame[["TOKEN", "BAR_TIME"]])
    frame["CANONICAL_CLOSE"] = reference.reindex(keys).to_numpy()
    frame["BASIS_BPS"] = (frame["CLOSE"] / frame["CANONICAL_CLOSE"] - 1) * 1e4
    frame["BASIS_USD_BPS"] = (frame["CLOSE_USD"] / frame["CANONICAL_CLOSE"] - 1) * 1e4
    return frame


@functools.cache
def _tables() -> dict[str, pd.DataFrame]:
    return _build_tables()


def all_tables() -> dict[str, pd.DataFrame]:
    return {name: frame.copy() for name, frame in _tables().items()}


def _build_tables() -> dict[str, pd.DataFrame]:
    hourly = hourly_frame()
    predictions, perf = prediction_frames(hourly)
    return {
        "GOLD_MARKET_FEATURES": hourly,
        "GOLD_DAILY_MARKET_FEATURES": daily_frame(hourly),
        "GOLD_CATEGORY_INDEX": category_frame(hourly),
        "GOLD_CORRELATIONS": correlation_frame(hourly),
        "ML_PREDICTIONS": predictions,
        "ML_PERFORMANCE": perf,
        "GOLD_VENUE_PRICES": venue_frame(hourly),
        **volatility_frames(hourly),
    }


class RecordingBackend(data.SnowflakeBackend):
    """The real backend (fakesnow in-process underneath), recording each statement and its parameters."""

    def __init__(self) -> None:
        from resources.settings import Settings

        super().__init__(Settings.from_env())
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def describe(self) -> str:
        return f"test warehouse {id(self)}"

    def fetch(self, sql: str, params: dict[str, Any], name: str = "") -> pd.DataFrame:
        self.calls.append((name, sql, dict(params)))
        return super().fetch(sql, params, name)

    def params_of(self, name: str) -> list[dict[str, Any]]:
        return [p for n, _, p in self.calls if n == name]


def _sql_type(column: str, series: pd.Series) -> str:
    if column == "DT":
        return "DATE"
    if column == "BAR_TIME":
        return "TIMESTAMP_NTZ"
    if series.dtype == bool:
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "NUMBER(38,0)"
    if pd.api.types.is_float_dtype(series):
        return "FLOAT"
    return "FLOAT" if column not in ("TOKEN", "CATEGORY") and series.map(type).eq(float).any() else "VARCHAR"


def _load(tables: dict[str, pd.DataFrame]) -> None:
    """CREATE TABLE + INSERT, as plain SQL over the connector (the IO manager's types)."""
    import snowflake.connector

    from resources.settings import Settings

    with snowflake.connector.connect(**Settings.from_env().connector_args()) as conn:
        cursor = conn.cursor()
        for name, frame in tables.items():
            columns = ", ".join(f"{c} {_sql_type(c, frame[c])}" for c in frame.columns)
            cursor.execute(f"CREATE OR REPLACE TABLE {name} ({columns})")
            if frame.empty:
                continue
            # Straight into fakesnow's DuckDB: row-by-row INSERTs through its SQL translation take
            # half a minute for these few thousand rows.
            duck = conn._duck_conn  # type: ignore[attr-defined]
            duck.register("frame_to_load", frame)
            duck.execute(f"INSERT INTO {conn.database}.{conn.schema}.{name} SELECT * FROM frame_to_load")
            duck.unregister("frame_to_load")


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBackend]:
    """Fakesnow in-process with the synthetic tables; the dashboard's backend records its queries."""
    import fakesnow
    import streamlit as st

    for name in ("SNOWFLAKE_ACCOUNT", "DAGSTER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SNOWFLAKE_SCHEMA", "ANALYTICS")
    # Nothing listens here: the data-health page must say so, not wait.
    monkeypatch.setenv("DAGSTER_URL", "http://127.0.0.1:9")
    with fakesnow.patch():
        yield from _serve(all_tables(), monkeypatch, st)


def _serve(
    tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, st: Any
) -> Iterator[RecordingBackend]:
    _load(tables)
    backend = RecordingBackend()
    monkeypatch.setattr(data, "_backend_factory", lambda: backend)
    st.cache_data.clear()
    yield backend
    st.cache_data.clear()


@pytest.fixture
def empty_warehouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBackend]:
    """Every table exists, none has a row."""
    import fakesnow
    import streamlit as st

    monkeypatch.delenv("SNOWFLAKE_ACCOUNT", raising=False)
    monkeypatch.setenv("DAGSTER_URL", "http://127.0.0.1:9")
    with fakesnow.patch():
        yield from _serve({k: v.head(0) for k, v in all_tables().items()}, monkeypatch, st)
