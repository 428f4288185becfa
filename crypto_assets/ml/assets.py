"""The model as assets: a candidate trained and evaluated on the warehouse's gold table, promoted
only past a blocking check, and daily predictions and their live performance in the warehouse.

The modelling itself is in ``ml.model`` (pure pandas / scikit-learn); this module reads the
warehouse, keeps the registry in the lake, and turns results into metadata and tables.
"""

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from dagster_snowflake import SnowflakeResource
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from crypto_assets.checks import add_day_rows
from crypto_assets.ml.baselines import (
    BASE_RATE,
    YESTERDAYS_SIGN,
    baseline_probabilities,
    baseline_returns,
    last_known_day,
    rolling_base_rates,
)
from crypto_assets.ml.config import MlConfig, load_ml_config
from crypto_assets.ml.gates import not_trained, verdict
from crypto_assets.ml.metrics import information_coefficients
from crypto_assets.ml.model import (
    MODEL,
    TIME,
    Evaluation,
    LeakError,
    design,
    evaluate,
    fit_final,
    promotion_gate,
    training_frame,
)
from crypto_assets.ml.registry import ModelRegistry, code_version, library_versions
from crypto_assets.ml.runs import DIRECTION, card_metrics, record_training, store_metrics
from crypto_assets.ml.splits import FoldError
from crypto_assets.partitions import daily_asset
from resources.parquet_io import LakeResource

GROUP = "ml"
PROMOTION_GATE = "promotion_gate"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PREDICTION_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("bar_time", T.TimestampType(), False),
        T.StructField("token", T.StringType(), False),
        T.StructField("category", T.StringType(), True),
        T.StructField("p_up", T.DoubleType(), True),
        T.StructField("predicted_return", T.DoubleType(), True),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("horizon", T.StringType(), False),
    ]
)
PERFORMANCE_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("scope", T.StringType(), False),
        T.StructField("predictor", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("outcomes", T.LongType(), False),
        T.StructField("accuracy", T.DoubleType(), True),
        T.StructField("brier", T.DoubleType(), True),
        T.StructField("ic", T.DoubleType(), True),
    ]
)


def _columns(config: MlConfig) -> list[str]:
    wanted = ["bar_time", "token", "category", "is_gap", config.target, config.past_return, *config.columns]
    names = list(dict.fromkeys(wanted))
    bad = [n for n in [*names, config.table] if not _IDENTIFIER.match(n)]
    if bad:
        raise Failure(f"ml config names {bad}, which are not plain column or table names")
    return names


def _query(warehouse: SnowflakeResource, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(sql, tuple(params))
        names = [d[0].lower() for d in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=names)


def read_training_rows(warehouse: SnowflakeResource, config: MlConfig) -> pd.DataFrame:
    """The training window: ``training_window`` of labelled rows up to the latest known target."""
    columns = _columns(config)
    try:
        latest = _query(
            warehouse, f"SELECT max(bar_time) AS latest FROM {config.table} WHERE {config.target} IS NOT NULL"
        )
    except Exception as exc:  # the table does not exist yet: nothing to train on
        raise FoldError(f"{config.table.upper()} cannot be read: {exc}") from None
    end = latest["latest"].iloc[0]
    if end is None or pd.isna(end):
        return pd.DataFrame(columns=columns)
    start = pd.Timestamp(end) - config.training_window
    return _query(
        warehouse,
        f"SELECT {', '.join(columns)} FROM {config.table} WHERE bar_time > %s AND bar_time <= %s",
        (start.to_pydatetime(), pd.Timestamp(end).to_pydatetime()),
    )


def _table(frame: pd.DataFrame, digits: int = 4) -> MetadataValue:
    return MetadataValue.md(frame.astype(float).round(digits).to_markdown())


def _card(
    version: str, frame: pd.DataFrame, evaluation: Evaluation, config: MlConfig, gate: Any
) -> dict[str, Any]:
    return {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "training_window": [str(frame[TIME].min()), str(frame[TIME].max())],
        "training_rows": len(frame),
        "tokens": sorted(frame["token"].unique()),
        "target": config.target,
        "horizon": str(config.horizon),
        "features": list(evaluation.features),
        "features_left_out": evaluation.left_out,
        "categorical": list(config.categorical),
        "hyper_parameters": {
            "classifier": config.classifier,
            "regressor": config.regressor,
            "seed": config.seed,
        },
        "folds": evaluation.folds,
        **card_metrics(evaluation.overall, evaluation.per_category),
        "best_baseline": evaluation.best_baseline(),
        "permutation_importance": evaluation.importance,
        "gate": {"passed": gate.passed, "reasons": gate.reasons},
        "library_versions": library_versions(),
        "code_version": code_version(),
    }


def registry_of(lake: LakeResource) -> ModelRegistry:
    return ModelRegistry(Path(lake.root) / "models")


@asset(
    group_name=GROUP,
    kinds={"sklearn", "snowflake"},
    deps=[AssetKey("gold_market_features")],
    check_specs=[
        AssetCheckSpec(
            PROMOTION_GATE,
            asset="ml_candidate_model",
            blocking=True,
            description="The candidate beats the best naive baseline on the walk-forward validation folds"
            " (lower Brier, higher ROC-AUC) and is not worse than the serving model: only then is it promoted.",
        )
    ],
)
def ml_candidate_model(
    context: AssetExecutionContext, warehouse: SnowflakeResource, lake: LakeResource
) -> MaterializeResult:
    """A classifier of the next-24h direction and a regressor of the next-24h return across all
    tokens (scikit-learn HistGradientBoosting; features and hyper-parameters in pipeline.yaml's
    ``ml:``), trained on the warehouse's GOLD_MARKET_FEATURES rows whose target is known. Evaluated
    walk-forward (purged by the horizon, embargoed after each test fold) beside three naive
    baselines (always up, yesterday's sign, the training base rate), overall and per category;
    saved in the lake's model registry with its card, metrics in ML_MODEL_METRICS."""
    config = load_ml_config()  # read per run: an edited pipeline.yaml applies to the next training
    registry = registry_of(lake)
    rows = read_training_rows(warehouse, config)
    frame = training_frame(rows, config) if len(rows) else rows
    version = f"hgb-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        if len(frame) == 0:
            raise FoldError(f"no labelled rows in {config.table.upper()} yet")
        evaluation = evaluate(frame, config)
    except FoldError as exc:
        reason = f"not trained: {exc}"
        context.log.warning(reason)
        record_training(
            warehouse, version=version, kind=DIRECTION, passed=False, verdict=reason, training_rows=len(frame)
        )
        return not_trained(PROMOTION_GATE, reason, "labelled_rows", len(frame))
    except LeakError as exc:
        raise Failure(f"refusing to train: {exc}") from None
    serving = registry.serving()
    serving_metrics = registry.card(serving["version"])["metrics"][MODEL] if serving else None
    gate = promotion_gate(evaluation, serving_metrics, config.promotion_tolerance)
    classifier, regressor = fit_final(frame, config, evaluation.features)
    card = _card(version, frame, evaluation, config, gate)
    registry.save(version, classifier, regressor, card)
    stored = store_metrics(warehouse, version, evaluation.overall, evaluation.per_category)
    record_training(
        warehouse,
        version=version,
        kind=DIRECTION,
        passed=gate.passed,
        verdict="; ".join(gate.reasons),
        training_rows=len(frame),
        window=tuple(card["training_window"]),
    )
    context.log.info(f"{version}: {'; '.join(gate.reasons)}")
    return MaterializeResult(
        metadata={
            "model_version": MetadataValue.text(version),
            "training_window": MetadataValue.text(" .. ".join(card["training_window"])),
            "training_rows": MetadataValue.int(len(frame)),
            "metrics_vs_baselines": _table(evaluation.overall),
            "metrics_per_category": _table(evaluation.per_category),
            "folds": MetadataValue.md(pd.DataFrame(evaluation.folds).to_markdown(index=False)),
            "permutation_importance": MetadataValue.md(
                pd.Series(evaluation.importance, name="roc_auc_drop")
                .sort_values(ascending=False)
                .to_frame()
                .to_markdown()
            ),
            "best_baseline": MetadataValue.text(evaluation.best_baseline()),
            "features_left_out": MetadataValue.json(evaluation.left_out),
            "gate": MetadataValue.text("; ".join(gate.reasons)),
            "warehouse_metric_rows": MetadataValue.int(stored),
            "code_version": MetadataValue.text(card["code_version"]),
        },
        check_results=[verdict(PROMOTION_GATE, gate.passed, version, serving, gate.reasons)],
    )


@asset(group_name=GROUP, kinds={"sklearn"}, deps=[ml_candidate_model])
def ml_serving_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """The model that serves predictions: the newest candidate once its promotion gate passed
    (this asset runs only then); otherwise the serving model stays, and the metadata says why."""
    serving, why = registry_of(lake).promote_newest_passed()
    context.log.info(f"serving: {serving or 'the best baseline'} ({why})")
    return MaterializeResult(
        metadata={"serving": MetadataValue.text(serving or "baseline"), "why": MetadataValue.text(why)}
    )


def _known_targets(warehouse: SnowflakeResource, last_day: date, config: MlConfig) -> pd.DataFrame:
    """Per token and UTC day up to ``last_day``: up moves, targets and their sum, for the rolling
    base rate (:func:`crypto_assets.ml.baselines.rolling_base_rates`)."""
    sql = (
        f"SELECT token, dt, sum(CASE WHEN {config.target} > 0 THEN 1 ELSE 0 END) AS ups, count(*) AS n,"
        f" sum({config.target}) AS total FROM {config.table} WHERE {config.target} IS NOT NULL AND dt <= %s"
        " GROUP BY token, dt"
    )
    try:
        known = _query(warehouse, sql, (last_day,))
    except Exception:  # no gold table yet: nothing is known
        return pd.DataFrame(columns=["token", "dt", "ups", "n", "total"])
    known.columns = [c.lower() for c in known.columns]
    return known.astype({"ups": float, "n": float, "total": float})


def predict_frame(
    gold: pd.DataFrame, registry: ModelRegistry, rates: pd.DataFrame, config: MlConfig
) -> tuple[pd.DataFrame, str]:
    """P(up) and the predicted return for every real bar of ``gold``: from the serving model, or,
    while none has passed the gate, from the best baseline (named in ``model_version``). ``rates``
    are the rolling base rates per token and day (what was known at each day's start)."""
    frame = gold.copy()
    frame.columns = [c.lower() for c in frame.columns]
    frame = frame[~frame["is_gap"].astype(bool)].reset_index(drop=True)
    serving = registry.serving()
    if serving:
        loaded = registry.load(serving["version"])
        matrix = design(frame, loaded.card["features"], loaded.card["categorical"])
        p_up, predicted = loaded.classifier.predict_proba(matrix)[:, 1], loaded.regressor.predict(matrix)
        version = loaded.version
    else:
        evaluated = [registry.card(v) for v in registry.versions()]
        baseline = evaluated[-1]["best_baseline"] if evaluated else BASE_RATE
        known = frame[["token"]].assign(dt=pd.to_datetime(frame["bar_time"]).dt.date)
        known = known.merge(rates, on=["token", "dt"], how="left")
        p_up = (
            known["up_rate"].fillna(0.5).to_numpy()
            if baseline == BASE_RATE
            else baseline_probabilities(
                baseline, frame, pd.Series(dtype=float), config.past_return
            ).to_numpy()
        )
        predicted = (
            baseline_returns(baseline, frame, pd.Series(dtype=float), config.past_return).to_numpy()
            if baseline == YESTERDAYS_SIGN
            else known["mean_return"].fillna(0.0).to_numpy()
        )
        version = f"baseline:{baseline}"
    out = pd.DataFrame(
        {
            "dt": pd.to_datetime(frame["bar_time"]).dt.date,
            "bar_time": pd.to_datetime(frame["bar_time"]),
            "token": frame["token"],
            "category": frame["category"],
            "p_up": np.asarray(p_up, dtype=float),
            "predicted_return": np.asarray(predicted, dtype=float),
            "model_version": version,
            "horizon": str(config.target.removeprefix("target_return_")),
        }
    )
    return out, version


@daily_asset(
    GROUP,
    time_column="bar_time",
    io_manager_key="warehouse_io_manager",
    kinds=("sklearn", "snowflake"),
    ins={"gold_market_features": AssetIn()},
    # The model it serves with (read from the registry): in the lineage, not a trigger (automation
    # does not re-predict history when a model is promoted; see crypto_assets/automation.py).
    deps=[AssetKey("ml_serving_model")],
    metadata={"partition_expr": "BAR_TIME", "cluster_by": "DT"},
    name="ml_predictions",
)
def ml_predictions(
    context: AssetExecutionContext,
    gold_market_features: DataFrame,
    warehouse: SnowflakeResource,
    lake: LakeResource,
) -> Iterator[Output]:
    """Per token and hour: the probability of an up move over the next 24h and the predicted
    return, with the model version (``baseline:<name>`` while no model has passed the gate), in
    the warehouse's ML_PREDICTIONS."""
    config = load_ml_config()
    window = context.partition_time_window
    gold = gold_market_features.toPandas()
    # Each day's base rate from what was known at its start: the same rows whether the range
    # runs at once or day by day.
    days = [d.date() for d in pd.date_range(window.start.date(), window.end.date(), inclusive="left")]
    known = _known_targets(warehouse, last_known_day(days[-1], config.horizon), config)
    rates = rolling_base_rates(known, sorted(set(gold["token"])) if len(gold) else [], days, config.horizon)
    predictions, version = predict_frame(gold, registry_of(lake), rates, config)
    spark = gold_market_features.sparkSession
    frame = (
        spark.createDataFrame(predictions, PREDICTION_SCHEMA)
        if len(predictions)
        else spark.createDataFrame([], PREDICTION_SCHEMA)
    )
    add_day_rows(context, predictions, "bar_time")
    yield Output(
        frame,
        metadata={
            "dagster/row_count": MetadataValue.int(len(predictions)),
            "model_version": MetadataValue.text(version),
            "tokens": MetadataValue.int(int(predictions["token"].nunique()) if len(predictions) else 0),
            "mean_p_up": MetadataValue.float(
                float(predictions["p_up"].mean()) if len(predictions) else float("nan")
            ),
        },
    )


def _outcome_columns(config: MlConfig) -> list[str]:
    """The gold columns :func:`performance_frame` reads."""
    return ["token", "bar_time", config.target, config.past_return]


def performance_frame(predictions: pd.DataFrame, gold: pd.DataFrame, config: MlConfig) -> pd.DataFrame:
    """Live accuracy, Brier and IC per day and category (and overall) of the served predictions,
    beside the always-up and yesterday's-sign baselines, on the bars whose outcome is known."""
    gold = gold.copy()
    gold.columns = [c.lower() for c in gold.columns]
    gold["bar_time"] = pd.to_datetime(gold["bar_time"])
    predictions = predictions.assign(bar_time=pd.to_datetime(predictions["bar_time"]))
    joined = predictions.merge(gold[_outcome_columns(config)], on=["token", "bar_time"], how="inner")
    joined = joined[joined[config.target].notna()]
    if joined.empty:
        return pd.DataFrame(columns=[f.name for f in PERFORMANCE_SCHEMA.fields])
    joined["up"] = (joined[config.target] > 0).astype(int)
    joined["p_always_up"] = 1.0
    joined["p_yesterdays_sign"] = baseline_probabilities(
        YESTERDAYS_SIGN, joined, pd.Series(dtype=float), config.past_return
    )
    joined["r_yesterdays_sign"] = joined[config.past_return]
    version = str(joined["model_version"].iloc[0])
    # Every day overall, then every day and category: one grouped pass per measure instead of a
    # loop over groups (a year is ~2,500 groups of ~24 hours each).
    scoped = pd.concat(
        [joined.assign(scope="all", _order=0), joined.assign(scope=joined["category"], _order=1)],
        ignore_index=True,
    )
    keys = ["_order", "dt", "scope"]
    groups = scoped.groupby(keys, sort=True)
    outcomes = groups.size()
    measures = []
    for predictor, p, r in (
        ("served", "p_up", "predicted_return"),
        ("always_up", "p_always_up", None),
        ("yesterdays_sign", "p_yesterdays_sign", "r_yesterdays_sign"),
    ):
        hit = ((scoped[p] >= 0.5).astype(int) == scoped["up"]).astype(float)
        error = (scoped[p] - scoped["up"]) ** 2
        ic = (
            information_coefficients(scoped, r, config.target, "bar_time", keys)
            if r
            else pd.Series(dtype=float)
        )
        measures.append(
            pd.DataFrame(
                {
                    "predictor": predictor,
                    "model_version": version,
                    "outcomes": outcomes,
                    "accuracy": hit.groupby([scoped[k] for k in keys], sort=True).mean(),
                    "brier": error.groupby([scoped[k] for k in keys], sort=True).mean(),
                    "ic": ic.reindex(outcomes.index),
                }
            ).assign(_predictor=len(measures))
        )
    table = pd.concat(measures).reset_index().sort_values([*keys, "_predictor"], kind="stable")
    return table[
        ["dt", "scope", "predictor", "model_version", "outcomes", "accuracy", "brier", "ic"]
    ].reset_index(drop=True)


@daily_asset(
    GROUP,
    time_column="dt",
    io_manager_key="warehouse_io_manager",
    kinds=("snowflake",),
    ins={
        "ml_predictions": AssetIn(),
        # Only the columns scored against: the whole gold table is ~70 columns, read again here
        # (~15 s of the warehouse's time for five years of hours).
        "gold_market_features": AssetIn(metadata={"columns": _outcome_columns(load_ml_config())}),
    },
    metadata={"partition_expr": "DT", "cluster_by": "DT"},
)
def ml_performance(
    context: AssetExecutionContext, ml_predictions: DataFrame, gold_market_features: DataFrame
) -> Iterator[Output]:
    """How the served predictions really do: per day, overall and per category, accuracy, Brier
    and IC against the realised 24h outcome, beside the always-up and yesterday's-sign baselines
    (ML_PERFORMANCE). Outcomes arrive a day later: the targets refresh re-materializes it."""
    table = performance_frame(ml_predictions.toPandas(), gold_market_features.toPandas(), load_ml_config())
    spark = ml_predictions.sparkSession
    frame = (
        spark.createDataFrame(table, PERFORMANCE_SCHEMA)
        if len(table)
        else spark.createDataFrame([], PERFORMANCE_SCHEMA)
    )
    served = table[(table["scope"] == "all") & (table["predictor"] == "served")] if len(table) else table
    add_day_rows(context, table, "dt")
    yield Output(
        frame,
        metadata={
            "dagster/row_count": MetadataValue.int(len(table)),
            "outcomes_known": MetadataValue.int(int(served["outcomes"].sum()) if len(served) else 0),
            "accuracy": MetadataValue.float(
                float(served["accuracy"].mean()) if len(served) else float("nan")
            ),
        },
    )


ML_TRAINING_ASSETS = [ml_candidate_model, ml_serving_model]
ML_DAILY_ASSETS = [ml_predictions, ml_performance]
