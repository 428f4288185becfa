"""Silver's transformers: pure ``DataFrame -> DataFrame`` functions, chosen and parameterised by
``config/pipeline.yaml``. No Dagster.

A feature is a factory registered with :func:`transformer`: given the interval and its
parameters, it returns a :class:`Feature` naming its columns (with description, valid range and
warm-up), the look-back it needs, and the transform itself. Adding a feature is a config line
plus one such function.

Bars handed to features have one row per slot of the grid (gap rows have a null close unless
carried forward) and carry ``_log_return``, the time-based 1-bar log return (null across a gap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crypto_assets.bronze.transforms import AMOUNT, interval_seconds, lookup, series_column
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.pipeline_config import PipelineConfig, bars_in, parse_duration
from crypto_assets.raw.schema import with_provenance
from crypto_assets.silver.utils import (
    SECONDS_PER_YEAR,
    Grid,
    Recursion,
    WindowCompute,
    annualise,
    ema_bars,
    log_ratio,
    min_count,
    rolling_count,
    rolling_moments,
    rolling_sum,
    span_bars,
    truncated_ema,
    within_reach,
)

BTC = "BTC"
# Floating-point slack for bounds that are exact in theory (a correlation of a series with itself).
EPS = 1e-9


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    description: str
    low: float | None = None
    high: float | None = None
    # Observed bars of history the value needs; it is null before (0: time-based, null by gaps).
    warm_up: int = 0
    # May be null because the source lacks the input (taker volumes in an imported file, BTC).
    by_source: bool = False


@dataclass(frozen=True)
class FeatureContext:
    interval: str
    config: PipelineConfig

    @property
    def seconds(self) -> int:
        return parse_duration(self.interval)

    def bars(self, duration: str, where: str) -> int:
        return bars_in(duration, self.interval, where)

    def span(self, bars: int) -> int:
        return span_bars(bars, self.config.gap_allowance)


@dataclass(frozen=True)
class Feature:
    """A feature's columns, look-back and computation, one of: ``transform``, a Spark
    ``DataFrame -> DataFrame`` for row-wise features; ``recursion``, numpy on a token's observed
    bars (EMA-style indicators counted in bars); ``windows``, numpy on a token's dense slot grid
    (time windows). Every ``recursion`` and ``windows`` of a plan shares one per-token pass."""

    columns: tuple[FeatureColumn, ...]
    lookback_bars: int
    transform: Callable[[DataFrame], DataFrame] | None = None
    recursion: Recursion | None = None
    windows: WindowCompute | None = None


TRANSFORMERS: dict[str, Callable[..., Feature]] = {}


def transformer(factory: Callable[..., Feature]) -> Callable[..., Feature]:
    """Register ``factory`` under its name, the ``feature:`` of a config line."""
    TRANSFORMERS[factory.__name__] = factory
    return factory


def _observed(grid: Grid, values: np.ndarray) -> np.ndarray:
    """Only a bar with a close has features: a gap row stays null."""
    return np.where(grid.observed, values, np.nan)


@transformer
def returns(ctx: FeatureContext, horizons: list[str]) -> Feature:
    """Simple and log returns over each horizon, close to close; null if either bar is missing."""
    steps = {h: ctx.bars(h, "returns.horizons") for h in horizons}
    columns = []
    for h in horizons:
        columns += [
            FeatureColumn(f"return_{h}", f"Simple return over {h}: close / close {h} earlier - 1.", low=-1),
            FeatureColumn(f"log_return_{h}", f"Log return over {h}: ln(close / close {h} earlier)."),
        ]

    def compute(grid: Grid) -> dict[str, np.ndarray]:
        close, out = grid["close"], {}
        for h, n in steps.items():
            previous = grid.shifted("close", n)
            out[f"return_{h}"] = close / previous - 1
            out[f"log_return_{h}"] = log_ratio(close, previous)
        return out

    return Feature(tuple(columns), max(steps.values()) + 1, windows=compute)


@transformer
def realized_volatility(ctx: FeatureContext, windows: list[str]) -> Feature:
    """Annualised standard deviation of 1-bar log returns over each window."""
    steps = {w: ctx.bars(w, "realized_volatility.windows") for w in windows}
    columns = tuple(
        FeatureColumn(
            f"realized_vol_{w}",
            f"Annualised realised volatility: stdev of {ctx.interval} log returns over {w}"
            f" (at least {ctx.config.min_fraction:.0%} of them observed).",
            low=0,
        )
        for w in windows
    )

    def compute(grid: Grid) -> dict[str, np.ndarray]:
        returns, out = grid.log_return, {}
        for w, n in steps.items():
            moments = rolling_moments(returns, None, n)
            enough = moments.count >= min_count(n, ctx.config.min_fraction)
            out[f"realized_vol_{w}"] = _observed(
                grid, np.where(enough, moments.sample_std_x() * annualise(ctx.seconds), np.nan)
            )
        return out

    return Feature(columns, max(steps.values()) + 1, windows=compute)


@transformer
def rsi(ctx: FeatureContext, window: int = 14) -> Feature:
    """Wilder's RSI: EMAs (alpha = 1/window) of up and down moves between observed closes."""
    alpha = 1 / window
    moves = ema_bars(alpha, ctx.config.ema_tolerance)
    needed = moves + 1  # the moves need one more close
    name = f"rsi_{window}"

    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        close = bars["close"].to_numpy()
        change = np.diff(close, prepend=np.nan)
        up = truncated_ema(np.maximum(change, 0.0)[1:], alpha, moves)
        down = truncated_ema(np.maximum(-change, 0.0)[1:], alpha, moves)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(down == 0, 100.0, 100 - 100 / (1 + up / down))
        value = np.concatenate([[np.nan], value])
        ok = within_reach(bars["seconds"].to_numpy(), needed, ctx.span(needed), ctx.seconds)
        return {name: np.where(ok, value, np.nan)}

    column = FeatureColumn(
        name,
        f"RSI({window}), Wilder smoothing (alpha 1/{window}) over the last {needed} observed bars.",
        low=0,
        high=100,
        warm_up=needed,
    )
    return Feature((column,), ctx.span(needed), recursion=compute)


@transformer
def macd(ctx: FeatureContext, fast: int = 12, slow: int = 26, signal: int = 9) -> Feature:
    """MACD line (EMA fast - EMA slow of closes), its signal EMA and the histogram."""
    if fast >= slow:
        raise ValueError(f"macd: fast ({fast}) must be shorter than slow ({slow})")
    a_fast, a_slow, a_signal = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1)
    fast_bars = ema_bars(a_fast, ctx.config.ema_tolerance)
    slow_bars = ema_bars(a_slow, ctx.config.ema_tolerance)
    signal_bars = ema_bars(a_signal, ctx.config.ema_tolerance)

    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        close, seconds = bars["close"].to_numpy(), bars["seconds"].to_numpy()
        line = truncated_ema(close, a_fast, fast_bars) - truncated_ema(close, a_slow, slow_bars)
        line = np.where(within_reach(seconds, slow_bars, ctx.span(slow_bars), ctx.seconds), line, np.nan)
        valid = ~np.isnan(line)
        signal_line = np.full(len(close), np.nan)
        on_line = truncated_ema(line[valid], a_signal, signal_bars)
        reach = within_reach(seconds[valid], signal_bars, ctx.span(signal_bars), ctx.seconds)
        signal_line[valid] = np.where(reach, on_line, np.nan)
        return {"macd": line, "macd_signal": signal_line, "macd_hist": line - signal_line}

    warm = slow_bars + signal_bars - 1
    columns = (
        FeatureColumn("macd", f"MACD line: EMA({fast}) - EMA({slow}) of closes.", warm_up=slow_bars),
        FeatureColumn("macd_signal", f"MACD signal: EMA({signal}) of the MACD line.", warm_up=warm),
        FeatureColumn("macd_hist", "MACD histogram: MACD line - signal.", warm_up=warm),
    )
    return Feature(columns, ctx.span(slow_bars) + ctx.span(signal_bars), recursion=compute)


# Bands narrower than this share of the middle band are rounding noise of a flat window.
FLAT_BAND_RELATIVE = 1e-12


@transformer
def bollinger(ctx: FeatureContext, window: int = 20, stdevs: float = 2) -> Feature:
    """Bollinger bands: mean +- ``stdevs`` population stdevs of the last ``window`` closes."""
    names = {k: f"bb_{k}_{window}" for k in ("middle", "upper", "lower", "pct_b", "width")}
    span = ctx.span(window)

    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        close = bars["close"].to_numpy()
        # The last `window` observed closes: their mean, then the squared deviations (two-pass).
        moments = rolling_moments(close, None, window)
        ok = within_reach(bars["seconds"].to_numpy(), window, span, ctx.seconds)
        middle = np.where(ok, moments.mean_x, np.nan)
        spread = np.sqrt(moments.sxx / window)
        upper, lower = middle + stdevs * spread, middle - stdevs * spread
        with np.errstate(invalid="ignore", divide="ignore"):
            # A flat window's band is rounding noise (twenty closes of 1.0003 average to
            # 1.0002999999999997: a band 9e-16 wide), not a band: %B is null there. Real bands are
            # at least a tick wide, ~1e-8 of the price even for PEPE.
            flat = (upper - lower) <= FLAT_BAND_RELATIVE * np.abs(middle)
            pct_b = np.where(flat, np.nan, (close - lower) / (upper - lower))
            width = (upper - lower) / middle
        return {
            names["middle"]: middle,
            names["upper"]: upper,
            names["lower"]: lower,
            names["pct_b"]: pct_b,
            names["width"]: width,
        }

    columns = (
        FeatureColumn(names["middle"], f"Bollinger middle band: mean of the last {window} closes.", low=0, warm_up=window),
        FeatureColumn(names["upper"], f"Bollinger upper band: middle + {stdevs} population stdevs.", warm_up=window),
        FeatureColumn(names["lower"], f"Bollinger lower band: middle - {stdevs} population stdevs.", warm_up=window),
        FeatureColumn(names["pct_b"], "Bollinger %B: (close - lower) / (upper - lower); null on a flat window.", warm_up=window, by_source=True),
        FeatureColumn(names["width"], "Bollinger band width: (upper - lower) / middle.", low=0, warm_up=window),
    )  # fmt: skip
    return Feature(columns, span, recursion=compute)


@transformer
def atr(ctx: FeatureContext, window: int = 14) -> Feature:
    """Average true range, Wilder smoothing (alpha = 1/window)."""
    alpha = 1 / window
    ranges = ema_bars(alpha, ctx.config.ema_tolerance)
    needed = ranges + 1  # a true range needs the previous close
    name = f"atr_{window}"

    def compute(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
        before = close[:-1]
        true_range = np.maximum.reduce(
            [high[1:] - low[1:], np.abs(high[1:] - before), np.abs(low[1:] - before)]
        )
        value = np.concatenate([[np.nan], truncated_ema(true_range, alpha, ranges)])
        ok = within_reach(bars["seconds"].to_numpy(), needed, ctx.span(needed), ctx.seconds)
        return {name: np.where(ok, value, np.nan)}

    column = FeatureColumn(
        name, f"ATR({window}): Wilder-smoothed true range, in price units.", low=0, warm_up=needed
    )
    return Feature((column,), ctx.span(needed), recursion=compute)


@transformer
def vwap(ctx: FeatureContext, window: str) -> Feature:
    """Rolling VWAP of the typical price (high + low + close) / 3, and the close's deviation."""
    n = ctx.bars(window, "vwap.window")

    def compute(grid: Grid) -> dict[str, np.ndarray]:
        close, volume = grid["close"], grid["volume"]
        typical = (grid["high"] + grid["low"] + close) / 3
        total_volume = rolling_sum(volume, n)
        enough = rolling_count(grid.observed, n) >= min_count(n, ctx.config.min_fraction)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(
                enough & (total_volume > 0), rolling_sum(typical * volume, n) / total_volume, np.nan
            )
            value = _observed(grid, value)
            return {f"vwap_{window}": value, f"vwap_deviation_{window}": close / value - 1}

    columns = (
        FeatureColumn(f"vwap_{window}", f"Volume-weighted typical price over {window}.", low=0),
        FeatureColumn(f"vwap_deviation_{window}", f"close / vwap_{window} - 1."),
    )
    return Feature(columns, n, windows=compute)


@transformer
def volume_zscore(ctx: FeatureContext, window: str) -> Feature:
    """How unusual the bar's volume is: (volume - mean) / stdev over the window."""
    n = ctx.bars(window, "volume_zscore.window")
    name = f"volume_zscore_{window}"

    def compute(grid: Grid) -> dict[str, np.ndarray]:
        volume = grid["volume"]
        moments = rolling_moments(volume, None, n)
        spread = moments.sample_std_x()
        enough = moments.count >= min_count(n, ctx.config.min_fraction)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(enough & (spread > 0), (volume - moments.mean_x) / spread, np.nan)
        return {name: _observed(grid, value)}

    column = FeatureColumn(
        name, f"Volume z-score over {window} (sample stdev); null on constant volume.", by_source=True
    )
    return Feature((column,), n, windows=compute)


@transformer
def taker_imbalance(ctx: FeatureContext) -> Feature:
    """Taker-buy imbalance 2 * taker_buy / volume - 1, where the source reports taker volumes."""

    def apply(bars: DataFrame) -> DataFrame:
        value = F.when(F.col("volume") > 0, 2 * F.col("taker_buy_base_volume") / F.col("volume") - 1)
        return bars.withColumn("taker_buy_imbalance", value)

    column = FeatureColumn(
        "taker_buy_imbalance",
        "Taker-buy imbalance in [-1, 1]: +1 all volume bought by takers; null where the source has no taker volumes.",
        low=-1 - EPS,
        high=1 + EPS,
        by_source=True,
    )
    return Feature((column,), 1, transform=apply)


@transformer
def btc_beta(ctx: FeatureContext, window: str) -> Feature:
    """Rolling correlation and beta of the token's 1-bar log returns to BTC's, same bars."""
    n = ctx.bars(window, "btc_beta.window")

    def compute(grid: Grid) -> dict[str, np.ndarray]:
        # Over the bars where both returns exist (BTC's joined to every token's rows by slot).
        moments = rolling_moments(grid.log_return, grid["_btc"], n)
        enough = moments.count >= min_count(n, ctx.config.min_fraction)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = moments.sxy / np.sqrt(moments.sxx * moments.syy)
            beta = moments.sxy / moments.syy
        valid = enough & np.isfinite(moments.syy) & (moments.syy > 0)
        return {
            f"corr_btc_{window}": _observed(grid, np.where(valid & (moments.sxx > 0), corr, np.nan)),
            f"beta_btc_{window}": _observed(grid, np.where(valid, beta, np.nan)),
        }

    columns = (
        FeatureColumn(f"corr_btc_{window}", f"Correlation of {ctx.interval} log returns with BTC's over {window}.", low=-1 - EPS, high=1 + EPS, by_source=True),
        FeatureColumn(f"beta_btc_{window}", f"Beta to BTC over {window}: cov(token, BTC) / var(BTC).", by_source=True),
    )  # fmt: skip
    return Feature(columns, n + 1, windows=compute)


@transformer
def peg_deviation(ctx: FeatureContext) -> Feature:
    """A stablecoin's close minus $1 (its USDT price; CoinGecko's USD price is in silver_token_markets)."""
    stablecoins = list(ctx.config.stablecoins)

    def apply(bars: DataFrame) -> DataFrame:
        return bars.withColumn("peg_deviation", F.when(F.col("token").isin(stablecoins), F.col("close") - 1))

    column = FeatureColumn(
        "peg_deviation",
        f"Stablecoins only: close - 1; beyond +-{ctx.config.peg_threshold:.0%} the stablecoin_peg check flags it.",
        by_source=True,
    )
    return Feature((column,), 1, transform=apply)


def build_feature(ctx: FeatureContext, name: str, params: dict[str, Any]) -> Feature:
    if name not in TRANSFORMERS:
        raise ValueError(f"unknown feature {name!r}; registered: {sorted(TRANSFORMERS)}")
    try:
        return TRANSFORMERS[name](ctx, **params)
    except TypeError as exc:
        raise ValueError(f"feature {name!r}: bad parameters {params}: {exc}") from None


# Bronze holds any kline interval the exchange serves (1m ... 1d).
SOURCE_INTERVALS = tuple(INTERVAL_MS)


def finer_intervals(interval: str) -> list[str]:
    """Source kline intervals strictly finer than ``interval`` that divide it (1h: 1m ... 30m)."""
    target = parse_duration(interval)
    return [i for i in SOURCE_INTERVALS if parse_duration(i) < target and target % parse_duration(i) == 0]


def canonical_bars(bronze: DataFrame, canonical_series: Mapping[str, str]) -> DataFrame:
    """Bronze rows of each token's canonical series only (``venue/market/pair`` -> token, from
    ``Universe.canonical_series``: Binance spot by default). Other venues and markets stay in
    bronze, keyed apart; silver and gold never mix them into a token's bars."""
    wanted = series_column().isin(sorted(canonical_series))
    return with_provenance(bronze).where(wanted)


def resample_bars(bronze: DataFrame, interval: str) -> DataFrame:
    """Bronze bars -> ``interval`` bars, one per (token, bucket), from the best source.

    **One rule for which source wins a slot**: the exchange's own bar at that interval (a 1h or
    1d kline) when it delivered one; otherwise the bars of the finest interval that has data
    for the slot, resampled (1m from the exchange, or an imported 1h file); otherwise the slot
    is a gap. The exchange's bar wins because it is the exchange's record of the slot: minutes
    our ingestion missed or that the exchange corrected later make a resampled bar wrong, never
    the exchange's (the ``cross_interval_consistency`` check lists the slots where they differ).
    ``bar_source`` records the winner (``native_1h``, ``resampled_1m``; null on a gap).

    OHLC from observed bars, volumes summed (a partial taker or quote volume is null, never an
    undercount), ``bars_observed`` / ``bars_expected`` and ``is_complete`` for partial buckets,
    and the annualised volatility of the finest source bars' log returns inside the bucket
    (``realized_vol_intrabar``, from the minutes even when the exchange's bar wins).
    """
    target = parse_duration(interval)
    fits = [*finer_intervals(interval), *([interval] if interval in SOURCE_INTERVALS else [])]
    names = {parse_duration(i): i for i in SOURCE_INTERVALS}
    source_seconds = interval_seconds(F.col("interval"), SOURCE_INTERVALS)
    bucket_seconds = F.floor(F.unix_timestamp("open_time") / target) * target
    rows = bronze.where(F.col("interval").isin(fits)).select(
        "*", source_seconds.alias("_step"), bucket_seconds.alias("_bucket")
    )
    previous = Window.partitionBy("token", "_bucket", "_step").orderBy("open_time")
    contiguous = (
        F.unix_timestamp("open_time") - F.unix_timestamp(F.lag("open_time").over(previous))
    ) == F.col("_step")
    rows = rows.withColumn(
        "_log_return",
        F.when(
            contiguous, F.log(F.col("close").cast("double") / F.lag("close").over(previous).cast("double"))
        ),
    )
    real = ~F.col("is_gap")
    observed_at = F.when(F.col("open").isNotNull(), F.col("open_time"))

    def complete_sum(column: str) -> Column:
        # Volumes carried by every priced bar, or none: a partial sum would undercount.
        return F.when(F.count(column) == F.count("close"), F.sum(column))

    # Each source's candidate bar for the slot.
    candidates = rows.groupBy("token", "_bucket", "_step").agg(
        F.first("category").alias("category"),
        F.min("symbol").alias("symbol"),
        F.min_by("open", observed_at).alias("open"),
        F.max("high").alias("high"),
        F.min("low").alias("low"),
        F.max_by("close", observed_at).alias("close"),
        F.sum("volume").alias("volume"),
        complete_sum("quote_volume").alias("quote_volume"),
        F.sum("trade_count").alias("trade_count"),
        complete_sum("taker_buy_base_volume").alias("taker_buy_base_volume"),
        complete_sum("taker_buy_quote_volume").alias("taker_buy_quote_volume"),
        F.count(F.when(real, F.lit(1))).alias("bars_observed"),
        (F.stddev_samp("_log_return") * F.sqrt(F.lit(float(SECONDS_PER_YEAR)) / F.first("_step"))).alias(
            "_intrabar_vol"
        ),
    )
    slot = Window.partitionBy("token", "_bucket")
    preference = (
        F.when((F.col("_step") == target) & (F.col("bars_observed") > 0), 0)
        .when(F.col("bars_observed") > 0, 1)
        .otherwise(2)
    )
    finest_first = slot.orderBy("_step").rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    chosen = (
        candidates.withColumn(
            "_intrabar",
            F.first(F.when(F.col("_step") < target, F.col("_intrabar_vol")), ignorenulls=True).over(
                finest_first
            ),
        )
        .withColumn("_rank", F.row_number().over(slot.orderBy(preference, "_step")))
        .where("_rank = 1")
    )
    source_name = lookup({str(k): v for k, v in names.items()}, F.col("_step").cast("string"))
    bar_source = F.when(
        F.col("bars_observed") > 0,
        F.when(F.col("_step") == target, F.concat(F.lit("native_"), source_name)).otherwise(
            F.concat(F.lit("resampled_"), source_name)
        ),
    )
    return chosen.select(
        "token", "category", "symbol",
        F.lit(interval).alias("interval"),
        F.timestamp_seconds("_bucket").alias("open_time"),
        *[F.col(c).cast(AMOUNT).alias(c) for c in ("open", "high", "low", "close", "volume", "quote_volume")],
        "trade_count",
        *[F.col(c).cast(AMOUNT).alias(c) for c in ("taker_buy_base_volume", "taker_buy_quote_volume")],
        F.when(F.col("volume") > 0, F.col("quote_volume").cast("double") / F.col("volume").cast("double")).alias("vwap"),
        bar_source.alias("bar_source"),
        (F.lit(target) / F.col("_step")).cast("int").alias("bars_expected"),
        F.col("bars_observed").cast("int").alias("bars_observed"),
        (F.col("bars_observed") == F.lit(target) / F.col("_step")).alias("is_complete"),
        (F.col("bars_observed") == 0).alias("is_gap"),
        F.col("_intrabar").alias("realized_vol_intrabar"),
    )  # fmt: skip


# The exchange prints volumes with 8 decimals: a sum of n rounded source volumes may differ from
# the exchange's own rounded total by up to n half-units of the last decimal.
VOLUME_DECIMALS = 8
CONSISTENCY_PRICES = ("open", "high", "low", "close")
CONSISTENCY_VOLUMES = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")


def interval_mismatches(bronze: DataFrame, interval: str) -> DataFrame:
    """Slots where the exchange's own ``interval`` bar and the finest finer bars resampled to
    it disagree: open, high, low, close and trade count exactly, volumes to the exchange's 8
    decimals (within the rounding of the summed source bars). One row per disagreeing slot
    with the fields that differ and how many finer bars were observed; slots where only one
    source has data are not compared (``compared`` counts the slots that were)."""
    finer = finer_intervals(interval)
    own = bronze.where((F.col("interval") == interval) & ~F.col("is_gap")).select(
        "token",
        "open_time",
        *[F.col(c).alias(f"x_{c}") for c in (*CONSISTENCY_PRICES, *CONSISTENCY_VOLUMES, "trade_count")],
    )
    if not finer:
        return own.limit(0).select("token", "open_time")
    resampled = resample_bars(bronze.where(F.col("interval").isin(finer)), interval).where(~F.col("is_gap"))
    both = resampled.join(own, on=["token", "open_time"], how="inner")
    tolerance = F.col("bars_observed") * F.lit(0.5 * 10.0**-VOLUME_DECIMALS)
    differ = [
        *[
            F.when(~F.col(c).eqNullSafe(F.col(f"x_{c}")), F.lit(c))
            for c in (*CONSISTENCY_PRICES, "trade_count")
        ],
        *[
            F.when(
                F.col(c).isNotNull()
                & F.col(f"x_{c}").isNotNull()
                & (F.abs(F.col(c) - F.col(f"x_{c}")) > tolerance),
                F.lit(c),
            )
            for c in CONSISTENCY_VOLUMES
        ],
    ]
    return both.select(
        "token",
        "open_time",
        F.col("bar_source").alias("resampled_from"),
        "bars_observed",
        "bars_expected",
        F.array_compact(F.array(*differ)).alias("fields"),
    )


def hourly_token_markets(
    points: DataFrame, token_categories: dict[str, str], stablecoins: list[str]
) -> DataFrame:
    """CoinGecko points -> one row per (token, hour): the hour's last point (known at the hour's
    end, so a bar closing then may use it without seeing the future), the implied circulating
    supply, and for stablecoins the deviation of the USD price from $1."""
    hour = F.date_trunc("hour", "time")
    grouped = points.groupBy("token", hour.alias("hour")).agg(
        F.max_by("price_usd", "time").alias("price_usd"),
        F.max_by("market_cap_usd", "time").alias("market_cap_usd"),
        F.max_by("volume_usd", "time").alias("volume_usd_24h"),
        F.max("time").alias("as_of"),
        F.count(F.lit(1)).alias("points"),
    )
    return grouped.select(
        "token",
        lookup(token_categories, F.col("token")).alias("category"),
        "hour",
        "price_usd",
        "market_cap_usd",
        "volume_usd_24h",
        F.when(F.col("price_usd") > 0, F.col("market_cap_usd") / F.col("price_usd")).alias(
            "circulating_supply"
        ),
        F.when(F.col("token").isin(stablecoins), F.col("price_usd") - 1).alias("peg_deviation"),
        "as_of",
        F.col("points").cast("int").alias("points"),
    )
