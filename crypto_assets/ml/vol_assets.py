"""The volatility forecast as assets: a candidate trained walk-forward on the lake's hourly bars
and gated against its baselines, the serving model, and per day the forecasts beside the
baselines (and, once known, the realised volatility) in the warehouse's VOL_FORECASTS.

The modelling is in ``ml.volatility`` (pure pandas / numpy); this module reads the lake, keeps
the registry, and writes metadata and tables.

Why the lake's ``silver_bars_1h`` and not the warehouse's gold table: the forecast needs a month
of hourly bars before each hour (HAR's monthly term), and the lake holds every hour it has
fetched, the warm-up's history included, where gold holds only the days refined through it. On
a fresh `make run` that is ~32 days of bars against 2 days of gold: the model can train on the
first run.
"""

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from dagster._core.storage.db_io_manager import TableSlice
from dagster_snowflake import SnowflakeResource
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from crypto_assets.checks import add_day_rows
from crypto_assets.ml import volatility as vol
from crypto_assets.ml.config import load_ml_config
from crypto_assets.ml.gates import not_trained, verdict
from crypto_assets.ml.registry import ModelRegistry, code_version, library_versions
from crypto_assets.ml.runs import VOLATILITY, card_metrics, record_training, store_metrics
from crypto_assets.ml.splits import FoldError, duration_text
from crypto_assets.partitions import daily_asset, window_input
from crypto_assets.pipeline_config import load_pipeline_config
from resources.parquet_io import LakeResource, existing_partition_keys
from resources.snowflake_io import load_frame

GROUP = "ml"
VOL_GATE = "vol_promotion_gate"
BAR_COLUMNS = ["open_time", "token", "category", "open", "high", "low", "close", "volume"]
BACKTEST_TABLE = "vol_backtest"
FORECAST_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("bar_time", T.TimestampType(), False),
        T.StructField("token", T.StringType(), False),
        T.StructField("category", T.StringType(), True),
        T.StructField("forecast_vol_24h", T.DoubleType(), True),
        T.StructField("model_vol_24h", T.DoubleType(), True),
        T.StructField("har_vol_24h", T.DoubleType(), True),
        T.StructField("ewma_vol_24h", T.DoubleType(), True),
        T.StructField("last_24h_vol", T.DoubleType(), True),
        T.StructField("realized_vol_24h", T.DoubleType(), True),
        T.StructField("model_version", T.StringType(), False),
    ]
)
BACKTEST_SCHEMA = T.StructType(
    [
        T.StructField("model_version", T.StringType(), False),
        T.StructField("fold", T.IntegerType(), False),
        T.StructField("bar_time", T.TimestampType(), False),
        T.StructField("token", T.StringType(), False),
        T.StructField("category", T.StringType(), True),
        T.StructField("realized_vol_24h", T.DoubleType(), True),
        T.StructField("model_vol_24h", T.DoubleType(), True),
        T.StructField("har_vol_24h", T.DoubleType(), True),
        T.StructField("ewma_vol_24h", T.DoubleType(), True),
        T.StructField("last_24h_vol", T.DoubleType(), True),
    ]
)
# Columns of the forecast tables from the predictors of ml.volatility (annualised volatility).
VOL_COLUMNS = {
    vol.MODEL: "model_vol_24h",
    vol.HAR: "har_vol_24h",
    vol.EWMA: "ewma_vol_24h",
    vol.LAST_24H: "last_24h_vol",
    vol.TARGET: "realized_vol_24h",
}


def vol_registry(lake: LakeResource | str | Path) -> ModelRegistry:
    root = lake.root if isinstance(lake, LakeResource) else lake
    return ModelRegistry(Path(root) / "volatility_models")


def _bars(lake: LakeResource, days: list[str]) -> pd.DataFrame:
    return _to_bars(lake.read_partitions("silver", "silver_bars_1h", days) if days else None)


def _to_bars(frame: DataFrame | None) -> pd.DataFrame:
    """silver_bars_1h's columns the volatility model reads, in pandas, ``open_time`` as ``bar_time``."""
    if frame is None:
        return pd.DataFrame(columns=["bar_time", *BAR_COLUMNS[1:]])
    return frame.select(*BAR_COLUMNS).toPandas().rename(columns={"open_time": "bar_time"})


def _store(warehouse: SnowflakeResource, version: str, evaluation: vol.VolEvaluation, spark: Any) -> int:
    """The metrics into ML_MODEL_METRICS (replaced per version) and the out-of-fold forecasts
    into VOL_BACKTEST (replaced whole: the newest candidate's)."""
    store_metrics(warehouse, version, evaluation.overall, evaluation.per_category)
    backtest = evaluation.predictions.rename(columns=VOL_COLUMNS)
    for column in VOL_COLUMNS.values():
        backtest[column] = vol.annualised_vol(backtest[column])
    backtest = backtest.assign(model_version=version)[[f.name for f in BACKTEST_SCHEMA.fields]]
    backtest["fold"] = backtest["fold"].astype("int32")
    with warehouse.get_connection() as connection:
        table = TableSlice(
            table=BACKTEST_TABLE.upper(),
            schema=warehouse.schema_,
            database=warehouse.database,
            partition_dimensions=[],
        )
        load_frame(connection, table, spark.createDataFrame(backtest, BACKTEST_SCHEMA))
    return len(backtest)


def _card(
    version: str, frame: pd.DataFrame, evaluation: vol.VolEvaluation, gate: vol.VolGate, fits: Any
) -> dict:
    model, har, lam = fits
    return {
        "version": version,
        "kind": "volatility",
        "created_at": datetime.now(UTC).isoformat(),
        "target": "realised variance of the next 24 hourly log returns",
        "training_window": [str(frame[vol.TIME].min()), str(frame[vol.TIME].max())],
        "training_rows": int(vol.scorable(frame).sum()),
        "tokens": sorted(frame["token"].unique()),
        "features": list(model.columns),
        "coefficients": model.describe(),
        "har": har.describe(),
        "ewma_lambda": lam,
        "folds": evaluation.folds,
        **card_metrics(evaluation.overall, evaluation.per_category),
        "best_baseline": evaluation.best_baseline(),
        "categories_beating_har": evaluation.categories_won(),
        "fit_seconds": round(evaluation.fit_seconds, 3),
        "gate": {"passed": gate.passed, "reasons": gate.reasons},
        "library_versions": library_versions(),
        "code_version": code_version(),
    }


@asset(
    group_name=GROUP,
    kinds={"numpy", "snowflake"},
    deps=[AssetKey("silver_bars_1h")],
    check_specs=[
        AssetCheckSpec(
            VOL_GATE,
            asset="vol_candidate_model",
            blocking=True,
            description="The candidate's out-of-fold QLIKE and RMSE of log variance are below every"
            " baseline's (last 24h, EWMA, HAR-RV) and not worse than the serving model's: only then is it served.",
        )
    ],
)
def vol_candidate_model(
    context: AssetExecutionContext, warehouse: SnowflakeResource, lake: LakeResource
) -> MaterializeResult:
    """A forecast of each token's realised variance over the next 24 hours (HAR-X: HAR-RV's daily,
    weekly and monthly realised variance plus range-based estimators, BTC's, the category's and
    the market's variance, the last day's fall, the weekend and volume; ``ml.volatility`` in
    pipeline.yaml), trained on the lake's hourly bars (silver_bars_1h). Evaluated walk-forward
    (purged by the 24h horizon, embargoed) beside the last 24h's realised variance, an EWMA and
    HAR-RV fitted in each fold, with QLIKE and RMSE of log variance, overall and per category;
    saved in the lake's volatility registry, metrics in ML_MODEL_METRICS, out-of-fold forecasts
    in VOL_BACKTEST."""
    started = time.perf_counter()
    config = load_ml_config().volatility
    registry = vol_registry(lake)
    keys = sorted(existing_partition_keys(Path(lake.root), "silver", "silver_bars_1h"))
    if keys:
        first = (date.fromisoformat(keys[-1]) - timedelta(days=config.training_window.days)).isoformat()
        keys = [k for k in keys if k > first]
    bars = _bars(lake, keys)
    frame = vol.volatility_frame(bars, stablecoins=load_pipeline_config().stablecoins)
    version = f"harx-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        if frame.empty:
            raise FoldError("no hourly bars in the lake (silver_bars_1h) yet")
        evaluation = vol.evaluate(
            frame,
            folds=config.folds,
            min_training=config.min_training,
            embargo=config.embargo,
            ridge=config.ridge,
        )
    except FoldError as exc:
        span = (
            duration_text(pd.Timestamp(frame[vol.TIME].max()) - pd.Timestamp(frame[vol.TIME].min()))
            if len(frame)
            else "none"
        )
        reason = f"not trained: {exc} (hourly bars in the lake: {span})"
        context.log.warning(reason)
        record_training(
            warehouse,
            version=version,
            kind=VOLATILITY,
            passed=False,
            verdict=reason,
            training_rows=len(frame),
        )
        return not_trained(VOL_GATE, reason, "hourly_rows", len(frame))
    serving = registry.serving()
    serving_metrics = registry.card(serving["version"])["metrics"][vol.MODEL] if serving else None
    gate = vol.promotion_gate(evaluation, serving_metrics, config.promotion_tolerance)
    fits = vol.fit_final(frame, ridge=config.ridge)
    card = _card(version, frame, evaluation, gate, fits)
    registry.save_models(version, {"model": fits[0], "har": fits[1], "ewma_lambda": fits[2]}, card)
    stored = _store(warehouse, version, evaluation, lake.pyspark.spark_session)
    record_training(
        warehouse,
        version=version,
        kind=VOLATILITY,
        passed=gate.passed,
        verdict="; ".join(gate.reasons),
        training_rows=card["training_rows"],
        window=tuple(card["training_window"]),
    )
    seconds = time.perf_counter() - started
    context.log.info(f"{version}: {'; '.join(gate.reasons)} ({seconds:.1f} s)")
    return MaterializeResult(
        metadata={
            "model_version": MetadataValue.text(version),
            "training_window": MetadataValue.text(" .. ".join(card["training_window"])),
            "training_rows": MetadataValue.int(card["training_rows"]),
            "metrics_vs_baselines": MetadataValue.md(evaluation.overall.astype(float).round(4).to_markdown()),
            "metrics_per_category": MetadataValue.md(
                evaluation.per_category.astype(float).round(4).to_markdown()
            ),
            "categories_beating_har": MetadataValue.json(card["categories_beating_har"]),
            "folds": MetadataValue.md(
                pd.DataFrame(evaluation.folds).drop(columns=["har"]).to_markdown(index=False)
            ),
            "coefficients": MetadataValue.json(card["coefficients"]),
            "gate": MetadataValue.text("; ".join(gate.reasons)),
            "backtest_rows": MetadataValue.int(stored),
            "seconds": MetadataValue.float(round(seconds, 2)),
        },
        check_results=[verdict(VOL_GATE, gate.passed, version, serving, gate.reasons)],
    )


@asset(group_name=GROUP, kinds={"numpy"}, deps=[vol_candidate_model])
def vol_serving_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """The volatility model that serves VOL_FORECASTS: the newest candidate once its gate
    passed (this asset runs only then); otherwise the serving one stays."""
    serving, why = vol_registry(lake).promote_newest_passed()
    context.log.info(f"serving: {serving or 'the best baseline'} ({why})")
    return MaterializeResult(
        metadata={"serving": MetadataValue.text(serving or "baseline"), "why": MetadataValue.text(why)}
    )


def served_fits(registry: ModelRegistry) -> tuple[Any, Any, float, str]:
    """(model or None, HAR or None, EWMA lambda, version label): the serving model; while none
    serves, the newest candidate's baselines and the best of them named ``baseline:<name>``
    (RiskMetrics' EWMA before anything was trained)."""
    serving = registry.serving()
    if serving:
        fitted = registry.load_models(serving["version"])
        return fitted["model"], fitted["har"], fitted["ewma_lambda"], serving["version"]
    versions = registry.versions()
    if not versions:
        return None, None, vol.RISKMETRICS, f"baseline:{vol.EWMA}"
    fitted = registry.load_models(versions[-1])
    return (
        None,
        fitted["har"],
        fitted["ewma_lambda"],
        f"baseline:{registry.card(versions[-1])['best_baseline']}",
    )


def forecast_frame(
    bars: pd.DataFrame, registry: ModelRegistry, start: datetime, end: datetime
) -> tuple[pd.DataFrame, str]:
    """The forecast rows of hours ``[start, end)`` from ``bars`` (which reach a month before),
    and the version that made them."""
    frame = vol.volatility_frame(bars, stablecoins=load_pipeline_config().stablecoins)
    model, har, lam, version = served_fits(registry)
    if len(frame):
        inside = (frame[vol.TIME] >= pd.Timestamp(start).tz_localize(None)) & (
            frame[vol.TIME] < pd.Timestamp(end).tz_localize(None)
        )
        frame = frame[inside]
    out = vol.forecast(frame, model, har, lam).rename(columns=VOL_COLUMNS)
    for column in VOL_COLUMNS.values():
        out[column] = vol.annualised_vol(out[column].astype(float))
    served = "model_vol_24h" if model is not None else VOL_COLUMNS[version.removeprefix("baseline:")]
    out["forecast_vol_24h"] = out[served]
    out["model_version"] = version
    out["dt"] = pd.to_datetime(out[vol.TIME]).dt.date
    return out[[f.name for f in FORECAST_SCHEMA.fields]], version


@daily_asset(
    GROUP,
    time_column="bar_time",
    io_manager_key="warehouse_io_manager",
    kinds=("numpy", "snowflake"),
    # A month before each day (HAR's monthly term) and the day after (the realised outcome).
    ins={"silver_bars_1h": window_input("silver_bars_1h", days_before=30, days_after=1)},
    deps=[AssetKey("vol_serving_model")],
    metadata={"partition_expr": "BAR_TIME", "cluster_by": "DT"},
)
def vol_forecasts(
    context: AssetExecutionContext, silver_bars_1h: DataFrame, lake: LakeResource
) -> Output[DataFrame]:
    """Per non-stablecoin token and hour: the annualised volatility forecast for the next 24 hours
    from the serving volatility model (``baseline:<name>`` while none passed its gate), beside
    HAR-RV, the EWMA and the last 24h's realised volatility, and the realised volatility once the
    24 hours are in the lake (the targets refresh fills it the next day): VOL_FORECASTS."""
    window = context.partition_time_window
    table, version = forecast_frame(_to_bars(silver_bars_1h), vol_registry(lake), window.start, window.end)
    spark = silver_bars_1h.sparkSession
    frame = (
        spark.createDataFrame(table, FORECAST_SCHEMA)
        if len(table)
        else spark.createDataFrame([], FORECAST_SCHEMA)
    )
    add_day_rows(context, table, "bar_time")
    return Output(
        frame,
        metadata={
            "dagster/row_count": MetadataValue.int(len(table)),
            "model_version": MetadataValue.text(version),
            "tokens": MetadataValue.int(int(table["token"].nunique()) if len(table) else 0),
            "median_forecast_vol": MetadataValue.float(
                float(table["forecast_vol_24h"].median()) if len(table) else float("nan")
            ),
            "realized_known": MetadataValue.int(int(table["realized_vol_24h"].notna().sum())),
        },
    )


VOL_TRAINING_ASSETS = [vol_candidate_model, vol_serving_model]
VOL_DAILY_ASSETS = [vol_forecasts]
