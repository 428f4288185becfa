"""Bronze: typed, UTC, deduplicated klines on a complete bar grid, gaps flagged. Pure Spark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crypto_assets.pipeline_config import DAY_SECONDS, parse_duration
from crypto_assets.raw.schema import with_provenance

# 38 digits with 18 decimals: PEPE's 1e-8 ticks and 1e13 volumes both fit with no rounding.
AMOUNT = T.DecimalType(38, 18)
PRICES = ("open", "high", "low", "close")
VOLUMES = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
# One row per series (a pair on a venue's market) and slot; the token is a function of the series.
BRONZE_KEY = ("venue", "market", "symbol", "interval", "open_time")
SERIES = ("venue", "market", "symbol", "token", "interval")
BRONZE_COLUMNS = (
    "token", "category", "venue", "market", "symbol", "quote_asset", "interval", "open_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume", "is_gap",
    "source", "ingested_at",
)  # fmt: skip
LISTING_SCHEMA = T.StructType(
    [
        T.StructField("_series", T.StringType(), False),
        T.StructField("listed_from", T.TimestampType(), False),
        T.StructField("listed_until", T.TimestampType(), True),
    ]
)


def series_column() -> Column:
    """``venue/market/pair``, as :func:`crypto_assets.universe.series_key` spells it."""
    return F.concat_ws("/", "venue", "market", "symbol")


def lookup(mapping: Mapping[str, str], key: Column) -> Column:
    """``mapping[key]`` as a Spark map literal (null for unknown keys)."""
    if not mapping:
        return F.lit(None).cast("string")
    pairs = [F.lit(v) for kv in sorted(mapping.items()) for v in kv]
    return F.create_map(*pairs)[key]


def interval_seconds(interval: Column, intervals: Sequence[str]) -> Column:
    return lookup({i: str(parse_duration(i)) for i in intervals}, interval).cast("long")


def invalid_reason() -> Column:
    """Why a raw row cannot be a bar (null when it can): a price that is not a positive number
    (text, ``inf``, 0), a volume that is not a non-negative number. Such a row is quarantined,
    never cast into the day (a failed cast used to fail the whole day for every source)."""
    reasons = [
        F.when(
            F.col(c).try_cast(AMOUNT).isNull() | (F.col(c).try_cast(AMOUNT) <= 0),
            F.concat(
                F.lit(f"{c} = "), F.coalesce(F.col(c), F.lit("null")), F.lit(" is not a positive price")
            ),
        )
        for c in PRICES
    ] + [
        F.when(
            F.col(c).isNotNull() & (F.col(c).try_cast(AMOUNT).isNull() | (F.col(c).try_cast(AMOUNT) < 0)),
            F.concat(F.lit(f"{c} = "), F.col(c), F.lit(" is not a non-negative number")),
        )
        for c in VOLUMES
    ]
    return F.coalesce(*reasons)


def quarantined_klines(raw: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Raw rows opening in ``[start, end)`` that cannot be bars, with their source and why."""
    raw = with_provenance(raw)
    return raw.where(
        (F.col("open_time") >= F.lit(int(start.timestamp() * 1000)))
        & (F.col("open_time") < F.lit(int(end.timestamp() * 1000)))
    ).select(
        "source", "venue", "market", "symbol", "interval",
        F.timestamp_millis(F.col("open_time")).alias("open_time"),
        invalid_reason().alias("reason"),
    ).where(F.col("reason").isNotNull())  # fmt: skip


def typed_klines(raw: DataFrame, series_tokens: Mapping[str, str]) -> DataFrame:
    """Raw decimal strings and epoch milliseconds as DECIMAL(38,18) and UTC timestamps; the token
    of each series (``venue/market/pair``, see ``Universe.series_tokens``). Rows that cannot be
    bars (:func:`invalid_reason`) are left out: their slot is a gap unless another source has it."""
    raw = with_provenance(raw)
    return raw.where(invalid_reason().isNull()).select(
        lookup(series_tokens, series_column()).alias("token"),
        F.col("venue"),
        F.col("market"),
        F.col("symbol"),
        F.col("interval"),
        F.timestamp_millis(F.col("open_time")).alias("open_time"),
        *[F.col(c).try_cast(AMOUNT).alias(c) for c in (*PRICES, *VOLUMES)],
        F.col("trade_count").cast("long").alias("trade_count"),
        F.col("source"),
        F.col("ingested_at"),
    )


def latest_ingestion(typed: DataFrame) -> DataFrame:
    """Dedup rule: for one slot of one series (venue, market, pair, interval, open_time), the most
    recently ingested row wins, whichever source it came from (a re-fetch or a newer file corrects
    a row, it never adds one). Rows of unknown pairs keep a null token, which the blocking
    ``no_null_keys`` check reports (before anything is published) instead of dropping them."""
    latest_first = Window.partitionBy(*BRONZE_KEY).orderBy(F.col("ingested_at").desc(), F.col("source"))
    return typed.withColumn("_rank", F.row_number().over(latest_first)).where("_rank = 1").drop("_rank")


def expected_grid(
    observed: DataFrame,
    listings: DataFrame,
    intervals: Sequence[str],
    start: datetime,
    list_complete_days: bool = False,
) -> DataFrame:
    """Every interval start a series should have, between its real first and last bars, on the
    days that miss some (a day holding all its slots lists none: nothing of it can be missing;
    ``list_complete_days`` lists them too, as before, for comparisons).

    For each (series, UTC day from ``start``) with at least one bar: the day's slots from the day's
    start if the series had a bar the day before (``observed`` includes that day), else from its
    first bar (a listing, or the first day the data has); up to the day's end, or, when the series
    is no longer listed at the day's end, up to the later of its listing's end and the last real bar. A series absent
    for a whole day gets no grid (reported by ``token_coverage``, not filled). The universe's start
    dates never create gap rows: the data says when a series begins.
    """
    step = interval_seconds(F.col("interval"), intervals)
    day = F.date_trunc("day", "open_time")
    per_day = (
        observed.where(F.col("token").isNotNull())
        .groupBy(*SERIES, day.alias("day"))
        .agg(
            F.min("open_time").alias("_first"),
            F.max("open_time").alias("_last"),
            # What the day holds (one row per slot: ``observed`` is deduplicated), and how many
            # of its bars lie off the interval's grid.
            F.count("*").alias("_bars"),
            F.sum(((F.unix_timestamp("open_time") - F.unix_timestamp(day)) % step != 0).cast("long")).alias(
                "_off_grid"
            ),
        )
    )
    previous = per_day.select(*SERIES, (F.col("day") + F.expr("INTERVAL 1 DAY")).alias("day")).withColumn(
        "_had_previous", F.lit(True)
    )
    days = (
        per_day.where(F.col("day") >= F.lit(start))
        .join(previous, on=[*SERIES, "day"], how="left")
        .withColumn("_series", series_column())
    )
    # Where the series is no longer listed at the day's end (a delisting that day, or earlier if
    # the universe is wrong), the grid stops at the later of the listing's end and the last real
    # bar: bars after it are kept (and named by the bars_within_listing check), never padded.
    # Series without dated listings (other venues' templated pairs) run to the day's end.
    day_start = F.unix_timestamp("day")
    day_end = day_start + F.lit(DAY_SECONDS)
    dated = listings.select(
        F.col("_series").alias("_listed_series"),
        F.unix_timestamp("listed_from").alias("_from"),
        F.unix_timestamp("listed_until").alias("_until"),
    )
    status = (
        days.join(F.broadcast(dated), on=F.col("_series") == F.col("_listed_series"), how="left")
        .groupBy(*SERIES, "day", "_first", "_last", "_bars", "_off_grid", "_had_previous")
        .agg(
            F.count("_listed_series").alias("_listings"),
            F.max(
                (F.col("_from") < day_end) & (F.col("_until").isNull() | (F.col("_until") >= day_end))
            ).alias("_listed_at_end"),
            F.max(F.when(F.col("_until").between(day_start, day_end), F.col("_until"))).alias("_end"),
        )
    )
    lo = F.when(F.col("_had_previous"), day_start).otherwise(F.unix_timestamp("_first"))
    delisted = (F.col("_listings") > 0) & ~F.coalesce(F.col("_listed_at_end"), F.lit(False))
    hi = F.when(delisted, F.greatest(F.unix_timestamp("_last") + step, F.col("_end"))).otherwise(day_end)
    bounds = status.select(*SERIES, lo.alias("_lo"), hi.alias("_hi"), "_bars", "_off_grid")
    # A day whose bars are all on the grid and as many as its slots has no gap: its slots are
    # never listed (a month of 1m is ~1.4 M slots, nearly all delivered), only the others'.
    # (Every bar of the day lies in [lo, hi): lo is the day's start or its first bar, hi its end
    # or past its last bar.)
    slots_of_day = F.floor((F.col("_hi") - F.col("_lo")) / step)
    complete = (F.col("_off_grid") == 0) & (F.col("_bars") == slots_of_day)
    listed = F.col("_hi") > F.col("_lo")
    slots = bounds.where(listed if list_complete_days else listed & ~complete).select(
        *SERIES, F.explode(F.sequence("_lo", F.col("_hi") - step, step)).alias("_slot")
    )
    return slots.withColumn("open_time", F.timestamp_seconds("_slot")).select(*SERIES, "open_time")


def _quote_asset(series_quotes: Mapping[str, str] | None) -> Column:
    """The series' quote asset: from the universe's map, else what follows the token in the pair."""
    from_pair = F.when(
        F.col("token").isNotNull() & F.col("symbol").startswith(F.col("token")),
        F.nullif(F.regexp_replace(F.expr("substring(symbol, length(token) + 1)"), "_PERP$", ""), F.lit("")),
    )
    if not series_quotes:
        return from_pair
    return F.coalesce(lookup(series_quotes, series_column()), from_pair)


def outside_listing(listings: Sequence[tuple[str, datetime, datetime | None]]) -> Column:
    """True for an observed bar of a series with dated listings that falls outside all of them:
    one column (no join), so that it is counted in the frame's summary pass. Listings are
    (``venue/market/pair``, from, until)."""
    spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for series, since, until in listings:
        spans.setdefault(series, []).append((since, until))
    if not spans:
        return F.lit(False)
    series, time = series_column(), F.col("open_time")
    inside = F.lit(False)
    for name, periods in sorted(spans.items()):
        during = F.lit(False)
        for since, until in periods:
            after = time >= F.lit(_aware(since))
            during = during | (after if until is None else after & (time < F.lit(_aware(until))))
        inside = inside | ((series == F.lit(name)) & during)
    return ~F.col("is_gap") & series.isin(sorted(spans)) & ~inside


def _aware(moment: datetime) -> datetime:
    """A literal Spark reads as this UTC instant (a naive one would be read in local time)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def fill_gaps(bars: DataFrame, gap_policy: str, max_carry_seconds: int) -> DataFrame:
    """``carry_forward``: a gap row takes the last observed close (no older than ``max_carry``)
    as open, high, low and close, with zero volumes. It stays ``is_gap = true``."""
    if gap_policy != "carry_forward":
        return bars
    previous = (
        Window.partitionBy(*SERIES)
        .orderBy(F.unix_timestamp("open_time"))
        .rangeBetween(-max_carry_seconds, -1)
    )
    carried = F.last(F.when(~F.col("is_gap"), F.col("close")), ignorenulls=True).over(previous)
    filled = bars.withColumn("_carried", carried)
    zero = F.lit(0).cast(AMOUNT)
    fillable = F.col("is_gap") & F.col("_carried").isNotNull()
    return filled.select(
        *[
            F.when(fillable, F.col("_carried")).otherwise(F.col(c)).alias(c) if c in PRICES
            else F.when(fillable, zero).otherwise(F.col(c)).alias(c) if c in VOLUMES
            else F.when(fillable, F.lit(0).cast("long")).otherwise(F.col(c)).alias(c) if c == "trade_count"
            else F.col(c)
            for c in bars.columns
        ]
    )  # fmt: skip


def listing_frame(
    spark: SparkSession, listings: Sequence[tuple[str, datetime, datetime | None]]
) -> DataFrame:
    """(``venue/market/pair``, from, until) rows, naive UTC, for joins."""
    return spark.createDataFrame(
        [
            (series, since.replace(tzinfo=None), until.replace(tzinfo=None) if until else None)
            for series, since, until in listings
        ],
        LISTING_SCHEMA,
    )


def clean_klines(
    raw: DataFrame,
    series_tokens: Mapping[str, str],
    token_categories: Mapping[str, str],
    listings: Sequence[tuple[str, datetime, datetime | None]],
    start: datetime,
    end: datetime,
    intervals: Sequence[str],
    gap_policy: str = "leave_missing",
    max_carry_seconds: int = DAY_SECONDS,
    series_quotes: Mapping[str, str] | None = None,
) -> DataFrame:
    """Bronze rows for bars opening in ``[start, end)``: one per (venue, market, pair, interval,
    open_time).

    ``raw`` should hold the previous day too: it tells whether a series was already trading
    (see :func:`expected_grid`) and gives ``carry_forward`` its look-back. Observed bars keep
    their source and ingestion time; every slot of the grid the exchange did not deliver is a
    row with ``is_gap = true`` (null prices, or carried forward: see :func:`fill_gaps`).
    ``listings`` are (``venue/market/pair``, from, until). ``quote_asset`` comes from
    ``series_quotes`` (``Universe.series_quotes``), else from the pair minus its token: BTCUSD,
    BTCUSDC and BTCUSDT are all token BTC, in three currencies that can sit 14 % apart.
    """
    lookback = max(DAY_SECONDS, max_carry_seconds if gap_policy == "carry_forward" else 0)
    # Checkpointed: the grid, the anti-join and the union each read the deduplicated bars, and
    # Spark would otherwise type and deduplicate the raw rows once per reader (4 times).
    observed = (
        latest_ingestion(
            typed_klines(raw, series_tokens).where(
                (F.col("open_time") >= F.lit(start - timedelta(seconds=lookback)))
                & (F.col("open_time") < F.lit(end))
            )
        )
        .withColumn("is_gap", F.lit(False))
        .localCheckpoint()
    )
    listed = listing_frame(raw.sparkSession, listings)
    missing = expected_grid(observed, listed, intervals, start).join(
        observed.select(*BRONZE_KEY), on=list(BRONZE_KEY), how="left_anti"
    )
    gaps = missing.select(
        "token", "venue", "market", "symbol", "interval", "open_time",
        *[F.lit(None).cast(AMOUNT).alias(c) for c in (*PRICES, *VOLUMES)],
        F.lit(None).cast("long").alias("trade_count"),
        F.lit(None).cast("string").alias("source"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(True).alias("is_gap"),
    )  # fmt: skip
    bars = fill_gaps(observed.unionByName(gaps), gap_policy, max_carry_seconds)
    return (
        bars.where(F.col("open_time") >= F.lit(start))
        .withColumn("category", lookup(token_categories, F.col("token")))
        .withColumn("quote_asset", _quote_asset(series_quotes))
        .select(*BRONZE_COLUMNS)
    )
