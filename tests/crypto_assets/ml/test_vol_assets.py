"""The volatility forecast's assets for real: hourly bars in the lake, the training job through
Dagster with its blocking gate, the registry, and the forecasts loaded into the warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import snowflake.connector
from dagster import AssetKey, DagsterInstance

from crypto_assets.definitions import build_definitions
from crypto_assets.ml.vol_assets import vol_registry
from resources.settings import Settings
from tests.crypto_assets.ml.test_volatility import START, garch_bars

pytestmark = pytest.mark.integration
DAYS = 50


def _lake(lake: Path, bars: pd.DataFrame) -> None:
    """``silver_bars_1h`` partitions as silver writes them (the columns the forecast reads)."""
    bars = bars.assign(open_time=pd.to_datetime(bars["bar_time"]).dt.tz_localize("UTC")).drop(
        columns="bar_time"
    )
    for day, rows in bars.groupby(bars["open_time"].dt.date):
        folder = lake / "silver" / "silver_bars_1h" / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(rows, preserve_index=False),
            folder / "part-00000.parquet",
            coerce_timestamps="us",
        )


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with snowflake.connector.connect(**settings.connector_args()) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def test_train_gate_serve_and_forecast(local_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    _lake(local_env, garch_bars(hours=24 * DAYS, tokens=("BTC", "ETH", "DOGE", "PEPE")))
    settings = Settings.from_env()
    definitions = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    volatility = [AssetKey("vol_candidate_model"), AssetKey("vol_serving_model")]

    trained = definitions.resolve_job_def("ml_training_job").execute_in_process(
        instance=instance, asset_selection=volatility, raise_on_error=False
    )
    gate = next(e for e in trained.get_asset_check_evaluations() if e.check_name == "vol_promotion_gate")
    registry = vol_registry(local_env)
    card = registry.card(registry.versions()[-1])
    assert set(card["metrics"]) == {"model", "last_24h", "ewma", "har_rv"}
    assert card["training_rows"] > 1000 and card["folds"] and card["coefficients"]["log_rv_1d"]
    metrics = _rows(
        settings, f"select count(*) from ml_model_metrics where model_version = '{card['version']}'"
    )
    assert metrics[0][0] == 4 * 3 * 3  # (all + 2 categories) x 3 metrics x 4 predictors
    backtest = _rows(
        settings, "select count(*), count(realized_vol_24h), count(har_vol_24h) from vol_backtest"
    )
    assert backtest[0][0] == backtest[0][1] == backtest[0][2] > 0
    # Clustered volatility: the model beats every baseline and serves.
    assert gate.passed and trained.success, card["gate"]
    serving = registry.serving()
    assert serving is not None and serving["version"] == card["version"]

    day = (START + pd.Timedelta(days=DAYS - 2)).date().isoformat()
    forecasts = definitions.resolve_job_def("ml_prediction_job").execute_in_process(
        partition_key=day, instance=instance, asset_selection=[AssetKey("vol_forecasts")]
    )
    assert forecasts.success
    (n, tokens, forecast, har, realized, version, low, high) = _rows(
        settings,
        "select count(*), count(distinct token), count(forecast_vol_24h), count(har_vol_24h),"
        " count(realized_vol_24h), min(model_version), min(forecast_vol_24h), max(forecast_vol_24h)"
        " from vol_forecasts",
    )[0]
    assert n == forecast == har == 4 * 24 and tokens == 4
    assert realized == 4 * 24  # the next day is in the lake
    assert version == serving["version"]
    assert 0.01 < low <= high < 20  # annualised volatility, a fraction

    # The same day again replaces its rows (idempotent).
    definitions.resolve_job_def("ml_prediction_job").execute_in_process(
        partition_key=day, instance=instance, asset_selection=[AssetKey("vol_forecasts")]
    )
    assert _rows(settings, "select count(*) from vol_forecasts")[0][0] == 4 * 24
