"""ML_MODEL_RUNS: one row per training of a model (direction or volatility), its gate's verdict
in words, so the dashboard can say why a model serves or not without reading the lake's
registry. Trainings that could not run (too little history) are rows too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
