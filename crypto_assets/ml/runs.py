"""What every training leaves in the warehouse, for either model (direction or volatility):
ML_MODEL_METRICS (its out-of-fold scores beside the baselines') and ML_MODEL_RUNS (one row per
training with its gate's verdict in words, so the dashboard can say why a model serves or not
without reading the lake's registry; trainings that could not run are rows too)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

RUNS_TABLE = "ml_model_runs"
DIRECTION = "direction"
VOLATILITY = "volatility"


def record_training(
    warehouse: Any,
    *,
    version: str,
    kind: str,
    passed: bool,
    verdict: str,
    training_rows: int,
    window: tuple[str, str] | None = None,
) -> None:
    """Insert (or replace, for the same version) the row of one training."""
    start, end = window or (None, None)
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (model_version VARCHAR, kind VARCHAR,"
            " trained_at TIMESTAMP_NTZ, passed BOOLEAN, verdict VARCHAR, training_rows INTEGER,"
            " training_start VARCHAR, training_end VARCHAR)"
        )
        cursor.execute("BEGIN")
        cursor.execute(f"DELETE FROM {RUNS_TABLE} WHERE model_version = %s", (version,))
        cursor.execute(
            f"INSERT INTO {RUNS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                version,
                kind,
                datetime.now(UTC).replace(tzinfo=None),
                passed,
                verdict,
                int(training_rows),
                start,
                end,
            ),
        )
        cursor.execute("COMMIT")


def number(value: Any) -> float | None:
    """A metric as JSON and SQL take it: None for a missing or NaN value."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def card_metrics(overall: pd.DataFrame, per_category: pd.DataFrame) -> dict[str, dict]:
    """The model card's ``metrics`` (predictor -> metric -> value) and ``metrics_per_category``
    ("<category>/<metric>" -> predictor -> value)."""
    return {
        "metrics": {k: {m: number(v) for m, v in col.items()} for k, col in overall.to_dict().items()},
        "metrics_per_category": {
            f"{category}/{metric}": {k: number(v) for k, v in row.items()}
            for (category, metric), row in per_category.to_dict("index").items()
        },
    }


def store_metrics(warehouse: Any, version: str, overall: pd.DataFrame, per_category: pd.DataFrame) -> int:
    """ML_MODEL_METRICS: one row per (model version, scope, metric, predictor), replaced per
    version; scope is "all" or a category. Returns the rows written."""
    rows: list[tuple[Any, ...]] = []
    for scope, table in [("all", overall)] + [
        (category, group.droplevel(0)) for category, group in per_category.groupby(level=0)
    ]:
        for metric, values in table.iterrows():
            for predictor, value in values.items():
                rows.append((version, scope, str(metric), str(predictor), number(value)))
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS ml_model_metrics (model_version VARCHAR, scope VARCHAR,"
            " metric VARCHAR, predictor VARCHAR, value FLOAT)"
        )
        cursor.execute("BEGIN")
        cursor.execute("DELETE FROM ml_model_metrics WHERE model_version = %s", (version,))
        cursor.executemany("INSERT INTO ml_model_metrics VALUES (%s, %s, %s, %s, %s)", rows)
        cursor.execute("COMMIT")
    return len(rows)
