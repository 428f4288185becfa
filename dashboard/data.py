"""The dashboard's only way into the warehouse: a fixed catalogue of read-only SELECT statements.

Every statement below is a constant. Values chosen in a widget reach the warehouse only as bound
parameters (``%(name)s``: the Snowflake connector escapes them), and the few identifiers that vary
(which table, which column) come from the fixed maps in this module, looked up by key; a key that
is not in the map is an error, never SQL. Nothing here starts Spark or imports Dagster.

The connection uses the pipeline's own settings (``resources.settings.Settings``): the embedded
warehouse by default, real Snowflake when ``SNOWFLAKE_ACCOUNT`` is set. On real Snowflake, give the
dashboard a role that can only SELECT (``SNOWFLAKE_ROLE``); here, ``fetch`` refuses anything but a
SELECT before it reaches the connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import pandas as pd

from resources.settings import Settings

# Identifier maps: the only table and column names that ever vary in a statement.
FEATURE_TABLES = {"1h": "GOLD_MARKET_FEATURES", "1d": "GOLD_DAILY_MARKET_FEATURES"}
RETURN_COLUMNS = {"1h": "RETURN_1H", "1d": "RETURN_1D"}
VWAP_COLUMNS = {"1h": "VWAP_24H", "1d": "VWAP_30D"}
BETA_COLUMNS = {"1h": "BETA_BTC_7D", "1d": "BETA_BTC_90D"}
# The warehouse tables the pipeline loads, each with the column that dates its rows.
WAREHOUSE_TABLES = {
    "GOLD_MARKET_FEATURES": "DT",
    "GOLD_DAILY_MARKET_FEATURES": "DT",
    "GOLD_CATEGORY_INDEX": "DT",
    "GOLD_CORRELATIONS": "DT",
    "ML_PREDICTIONS": "DT",
    "ML_PERFORMANCE": "DT",
    "VOL_FORECASTS": "DT",
    "GOLD_LIVE_MARKET": "DT",
}
# The live slice's table (crypto_assets/live): a row per token and closed minute.
LIVE_TABLE = "GOLD_LIVE_MARKET"

_SELECT_ONLY = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist|Object '?([\w.]+)'? does not exist", re.I)


class DashboardDataError(RuntimeError):
    """A problem a user can act on; pages show ``str(exc)`` instead of a traceback."""


class WarehouseUnavailable(DashboardDataError):
    pass


class TableMissing(DashboardDataError):
    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(
            f"The warehouse has no table {table} yet. It is loaded by the pipeline: run `make run` "
            "(or materialize it in the Dagster UI), then reload this page."
        )


class Backend(Protocol):
    """Runs one read-only statement with bound parameters; returns lower-case column names."""

    def fetch(self, sql: str, params: dict[str, Any], name: str = "") -> pd.DataFrame: ...

    def describe(self) -> str: ...


def _require_select(sql: str) -> None:
    if not _SELECT_ONLY.match(sql) or ";" in sql.rstrip().rstrip(";"):
        raise DashboardDataError("the dashboard only runs single SELECT statements")


class SnowflakeBackend:
    """The configured warehouse over the Snowflake connector (one short connection per query)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> str:
        s = self.settings
        if s.uses_embedded_warehouse:
            return f"embedded warehouse on {s.warehouse_host}:{s.warehouse_port} ({s.snowflake_database}.{s.snowflake_schema})"
        return f"Snowflake account {s.snowflake_account} ({s.snowflake_database}.{s.snowflake_schema})"

    def fetch(self, sql: str, params: dict[str, Any], name: str = "") -> pd.DataFrame:
        _require_select(sql)
        import snowflake.connector
        from snowflake.connector.errors import DatabaseError, OperationalError, ProgrammingError

        args = dict(self.settings.connector_args())
        if self.settings.uses_embedded_warehouse:
            # Fail fast when nobody serves the embedded warehouse, instead of retrying for minutes.
            args.update(login_timeout=5, network_timeout=60)
        args["session_parameters"] = {"QUERY_TAG": "crypto-analytics-dashboard"}
        try:
            with snowflake.connector.connect(**args) as connection:
                cursor = connection.cursor()
                cursor.execute(sql, params)
                return _typed(cursor.fetchall(), cursor.description or [])
        except ProgrammingError as exc:
            missing = _MISSING_TABLE.search(str(exc))
            if missing:
                raise TableMissing((missing.group(1) or missing.group(2)).upper()) from None
            raise DashboardDataError(f"The warehouse refused a query: {exc.msg}") from None
        except (OperationalError, DatabaseError) as exc:
            raise WarehouseUnavailable(self._unreachable(exc)) from None

    def _unreachable(self, exc: Exception) -> str:
        hint = (
            "Start it with `make dashboard` (it starts the embedded warehouse when nobody serves it) "
            "or `make dev`."
            if self.settings.uses_embedded_warehouse
            else "Check SNOWFLAKE_ACCOUNT, the network and the credentials in the environment."
        )
        reason = getattr(exc, "msg", None) or type(exc).__name__
        return f"The {self.describe()} is not reachable ({reason}). {hint}"


# Snowflake's type codes (cursor.description): FIXED (NUMBER) and REAL (FLOAT).
_FIXED, _REAL = 0, 1


def _typed(rows: list[tuple], description: Sequence[Any]) -> pd.DataFrame:
    """Rows as a frame typed from the result's own column types, not from its values: a column
    that is null on every row (no market caps in an imported year) is still numeric."""
    frame = pd.DataFrame(rows, columns=[d[0].lower() for d in description])
    for column in description:
        name = column[0].lower()
        if column[1] == _REAL or (column[1] == _FIXED and (column[5] or 0) > 0):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif column[1] == _FIXED:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    return frame


_backend_factory: Callable[[], Backend] = lambda: SnowflakeBackend(Settings.from_env())  # noqa: E731


def set_backend_factory(factory: Callable[[], Backend]) -> None:
    """Tests swap in a recording backend; the app always calls :func:`backend`."""
    global _backend_factory
    _backend_factory = factory


def backend() -> Backend:
    return _backend_factory()


def exchange_note() -> str | None:
    """What to tell a reader about where the prices come from when they are not real: on the
    embedded defaults the exchange is the local emulator, whose market is synthetic."""
    try:
        emulated = Settings.from_env().emulator_address is not None
    except ValueError:  # a bad setting is the pipeline's to report
        return None
    if not emulated:
        return None
    return (
        "Exchange data from the local emulator: synthetic prices, not a real market (imported files"
        " are real). Set BINANCE_REST_URL to a real exchange for real data."
    )


@dataclass(frozen=True)
class Query:
    """A statement from the catalogue with its bound parameters (hashable, so it can key a cache)."""

    name: str  # the catalogue function that built it
    sql: str
    params: tuple[tuple[str, Any], ...]

    def run(self, source: Backend) -> pd.DataFrame:
        return source.fetch(self.sql, dict(self.params), self.name)


def _in_list(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """``IN (%(t0)s, %(t1)s, …)``: one bound parameter per value; only the names are generated."""
    params = {f"{prefix}{i}": str(v) for i, v in enumerate(values)}
    return ", ".join(f"%({name})s" for name in params), params


def _pick(mapping: dict[str, str], key: str) -> str:
    if key not in mapping:
        raise DashboardDataError(f"unknown choice {key!r}; expected one of {sorted(mapping)}")
    return mapping[key]


def _query(name: str, sql: str, **params: Any) -> Query:
    return Query(name, sql, tuple(sorted(params.items())))


def _token_filter(tokens: Sequence[str], column: str = "TOKEN") -> tuple[str, dict[str, str]]:
    if not tokens:
        return "", {}
    placeholders, params = _in_list("tok", tokens)
    return f" AND {column} IN ({placeholders})", params


# --- the catalogue ------------------------------------------------------------------------------


def data_bounds() -> Query:
    return _query(
        "data_bounds",
        "SELECT MIN(DT) AS first_day, MAX(DT) AS last_day, MAX(BAR_TIME) AS last_bar FROM GOLD_MARKET_FEATURES",
    )


def token_list() -> Query:
    return _query(
        "token_list",
        "SELECT TOKEN AS token, MIN(CATEGORY) AS category FROM GOLD_DAILY_MARKET_FEATURES GROUP BY TOKEN"
        " UNION SELECT TOKEN, MIN(CATEGORY) FROM GOLD_MARKET_FEATURES"
        " WHERE DT = (SELECT MAX(DT) FROM GOLD_MARKET_FEATURES) GROUP BY TOKEN ORDER BY 2, 1",
    )


def recent_hourly(until: date, tokens: Sequence[str]) -> Query:
    """The last two days of hourly bars up to ``until``: snapshot, heat map and day-on-day changes."""
    where, params = _token_filter(tokens)
    return _query(
        "recent_hourly",
        "SELECT TOKEN AS token, CATEGORY AS category, BAR_TIME AS bar_time, CLOSE AS close,"
        " RETURN_1H AS return_1h, RETURN_24H AS return_24h, QUOTE_VOLUME AS quote_volume,"
        " MARKET_CAP_USD AS market_cap_usd, IS_GAP AS is_gap"
        " FROM GOLD_MARKET_FEATURES WHERE DT BETWEEN DATEADD(day, -1, %(until)s::DATE) AND %(until)s::DATE"
        + where
        + " ORDER BY TOKEN, BAR_TIME",
        until=until.isoformat(),
        **params,
    )


def daily_on(day: date, tokens: Sequence[str]) -> Query:
    where, params = _token_filter(tokens)
    return _query(
        "daily_on",
        "SELECT TOKEN AS token, RETURN_7D AS return_7d, RETURN_30D AS return_30d, MARKET_CAP_USD AS market_cap_usd"
        " FROM GOLD_DAILY_MARKET_FEATURES WHERE DT = (SELECT MAX(DT) FROM GOLD_DAILY_MARKET_FEATURES"
        " WHERE DT <= %(day)s::DATE)" + where,
        day=day.isoformat(),
        **params,
    )


def bars(interval: str, token: str, start: date, end: date) -> Query:
    table = _pick(FEATURE_TABLES, interval)
    vwap = _pick(VWAP_COLUMNS, interval)
    return _query(
        "bars",
        "SELECT BAR_TIME AS bar_time, OPEN AS open, HIGH AS high, LOW AS low, CLOSE AS close,"
        " VOLUME AS volume, IS_GAP AS is_gap, BB_UPPER_20 AS bb_upper, BB_MIDDLE_20 AS bb_middle,"
        f" BB_LOWER_20 AS bb_lower, {vwap} AS vwap, MACD AS macd, MACD_SIGNAL AS macd_signal,"
        " MACD_HIST AS macd_hist, RSI_14 AS rsi, ATR_14 AS atr"
        f" FROM {table} WHERE TOKEN = %(token)s AND DT BETWEEN %(start)s::DATE AND %(end)s::DATE"
        " ORDER BY BAR_TIME",
        token=token,
        start=start.isoformat(),
        end=end.isoformat(),
    )


def category_index(interval: str, start: date, end: date) -> Query:
    _pick(FEATURE_TABLES, interval)  # the interval is a key, validated like every other choice
    return _query(
        "category_index",
        "SELECT CATEGORY AS category, BAR_TIME AS bar_time, CONSTITUENTS AS constituents,"
        " EQUAL_WEIGHTED_RETURN AS equal_weighted_return, CAP_WEIGHTED_RETURN AS cap_weighted_return,"
        " TOTAL_MARKET_CAP_USD AS total_market_cap_usd FROM GOLD_CATEGORY_INDEX"
        " WHERE INTERVAL = %(interval)s AND DT BETWEEN %(start)s::DATE AND %(end)s::DATE"
        " ORDER BY CATEGORY, BAR_TIME",
        interval=interval,
        start=start.isoformat(),
        end=end.isoformat(),
    )


def category_dispersion(interval: str, start: date, end: date, tokens: Sequence[str]) -> Query:
    """Cross-sectional spread of the 1-bar returns inside each category, per bar."""
    table, ret = _pick(FEATURE_TABLES, interval), _pick(RETURN_COLUMNS, interval)
    where, params = _token_filter(tokens)
    return _query(
        "category_dispersion",
        f"SELECT CATEGORY AS category, BAR_TIME AS bar_time, STDDEV_SAMP({ret}) AS dispersion,"
        f" COUNT({ret}) AS tokens FROM {table}"
        " WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE" + where + " GROUP BY CATEGORY, BAR_TIME"
        " ORDER BY CATEGORY, BAR_TIME",
        start=start.isoformat(),
        end=end.isoformat(),
        **params,
    )


def correlation_days() -> Query:
    return _query(
        "correlation_days",
        "SELECT DISTINCT DT AS dt, WINDOW_DAYS AS window_days FROM GOLD_CORRELATIONS ORDER BY DT DESC",
    )


def correlations(day: date, tokens: Sequence[str]) -> Query:
    where_a, params_a = _token_filter(tokens, "TOKEN_A")
    where_b = where_a.replace("TOKEN_A", "TOKEN_B")
    return _query(
        "correlations",
        "SELECT TOKEN_A AS token_a, TOKEN_B AS token_b, CORRELATION AS correlation,"
        " OBSERVATIONS AS observations, WINDOW_DAYS AS window_days"
        " FROM GOLD_CORRELATIONS WHERE DT = %(day)s::DATE" + where_a + where_b,
        day=day.isoformat(),
        **params_a,
    )


def hourly_log_returns(start: date, end: date, tokens: Sequence[str]) -> Query:
    where, params = _token_filter(tokens)
    return _query(
        "hourly_log_returns",
        "SELECT TOKEN AS token, BAR_TIME AS bar_time, LOG_RETURN_1H AS log_return FROM GOLD_MARKET_FEATURES"
        " WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE AND NOT IS_GAP" + where,
        start=start.isoformat(),
        end=end.isoformat(),
        **params,
    )


def betas(interval: str, day: date, tokens: Sequence[str]) -> Query:
    """Each token's beta to BTC at its last bar of ``day``."""
    table, beta = _pick(FEATURE_TABLES, interval), _pick(BETA_COLUMNS, interval)
    where, params = _token_filter(tokens)
    return _query(
        "betas",
        f"SELECT TOKEN AS token, CATEGORY AS category, BAR_TIME AS bar_time, {beta} AS beta"
        f" FROM {table} WHERE DT = %(day)s::DATE AND {beta} IS NOT NULL" + where + " QUALIFY"
        " ROW_NUMBER() OVER (PARTITION BY TOKEN ORDER BY BAR_TIME DESC) = 1 ORDER BY beta DESC",
        day=day.isoformat(),
        **params,
    )


def latest_predictions(tokens: Sequence[str]) -> Query:
    """Each token's prediction for its own latest bar (tokens' data can end at different hours)."""
    where, params = _token_filter(tokens)
    return _query(
        "latest_predictions",
        "SELECT TOKEN AS token, CATEGORY AS category, BAR_TIME AS bar_time, P_UP AS p_up,"
        " PREDICTED_RETURN AS predicted_return, MODEL_VERSION AS model_version, HORIZON AS horizon"
        " FROM ML_PREDICTIONS WHERE DT >= DATEADD(day, -1, (SELECT MAX(DT) FROM ML_PREDICTIONS))"
        + where
        + " QUALIFY ROW_NUMBER() OVER (PARTITION BY TOKEN ORDER BY BAR_TIME DESC) = 1 ORDER BY p_up DESC, token",
        **params,
    )


def latest_vol_forecasts(tokens: Sequence[str]) -> Query:
    """Each token's volatility forecast for its own latest hour, with the baselines beside it."""
    where, params = _token_filter(tokens)
    return _query(
        "latest_vol_forecasts",
        "SELECT TOKEN AS token, CATEGORY AS category, BAR_TIME AS bar_time,"
        " FORECAST_VOL_24H AS forecast, HAR_VOL_24H AS har_rv, EWMA_VOL_24H AS ewma,"
        " LAST_24H_VOL AS last_24h, MODEL_VERSION AS model_version FROM VOL_FORECASTS"
        " WHERE DT >= DATEADD(day, -1, (SELECT MAX(DT) FROM VOL_FORECASTS))"
        + where
        + " QUALIFY ROW_NUMBER() OVER (PARTITION BY TOKEN ORDER BY BAR_TIME DESC) = 1"
        " ORDER BY forecast DESC, token",
        **params,
    )


def vol_forecast_history(token: str, days: int) -> Query:
    """A token's served forecasts of the last ``days`` days beside what was realised (null until
    the next 24 hours are in)."""
    return _query(
        "vol_forecast_history",
        "SELECT BAR_TIME AS bar_time, FORECAST_VOL_24H AS forecast, HAR_VOL_24H AS har_rv,"
        " EWMA_VOL_24H AS ewma, REALIZED_VOL_24H AS realized, MODEL_VERSION AS model_version"
        " FROM VOL_FORECASTS WHERE TOKEN = %(token)s"
        " AND DT >= DATEADD(day, -%(days)s, (SELECT MAX(DT) FROM VOL_FORECASTS)) ORDER BY BAR_TIME",
        token=token,
        days=int(days),
    )


def vol_backtest(token: str) -> Query:
    """The newest volatility candidate's out-of-fold forecasts of one token (walk-forward)."""
    return _query(
        "vol_backtest",
        "SELECT BAR_TIME AS bar_time, FOLD AS fold, REALIZED_VOL_24H AS realized, MODEL_VOL_24H AS model,"
        " HAR_VOL_24H AS har_rv, EWMA_VOL_24H AS ewma, LAST_24H_VOL AS last_24h, MODEL_VERSION AS model_version"
        " FROM VOL_BACKTEST WHERE TOKEN = %(token)s ORDER BY BAR_TIME",
        token=token,
    )


def model_runs() -> Query:
    """The latest training of each kind of model (direction, volatility) with its gate's verdict."""
    return _query(
        "model_runs",
        "SELECT KIND AS kind, MODEL_VERSION AS model_version, TRAINED_AT AS trained_at, PASSED AS passed,"
        " VERDICT AS verdict, TRAINING_ROWS AS training_rows, TRAINING_START AS training_start,"
        " TRAINING_END AS training_end FROM ML_MODEL_RUNS"
        " QUALIFY ROW_NUMBER() OVER (PARTITION BY KIND ORDER BY TRAINED_AT DESC, MODEL_VERSION DESC) = 1"
        " ORDER BY kind",
    )


def model_metrics(version: str) -> Query:
    """Out-of-fold metrics of one model version: per scope (all, each category), metric and predictor."""
    return _query(
        "model_metrics",
        "SELECT SCOPE AS scope, METRIC AS metric, PREDICTOR AS predictor, VALUE AS value"
        " FROM ML_MODEL_METRICS WHERE MODEL_VERSION = %(version)s ORDER BY SCOPE, METRIC, PREDICTOR",
        version=version,
    )


def performance(start: date, end: date) -> Query:
    return _query(
        "performance",
        "SELECT DT AS dt, SCOPE AS scope, PREDICTOR AS predictor, MODEL_VERSION AS model_version,"
        " OUTCOMES AS outcomes, ACCURACY AS accuracy, BRIER AS brier, IC AS ic FROM ML_PERFORMANCE"
        " WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE ORDER BY DT, SCOPE, PREDICTOR",
        start=start.isoformat(),
        end=end.isoformat(),
    )


def table_freshness(table: str) -> Query:
    day_column = _pick(WAREHOUSE_TABLES, table)
    return _query(
        "table_freshness",
        f"SELECT MAX({day_column}) AS last_day, MIN({day_column}) AS first_day, COUNT(*) AS row_count FROM {table}",
    )


def table_days(table: str) -> Query:
    """The days a warehouse table holds rows for (its holes are the days between them it lacks)."""
    day_column = _pick(WAREHOUSE_TABLES, table)
    return _query("table_days", f"SELECT DISTINCT {day_column} AS day FROM {table} ORDER BY 1")


def gaps(start: date, end: date, tokens: Sequence[str]) -> Query:
    where, params = _token_filter(tokens)
    return _query(
        "gaps",
        "SELECT TOKEN AS token, CATEGORY AS category, COUNT(*) AS bars,"
        " COUNT(CASE WHEN IS_GAP THEN 1 END) AS gap_bars, MIN(BAR_TIME) AS first_bar,"
        " MAX(BAR_TIME) AS last_bar FROM GOLD_MARKET_FEATURES"
        " WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE" + where + " GROUP BY TOKEN, CATEGORY"
        " ORDER BY gap_bars DESC, TOKEN",
        start=start.isoformat(),
        end=end.isoformat(),
        **params,
    )


def peg_breaches(start: date, end: date, threshold: float) -> Query:
    return _query(
        "peg_breaches",
        "SELECT TOKEN AS token, BAR_TIME AS bar_time, CLOSE AS close, PEG_DEVIATION AS peg_deviation"
        " FROM GOLD_MARKET_FEATURES WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE"
        " AND ABS(PEG_DEVIATION) > %(threshold)s ORDER BY BAR_TIME DESC, TOKEN",
        start=start.isoformat(),
        end=end.isoformat(),
        threshold=float(threshold),
    )


def venue_tokens(start: date, end: date, tokens: Sequence[str]) -> Query:
    """Tokens of GOLD_VENUE_PRICES in the range, with how many series (venue, market, pair) each has."""
    where, params = _token_filter(tokens)
    return _query(
        "venue_tokens",
        "SELECT TOKEN AS token, COUNT(DISTINCT VENUE || '/' || MARKET || '/' || SYMBOL) AS series"
        " FROM GOLD_VENUE_PRICES WHERE DT BETWEEN %(start)s::DATE AND %(end)s::DATE"
        + where
        + " GROUP BY TOKEN ORDER BY 2 DESC, 1",
        start=start.isoformat(),
        end=end.isoformat(),
        **params,
    )


def venue_prices(token: str, start: date, end: date) -> Query:
    """One token's hourly bars on every venue and market, with USD prices and the basis."""
    return _query(
        "venue_prices",
        "SELECT BAR_TIME AS bar_time, VENUE AS venue, MARKET AS market, SYMBOL AS symbol,"
        " QUOTE_ASSET AS quote_asset, IS_CANONICAL AS is_canonical, CLOSE AS close,"
        " CLOSE_USD AS close_usd, VOLUME AS volume, IS_GAP AS is_gap, BASIS_BPS AS basis_bps,"
        " BASIS_USD_BPS AS basis_usd_bps, QUOTE_USD_SOURCE AS quote_usd_source"
        " FROM GOLD_VENUE_PRICES WHERE TOKEN = %(token)s AND DT BETWEEN %(start)s::DATE AND %(end)s::DATE"
        " ORDER BY BAR_TIME, VENUE, MARKET, SYMBOL",
        token=token,
        start=start.isoformat(),
        end=end.isoformat(),
    )


def quote_prices(start: date, end: date) -> Query:
    """The USD price of every non-USD quote asset per hour and evidence (cross rate or CoinGecko)."""
    return _query(
        "quote_prices",
        "SELECT DISTINCT QUOTE_ASSET AS quote_asset, QUOTE_USD_SOURCE AS source, BAR_TIME AS bar_time,"
        " QUOTE_USD AS quote_usd, QUOTE_USD_LOW AS quote_usd_low, QUOTE_USD_HIGH AS quote_usd_high"
        " FROM GOLD_VENUE_PRICES WHERE QUOTE_ASSET <> 'USD' AND QUOTE_USD IS NOT NULL"
        " AND DT BETWEEN %(start)s::DATE AND %(end)s::DATE ORDER BY BAR_TIME",
        start=start.isoformat(),
        end=end.isoformat(),
    )


def live_status(since: datetime) -> Query:
    """The newest closed minute the live table holds since ``since`` (UTC), and for how many tokens."""
    return _query(
        "live_status",
        "SELECT MAX(CLOSE_TIME) AS newest_close, COUNT(DISTINCT TOKEN) AS tokens FROM GOLD_LIVE_MARKET"
        " WHERE NOT IS_GAP AND BAR_TIME >= %(since)s::TIMESTAMP_NTZ",
        since=since.strftime("%Y-%m-%d %H:%M:%S"),
    )


def live_minutes(since: datetime, tokens: Sequence[str]) -> Query:
    """Every live minute since ``since`` (UTC), gap rows included (the chart shades them)."""
    where, params = _token_filter(tokens)
    return _query(
        "live_minutes",
        "SELECT TOKEN AS token, CATEGORY AS category, BAR_TIME AS bar_time, CLOSE_TIME AS close_time,"
        " OPEN AS open, HIGH AS high, LOW AS low, CLOSE AS close, VOLUME AS volume, IS_GAP AS is_gap,"
        " TRADES AS trades, TRADE_IMBALANCE AS trade_imbalance, VWAP AS vwap,"
        " LARGEST_TRADE_QUOTE AS largest_trade_quote, RETURN_15M AS return_15m,"
        " RETURN_60M AS return_60m, REALIZED_VOLATILITY_60M AS realized_volatility_60m,"
        " LOADED_AT AS loaded_at FROM GOLD_LIVE_MARKET WHERE BAR_TIME >= %(since)s::TIMESTAMP_NTZ"
        + where
        + " ORDER BY TOKEN, BAR_TIME",
        since=since.strftime("%Y-%m-%d %H:%M:%S"),
        **params,
    )
