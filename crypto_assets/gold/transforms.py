"""Gold: the unified, ML-ready tables. Pure Spark.

Every gold table is keyed by time (``bar_time`` or ``dt``) and built from silver only. Targets
look forward, features look back, and the two never meet: the target of bar t is the return
from t's close to a later close, a value no feature of bar t can see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from crypto_assets.bronze.transforms import series_column
from crypto_assets.silver.transformers import resample_bars
from crypto_assets.silver.utils import bar_at, in_window

MARKET_COLUMNS = ("market_cap_usd", "price_usd", "circulating_supply")


def with_targets(features: DataFrame, horizons: Mapping[str, int], interval_seconds: int) -> DataFrame:
    """``target_return_<h>`` = close(t + h) / close(t) - 1 and its log, from later rows of the
    same token; null when the later bar is missing or not materialized yet."""
    out = features
    for name, bars in horizons.items():
        later = bar_at("close", -bars, interval_seconds)
        out = out.withColumn(f"target_return_{name}", later / F.col("close") - 1).withColumn(
            f"target_log_return_{name}", F.log(later / F.col("close"))
        )
    return out


def markets_per_bar(markets: DataFrame, interval_seconds: int) -> DataFrame:
    """CoinGecko hourly rows -> the last hour of each ``interval`` bucket per token (the value
    known when the bar closes)."""
    bucket = F.timestamp_seconds(F.floor(F.unix_timestamp("hour") / interval_seconds) * interval_seconds)
    return markets.groupBy("token", bucket.alias("bar_time")).agg(
        *[F.max_by(c, "hour").alias(c) for c in MARKET_COLUMNS]
    )


def market_features(
    features: DataFrame,
    markets: DataFrame | None,
    *,
    feature_columns: Sequence[str],
    horizons: Mapping[str, int],
    interval_seconds: int,
    start: datetime,
    end: datetime,
) -> DataFrame:
    """One row per token and bar in ``[start, end)``: every silver feature, the category, the
    USD market cap when CoinGecko has it, and forward-return targets. ``features`` may hold later
    days (the targets' look-ahead)."""
    targeted = in_window(with_targets(features, horizons, interval_seconds), "open_time", start, end)
    frame = targeted.withColumnRenamed("open_time", "bar_time")
    if markets is not None:
        frame = frame.join(markets_per_bar(markets, interval_seconds), on=["token", "bar_time"], how="left")
    else:
        frame = frame.select("*", *[F.lit(None).cast("double").alias(c) for c in MARKET_COLUMNS])
    targets = [f"target{kind}_{h}" for h in horizons for kind in ("_return", "_log_return")]
    return frame.select(
        F.to_date("bar_time").alias("dt"),
        "bar_time",
        *[c for c in feature_columns if c != "open_time"],
        *MARKET_COLUMNS,
        *targets,
    )


def category_index(
    features: DataFrame, markets: DataFrame | None, *, interval: str, interval_seconds: int
) -> DataFrame:
    """Per category and bar: the equal-weighted and the market-cap-weighted mean of the
    constituents' 1-bar returns. Weights are market caps at the end of the previous bar (known
    before the bar starts). A constituent without a return (gap, not listed) is left out."""
    one_bar = f"return_{interval}"
    if one_bar not in features.columns:
        raise ValueError(f"category index: silver_features_{interval} has no {one_bar} (add the horizon)")
    returns = features.where(F.col(one_bar).isNotNull()).select(
        "token", "category", F.col("open_time").alias("bar_time"), F.col(one_bar).alias("r")
    )
    if markets is not None:
        caps = markets_per_bar(markets, interval_seconds).select(
            "token",
            (F.unix_timestamp("bar_time") + interval_seconds).alias("_next"),
            F.col("market_cap_usd").alias("w"),
        )
        returns = (
            returns.withColumn("_at", F.unix_timestamp("bar_time"))
            .join(caps, on=[returns["token"] == caps["token"], F.col("_at") == F.col("_next")], how="left")
            .drop(caps["token"])
        )
    else:
        returns = returns.withColumn("w", F.lit(None).cast("double"))
    weighted = F.col("w").isNotNull() & (F.col("w") > 0)
    grouped = returns.groupBy("category", "bar_time").agg(
        F.count(F.lit(1)).alias("constituents"),
        F.avg("r").alias("equal_weighted_return"),
        F.count(F.when(weighted, F.lit(1))).alias("cap_weighted_constituents"),
        (F.sum(F.when(weighted, F.col("w") * F.col("r"))) / F.sum(F.when(weighted, F.col("w")))).alias(
            "cap_weighted_return"
        ),
        F.sum(F.when(weighted, F.col("w"))).alias("total_market_cap_usd"),
    )
    return grouped.select(
        F.to_date("bar_time").alias("dt"),
        "category",
        F.lit(interval).alias("interval"),
        "bar_time",
        F.col("constituents").cast("int").alias("constituents"),
        "equal_weighted_return",
        F.col("cap_weighted_constituents").cast("int").alias("cap_weighted_constituents"),
        "cap_weighted_return",
        "total_market_cap_usd",
    )


def rolling_correlations(
    features: DataFrame,
    *,
    return_column: str,
    window_days: int,
    min_observations: int,
    start: datetime,
    end: datetime,
) -> DataFrame:
    """For each day in ``[start, end)``: the correlation matrix of every pair of tokens' returns
    over the ``window_days`` days ending that day, in long form (both orders and the diagonal).

    Pairwise sums per day are rolled over the window, so a year of days costs one pass over the
    bars, not one per day. Pairs with fewer than ``min_observations`` common bars are null.
    """
    r = features.where(F.col(return_column).isNotNull()).select(
        "token", "open_time", F.col(return_column).alias("x")
    )
    a, b = r.alias("a"), r.alias("b")
    pairs = a.join(
        b,
        on=[F.col("a.open_time") == F.col("b.open_time"), F.col("a.token") <= F.col("b.token")],
        how="inner",
    )
    daily = pairs.groupBy(
        F.col("a.token").alias("token_a"),
        F.col("b.token").alias("token_b"),
        F.to_date("a.open_time").alias("dt"),
    ).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum("a.x").alias("sx"),
        F.sum("b.x").alias("sy"),
        F.sum(F.col("a.x") * F.col("a.x")).alias("sxx"),
        F.sum(F.col("b.x") * F.col("b.x")).alias("syy"),
        F.sum(F.col("a.x") * F.col("b.x")).alias("sxy"),
    )
    rolling = (
        Window.partitionBy("token_a", "token_b")
        .orderBy(F.unix_date("dt"))
        .rangeBetween(-(window_days - 1), 0)
    )
    sums = daily.select(
        "token_a",
        "token_b",
        "dt",
        *[F.sum(c).over(rolling).alias(c) for c in ("n", "sx", "sy", "sxx", "syy", "sxy")],
    ).where((F.col("dt") >= F.lit(start.date())) & (F.col("dt") < F.lit(end.date())))
    n = F.col("n")
    covariance = n * F.col("sxy") - F.col("sx") * F.col("sy")
    spread = F.sqrt((n * F.col("sxx") - F.col("sx") ** 2) * (n * F.col("syy") - F.col("sy") ** 2))
    value = F.when(
        (n >= min_observations) & (spread > 0),
        F.least(F.lit(1.0), F.greatest(F.lit(-1.0), covariance / spread)),
    )
    upper = sums.select(
        "dt", "token_a", "token_b", value.alias("correlation"), n.cast("int").alias("observations")
    )
    lower = upper.where(F.col("token_a") != F.col("token_b")).select(
        "dt",
        F.col("token_b").alias("token_a"),
        F.col("token_a").alias("token_b"),
        "correlation",
        "observations",
    )
    return upper.unionByName(lower).withColumn("window_days", F.lit(window_days))


VENUE_KEY = ("venue", "market", "symbol")
RATE_KEY = ("venue", "market", "quote_asset")
PAR = "par"
COINGECKO = "coingecko"


def quote_usd_rates(bronze: DataFrame) -> DataFrame:
    """The USD price of each quote asset on each venue and market, per hour, from cross rates:
    where a token trades against USD and against the quote on the same venue (BTCUSD and BTCUSDC
    on Binance.US), one unit of the quote is worth ``close(BTCUSD) / close(BTCUSDC)`` dollars.

    Measured at the finest interval both pairs have (the median over tokens per slot), then per
    hour: the last rate (``quote_usd``), its low and high and the tokens it came from. A
    stablecoin's de-peg shows here at the minute, on any venue that quotes USD."""
    bars = bronze.where(~F.col("is_gap") & F.col("close").isNotNull() & F.col("quote_asset").isNotNull())
    slot = ["venue", "market", "token", "interval", "open_time"]
    usd = bars.where(F.col("quote_asset") == "USD").select(*slot, F.col("close").cast("double").alias("_usd"))
    quoted = bars.where(F.col("quote_asset") != "USD").select(
        *slot, "quote_asset", F.col("close").cast("double").alias("_quoted")
    )
    per_slot = (
        quoted.join(usd, on=slot)
        .groupBy(*RATE_KEY, "interval", "open_time")
        .agg(
            F.percentile_approx(F.col("_usd") / F.col("_quoted"), 0.5, 10_000).alias("_rate"),
            F.array_sort(F.collect_set("token")).alias("_tokens"),
        )
    )
    hourly = per_slot.groupBy(*RATE_KEY, "interval", F.date_trunc("hour", "open_time").alias("bar_time")).agg(
        F.max_by("_rate", "open_time").alias("quote_usd"),
        F.min("_rate").alias("quote_usd_low"),
        F.max("_rate").alias("quote_usd_high"),
        F.array_join(F.array_sort(F.array_distinct(F.flatten(F.collect_list("_tokens")))), ",").alias(
            "_tokens"
        ),
        F.count(F.lit(1)).alias("_slots"),
    )
    finest = Window.partitionBy(*RATE_KEY, "bar_time").orderBy(F.col("_slots").desc())
    return (
        hourly.withColumn("_rank", F.row_number().over(finest))
        .where("_rank = 1")
        .select(
            *RATE_KEY,
            "bar_time",
            "quote_usd",
            "quote_usd_low",
            "quote_usd_high",
            F.concat(
                F.lit("cross:"), F.col("venue"), F.lit("/"), F.col("market"), F.lit(" "), F.col("_tokens"),
                F.lit(" USD/"), F.col("quote_asset"), F.lit(" "), F.col("interval"),
            ).alias("quote_usd_source"),
        )
    )  # fmt: skip


def venue_prices(
    bronze: DataFrame,
    markets: DataFrame | None,
    *,
    canonical_series: Sequence[str],
    start: datetime,
    end: datetime,
) -> DataFrame:
    """One row per series (venue, market, pair) and hour in ``[start, end)``: every venue and
    market bronze holds, the canonical one included, side by side.

    Each series' 1h bar (its own 1h kline, else resampled from its finest bars, as silver does
    for the canonical series), its quote asset and what one unit of it was worth in USD (a cross
    rate on the same venue, else CoinGecko's USD price of the quote, 1 for USD), the close in USD,
    and the basis against the token's canonical series in the same hour: in quote units
    (``basis_bps``) and in USD (``basis_usd_bps``)."""
    series = bronze.where(F.col("token").isNotNull()).withColumn("_series", series_column())
    info = series.select("_series", *VENUE_KEY, "token", "quote_asset").distinct()
    # resample_bars groups by token: give it the series instead, so venues are never mixed.
    bars = resample_bars(series.withColumn("token", F.col("_series")), "1h").select(
        F.col("token").alias("_series"),
        "category",
        F.col("open_time").alias("bar_time"),
        *[
            F.col(c).cast("double").alias(c)
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ],
        "trade_count",
        "bar_source",
        "bars_observed",
        "is_gap",
    )
    bars = in_window(bars, "bar_time", start, end).join(F.broadcast(info), on="_series")
    bars = bars.join(
        quote_usd_rates(in_window(bronze, "open_time", start, end)), on=[*RATE_KEY, "bar_time"], how="left"
    )
    if markets is not None:
        quotes = markets.select(
            F.col("token").alias("_quote"), F.col("hour").alias("bar_time"), F.col("price_usd").alias("_cg")
        )
        bars = bars.join(
            quotes,
            on=[F.col("quote_asset") == F.col("_quote"), bars["bar_time"] == quotes["bar_time"]],
            how="left",
        ).drop(quotes["bar_time"])
    else:
        bars = bars.withColumn("_cg", F.lit(None).cast("double"))
    usd_quote = F.col("quote_asset") == "USD"
    priced = bars.select(
        "*",
        F.when(usd_quote, F.lit(1.0)).otherwise(F.coalesce("quote_usd", "_cg")).alias("_quote_usd"),
        F.when(usd_quote, F.lit(1.0)).otherwise(F.coalesce("quote_usd_low", "_cg")).alias("_quote_usd_low"),
        F.when(usd_quote, F.lit(1.0)).otherwise(F.coalesce("quote_usd_high", "_cg")).alias("_quote_usd_high"),
        F.when(usd_quote, F.lit(PAR))
        .when(F.col("quote_usd").isNotNull(), F.col("quote_usd_source"))
        .when(F.col("_cg").isNotNull(), F.lit(COINGECKO))
        .alias("_quote_usd_source"),
        F.col("_series").isin(sorted(canonical_series)).alias("is_canonical"),
    ).withColumn("close_usd", F.col("close") * F.col("_quote_usd"))
    canonical = priced.where("is_canonical").select(
        "token",
        "bar_time",
        F.col("symbol").alias("canonical_symbol"),
        F.col("close").alias("canonical_close"),
        F.col("close_usd").alias("_canonical_usd"),
    )
    joined = priced.join(canonical, on=["token", "bar_time"], how="left")
    return joined.select(
        F.to_date("bar_time").alias("dt"),
        "bar_time", "token", "category", *VENUE_KEY, "quote_asset", "is_canonical",
        "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "bar_source",
        F.col("bars_observed").cast("int").alias("bars_observed"), "is_gap",
        F.col("_quote_usd").alias("quote_usd"),
        F.col("_quote_usd_low").alias("quote_usd_low"),
        F.col("_quote_usd_high").alias("quote_usd_high"),
        F.col("_quote_usd_source").alias("quote_usd_source"),
        "close_usd", "canonical_symbol", "canonical_close",
        ((F.col("close") / F.col("canonical_close") - 1) * 1e4).alias("basis_bps"),
        ((F.col("close_usd") / F.col("_canonical_usd") - 1) * 1e4).alias("basis_usd_bps"),
    )  # fmt: skip
