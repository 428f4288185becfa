"""The model assets for real: a gold table in the embedded warehouse (Snowflake's protocol),
the training job through Dagster with its blocking promotion gate, predictions and their live
performance loaded back into the warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import snowflake.connector
import yaml
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.ml.config import load_ml_config
from crypto_assets.ml.registry import ModelRegistry
from crypto_assets.pipeline_config import DEFAULT_PIPELINE_PATH
from resources.settings import Settings

pytestmark = pytest.mark.integration
TOKENS = {"BTC": "Layer 1", "ETH": "Layer 1", "DOGE": "Meme", "PEPE": "Meme", "UNI": "DeFi", "AAVE": "DeFi"}
DAYS = 45
LAST_DAY = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=DAYS - 1)).date().isoformat()


def _gold(strength: float) -> pd.DataFrame:
    """A gold-shaped table where RSI carries the next day's direction (``strength``) and every
    other feature is noise."""
    ml = load_ml_config()
    rng = np.random.default_rng(5)
    times = pd.date_range("2024-01-01", periods=DAYS * 24, freq="h")
    frame = pd.DataFrame(
        [(t, token, category) for t in times for token, category in TOKENS.items()],
        columns=["bar_time", "token", "category"],
    )
    for feature in ml.features:
        frame[feature] = rng.normal(size=len(frame))
    frame["target_return_24h"] = strength * frame["rsi_14"] + rng.normal(scale=0.02, size=len(frame))
    frame.loc[frame["bar_time"] > times[-24], "target_return_24h"] = np.nan  # the future is unknown
    frame["is_gap"] = False
    frame["dt"] = frame["bar_time"].dt.date
    return frame


def _load(settings: Settings, frame: pd.DataFrame, tmp_path: Path) -> None:
    """The table as the pipeline loads it: Parquet, PUT to a stage, COPY INTO."""
    types = {
        "bar_time": "TIMESTAMP_NTZ",
        "dt": "DATE",
        "token": "VARCHAR",
        "category": "VARCHAR",
        "is_gap": "BOOLEAN",
    }
    columns = ", ".join(f"{c} {types.get(c, 'FLOAT')}" for c in frame.columns)
    path = tmp_path / f"gold-{abs(hash(float(frame['target_return_24h'].sum())))}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    with snowflake.connector.connect(**settings.connector_args()) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE OR REPLACE TABLE gold_market_features ({columns})")
        cursor.execute("CREATE OR REPLACE TEMPORARY STAGE ml_test_stage")
        cursor.execute(f"PUT 'file://{path}' @ml_test_stage AUTO_COMPRESS=FALSE OVERWRITE=TRUE")
        cursor.execute(
            "COPY INTO gold_market_features FROM @ml_test_stage FILE_FORMAT=(TYPE=PARQUET)"
            " MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE PURGE=TRUE"
        )


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with snowflake.connector.connect(**settings.connector_args()) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def _fast_models(path: Path) -> Path:
    """pipeline.yaml with smaller boosting runs: the same code, a quicker fit."""
    raw = yaml.safe_load(DEFAULT_PIPELINE_PATH.read_text())
    for model in ("classifier", "regressor"):
        raw["ml"][model].update({"max_iter": 40, "learning_rate": 0.1})
    path.write_text(yaml.safe_dump(raw))
    return path


def test_train_gate_promote_predict_and_measure(local_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("PIPELINE_CONFIG", str(_fast_models(tmp_path / "pipeline.yaml")))
    settings = Settings.from_env()
    _load(settings, _gold(strength=0.01), tmp_path)
    definitions = build_definitions(settings)
    instance = DagsterInstance.ephemeral()

    trained = definitions.resolve_job_def("ml_training_job").execute_in_process(instance=instance)
    assert trained.success
    gate = next(e for e in trained.get_asset_check_evaluations() if e.check_name == "promotion_gate")
    assert gate.passed
    registry = ModelRegistry(local_env / "models")
    serving = registry.serving()
    assert serving is not None
    card = registry.card(serving["version"])
    assert card["metrics"]["model"]["roc_auc"] > 0.6 and card["gate"]["passed"]
    assert {"always_up", "yesterdays_sign", "base_rate"} <= set(card["metrics"])
    assert card["library_versions"]["scikit-learn"] and card["permutation_importance"]["rsi_14"] > 0
    metrics = _rows(
        settings, f"select count(*) from ml_model_metrics where model_version = '{serving['version']}'"
    )
    assert metrics[0][0] > 0

    daily = definitions.resolve_job_def("ml_prediction_job")
    # The direction model's assets (the volatility forecast reads the lake's bars: not here).
    direction = [AssetKey("ml_predictions"), AssetKey("ml_performance")]
    assert daily.execute_in_process(
        partition_key=LAST_DAY, instance=instance, asset_selection=direction
    ).success
    predicted = _rows(
        settings, "select model_version, count(*), min(p_up), max(p_up) from ml_predictions group by 1"
    )
    assert [(v, n) for v, n, _, _ in predicted] == [(serving["version"], len(TOKENS) * 24)]
    assert 0 <= predicted[0][2] <= predicted[0][3] <= 1
    # The last day's outcomes are not known yet: the day before has them.
    before = (pd.Timestamp(LAST_DAY) - pd.Timedelta(days=1)).date().isoformat()
    assert daily.execute_in_process(
        partition_key=before, instance=instance, asset_selection=direction
    ).success
    performance = _rows(
        settings,
        f"select scope, predictor, outcomes, accuracy from ml_performance where scope = 'all' and dt = '{before}'"
        " order by predictor",
    )
    assert [(s, p) for s, p, _, _ in performance] == [
        ("all", "always_up"),
        ("all", "served"),
        ("all", "yesterdays_sign"),
    ]
    served = next(r for r in performance if r[1] == "served")
    assert served[2] == len(TOKENS) * 24 and served[3] > 0.5

    # A second candidate on data with no signal loses: the gate blocks it, the first one still serves.
    _load(settings, _gold(strength=0.0), tmp_path)
    again = definitions.resolve_job_def("ml_training_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    lost = next(e for e in again.get_asset_check_evaluations() if e.check_name == "promotion_gate")
    assert not lost.passed and registry.serving()["version"] == serving["version"]
    assert "ml_serving_model" not in {
        e.asset_key.to_user_string() for e in again.get_asset_materialization_events()
    }
